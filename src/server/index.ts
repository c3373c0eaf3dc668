// Server layer: the REAPI gRPC services over local stores and an executor.
export * from './server.js';
export { routeGrpcLog } from './grpc-log.js';
export { MAX_PARTIAL_UPLOADS } from './bytestream-service.js';
export * from './session.js';
export type { InstanceStores } from './context.js';
