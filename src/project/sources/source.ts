// What every source kind does: contribute to its element's cache key, say
// whether its content is at hand, fetch it (from a file:// URL, a local path
// or a local git repository: builds run offline), stage it as a Directory
// tree in CAS, and, for kinds that follow a branch, find the newest ref.
import type { Cas } from '../../cas/index.js';
import type { Digest } from '../../reapi/index.js';
import type { Project } from '../project.js';
import type { SourceDecl } from '../source-decl.js';
import type { Plain } from '../yaml.js';

export interface SourceEnv {
  project: Project;
  /** Where fetched content is kept between runs (CACHE/sources). */
  sourceDir: string;
  /** Where staged trees go. */
  cas: Cas;
  signal?: AbortSignal;
}

export interface Source {
  readonly decl: SourceDecl;
  /**
   * What this source contributes to its element's cache key, or undefined
   * while it has no ref (the element is then in state "no reference").
   */
  key(env: SourceEnv): Promise<Plain | undefined>;
  /** True when staging needs no fetch. */
  isCached(env: SourceEnv): Promise<boolean>;
  /** Brings the content into env.sourceDir, verifying it against its ref. */
  fetch(env: SourceEnv): Promise<void>;
  /** The content as a Directory tree in env.cas (not yet at `directory`). */
  stage(env: SourceEnv): Promise<Digest>;
  /** The newest ref of what it tracks; undefined when the kind cannot track. */
  track(env: SourceEnv): Promise<string | undefined>;
}
