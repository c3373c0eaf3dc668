// Sources of elements: the kinds (local, tar, git) and the factory that picks
// one.
export type { Source, SourceEnv } from './source.js';
export { LocalSource } from './local.js';
export { TarSource } from './tar.js';
export { GitSource } from './git.js';
export { makeSource } from './make-source.js';
