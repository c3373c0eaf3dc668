// Storage layer: the Cas and ActionCache interfaces, the local store and
// action cache, tree fetching and staging.
export * from './cas.js';
export * from './executor.js';
export * from './local-cas.js';
export * from './local-action-cache.js';
export * from './tree.js';
export * from './tree-size.js';
export * from './stage.js';
export * from './upload.js';
