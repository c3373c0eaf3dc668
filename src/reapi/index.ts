// Protocol layer: generated REAPI messages, digests, canonical encoding,
// name validation, Merkle trees and the grpc-js adapter; Remote Asset messages
// as `assetPb`.
export * from './digest.js';
export type { Digest } from './digest.js';
export type { Digest as PbDigest } from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';
export * from './names.js';
export * from './directory.js';
export * from './directory-codec.js';
export * from './encoded-directory.js';
export * from './merkle.js';
export * from './tree-builder.js';
export * from './action.js';
export * from './action-result.js';
export * from './file-stat.js';
export * from './platform.js';
export * from './timestamp.js';
export * from './grpc.js';
export * from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';
export * from './gen/build/bazel/semver/semver_pb.js';
export * as assetPb from './gen/build/bazel/remote/asset/v1/remote_asset_pb.js';
export * as bytestream from './gen/google/bytestream/bytestream_pb.js';
export * as longrunning from './gen/google/longrunning/operations_pb.js';
export * as rpc from './gen/google/rpc/status_pb.js';
export * as rpcDetails from './gen/google/rpc/error_details_pb.js';
export { Code as RpcCode } from './gen/google/rpc/code_pb.js';
export * as specbuildPb from './gen/specbuild/v1/artifact_pb.js';
export * as speculativePb from './gen/specbuild/v1/speculative_pb.js';
