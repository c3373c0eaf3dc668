// Sources of elements: the kinds (local, tar, git), the factory that picks
// one, an element's sources together, and writing tracked refs back.
export type { Source, SourceEnv } from './source.js';
export { LocalSource } from './local.js';
export { TarSource } from './tar.js';
export { GitSource } from './git.js';
export { makeSource } from './make-source.js';
export { elementSourceKeys, stageElementSources, trackElementSources } from './element-sources.js';
export { setSourceRef, writeSourceRef } from './track-edit.js';
