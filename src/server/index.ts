// Server layer: REAPI gRPC services over local stores (and, later, an executor).
export * from './server.js';
export { ServerContext, type InstanceStores, DEFAULT_MAX_BATCH_BYTES } from './context.js';
export { grpcCodeOf } from './status.js';
