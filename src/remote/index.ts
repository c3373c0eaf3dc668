// REAPI client layer: connections (TCP, TLS, unix sockets; retries, deadlines,
// auth) and the Cas / ActionCache / Executor / AssetStore interfaces over a
// remote endpoint.
export * from './target.js';
export * from './retry.js';
export * from './connection.js';
export * from './tls-failure.js';
export * from './remote-cas.js';
export * from './remote-action-cache.js';
export * from './remote-asset.js';
export * from './endpoint.js';
export * from './remote-execution.js';
export * from './remote-executor.js';
export * from './cluster-executor.js';
