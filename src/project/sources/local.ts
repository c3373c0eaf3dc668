// The `local` source: a file or directory of the project (`path`), always
// at hand, keyed by its content (the digest of its Directory tree), so that
// editing a file moves the element's keys and nothing else does.
import { lstat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SpecbuildError } from '../../core/index.js';
import { uploadMissing, type Uploads } from '../../cas/index.js';
import {
  buildTree,
  digestKey,
  digestOfFile,
  treeFromDirectory,
  type Digest,
} from '../../reapi/index.js';
import { projectPath } from '../includes.js';
import type { SourceDecl } from '../source-decl.js';
import type { Source, SourceEnv } from './source.js';

export class LocalSource implements Source {
  private tree: Promise<{ root: Digest; uploads: Uploads }> | undefined;

  constructor(readonly decl: SourceDecl) {}

  private path(env: SourceEnv): string {
    const p = this.decl.config.path ?? '';
    const rel = projectPath(p);
    if (rel === undefined || p === '')
      throw new SpecbuildError(
        'load/invalid-value',
        `local source path "${p}" is not inside the project`,
        {
          location: this.decl.keyAt.path ?? this.decl.at,
        },
      );
    return join(env.project.dir, rel);
  }

  /** The tree of the path's content (a file is staged under its own name). */
  private build(env: SourceEnv): Promise<{ root: Digest; uploads: Uploads }> {
    this.tree ??= (async () => {
      const path = this.path(env);
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined)
        throw new SpecbuildError(
          'source/fetch',
          `local source ${this.decl.config.path ?? ''} does not exist`,
          {
            location: this.decl.keyAt.path ?? this.decl.at,
          },
        );
      const uploads: Uploads = new Map();
      if (st.isDirectory()) {
        const t = await treeFromDirectory(path);
        for (const [k, d] of t.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
        for (const [k, f] of t.files) uploads.set(k, { digest: f.digest, path: f.path });
        return { root: t.root, uploads };
      }
      const digest = await digestOfFile(path);
      uploads.set(digestKey(digest), { digest, path });
      const t = buildTree([
        { kind: 'file', path: basename(path), digest, executable: (st.mode & 0o111) !== 0 },
      ]);
      for (const [k, d] of t.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
      return { root: t.root, uploads };
    })();
    return this.tree;
  }

  async key(env: SourceEnv): Promise<string> {
    return digestKey((await this.build(env)).root);
  }

  isCached(): Promise<boolean> {
    return Promise.resolve(true);
  }

  fetch(): Promise<void> {
    return Promise.resolve();
  }

  async stage(env: SourceEnv): Promise<Digest> {
    const t = await this.build(env);
    await uploadMissing(env.cas, t.uploads, { signal: env.signal });
    return t.root;
  }

  track(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
}
