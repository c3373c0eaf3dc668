// Storage layer: the Cas, ActionCache and Executor interfaces, the local store
// and action cache, trees (fetching, staging, editing), refs and artifacts,
// the AssetStore interface (Remote Asset names) and its local index.
export * from './cas.js';
export * from './executor.js';
export * from './local-cas.js';
export * from './local-action-cache.js';
export * from './direct-store.js';
export * from './tree.js';
export * from './tree-edit.js';
export * from './tree-size.js';
export * from './stage.js';
export * from './stage-plan.js';
export * from './fs-pool.js';
export type { CasLayout, ImportedBlob, StageCounts } from './fs-tasks.js';
export * from './upload.js';
export * from './refs.js';
export * from './artifact-cache.js';
export * from './artifact-urn.js';
export * from './asset-store.js';
export * from './local-asset-store.js';
export * from './artifact-transfer.js';
export * from './extract-cache.js';
export * from './small-file.js';
