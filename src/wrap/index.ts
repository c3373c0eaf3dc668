// Wrapper layer: specbuild-exec and specbuild-cc turn commands into REAPI
// actions; the daemon that serves their native clients.
export * from './exec-wrapper.js';
export * from './outcome.js';
export * from './outputs.js';
export * from './cc.js';
export * from './cc-args.js';
export * from './make-deps.js';
export * from './stat-cache.js';
export * from './direct-cache.js';
export * from './include-probes.js';
export * from './daemon-protocol.js';
export * from './daemon-server.js';
export * from './remote-action.js';
export * from './exec-args.js';
export * from './daemon-handler.js';
export * from './daemon-pool.js';
export * from './daemon-pool-worker.js';
export * from './shared-once.js';
export * from './objects-dir-cas.js';
export * from './native-answers.js';
