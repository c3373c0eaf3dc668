// The one place that maps a source kind to its implementation. Settings a
// kind cannot use (a malformed ref, no url) fail here, as load errors at
// their place in the element file.
import { unreachable } from '../../core/index.js';
import type { SourceDecl } from '../source-decl.js';
import { GitSource } from './git.js';
import { LocalSource } from './local.js';
import type { Source } from './source.js';
import { TarSource } from './tar.js';

export function makeSource(decl: SourceDecl): Source {
  switch (decl.kind) {
    case 'local':
      return new LocalSource(decl);
    case 'tar':
      return new TarSource(decl);
    case 'git':
      return new GitSource(decl);
    default:
      return unreachable(decl.kind);
  }
}
