// Speculative actions: generation after a build, storage under the weak key,
// instantiation, the priming engine, modes and their events.
export * from './mode.js';
export * from './events.js';
export * from './actions.js';
export * from './tree-files.js';
export * from './generate.js';
export * from './instantiate.js';
export * from './rewrite.js';
export * from './prime.js';
export * from './run.js';
export * from './trace.js';
export * from './explain.js';
export * from './share.js';
export * from './remote-share.js';
