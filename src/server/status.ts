// Mapping of specbuild errors to gRPC statuses, with google.rpc.Status details
// in the `grpc-status-details-bin` trailer as REAPI clients expect.
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { isSpecbuildError, type ErrorCode } from '../core/index.js';
import { rpc } from '../reapi/index.js';

/** The gRPC status code for each error code that can reach a client. */
export function grpcCodeOf(code: ErrorCode): Status {
  switch (code) {
    // Remote Asset's Push lists INVALID_ARGUMENT, not FAILED_PRECONDITION, for
    // content the client failed to upload first.
    case 'asset/missing-content':
    case 'reapi/invalid-digest':
    case 'reapi/invalid-name':
    case 'reapi/invalid-path':
    case 'reapi/invalid-directory':
    case 'reapi/invalid-message':
    case 'cas/digest-mismatch':
    case 'server/unknown-instance':
    case 'server/batch-too-large':
    case 'remote/invalid-argument':
      return Status.INVALID_ARGUMENT;
    case 'cas/out-of-range':
      return Status.OUT_OF_RANGE;
    case 'cas/not-found':
    case 'remote/not-found':
      return Status.NOT_FOUND;
    case 'server/too-many-uploads':
    case 'cas/full':
      return Status.RESOURCE_EXHAUSTED;
    case 'remote/failed-precondition':
    case 'cas/stage-conflict':
      return Status.FAILED_PRECONDITION;
    case 'remote/unavailable':
    case 'remote/tls':
      return Status.UNAVAILABLE;
    case 'remote/deadline':
      return Status.DEADLINE_EXCEEDED;
    case 'remote/read-only':
    case 'remote/permission':
      return Status.PERMISSION_DENIED;
    case 'remote/unsupported':
      return Status.UNIMPLEMENTED;
    case 'server/upload-busy':
      return Status.ABORTED;
    case 'server/client-gone':
      return Status.CANCELLED;
    case 'server/no-execution':
    case 'server/no-assets':
      return Status.UNIMPLEMENTED;
    case 'server/unknown-operation':
      return Status.NOT_FOUND;
    case 'server/unauthenticated':
      return Status.UNAUTHENTICATED;
    case 'exec/timeout':
      return Status.DEADLINE_EXCEEDED;
    case 'exec/missing-inputs':
    case 'exec/platform':
      return Status.FAILED_PRECONDITION;
    case 'exec/invalid-action':
    case 'exec/too-large':
      return Status.INVALID_ARGUMENT;
    case 'sandbox/unavailable':
    case 'sandbox/setup':
    case 'cas/io':
    case 'cas/worker-lost':
    case 'remote/protocol':
    case 'server/listen':
    case 'server/crashed':
    case 'remote/invalid-target':
    case 'remote/token-file':
    case 'wrap/usage':
    case 'wrap/protocol':
    case 'load/invalid-yaml':
    case 'load/unknown-key':
    case 'load/wrong-type':
    case 'load/missing-key':
    case 'load/invalid-value':
    case 'load/undefined-variable':
    case 'load/circular-variable':
    case 'load/protected-variable':
    case 'load/list-directive':
    case 'load/missing-file':
    case 'load/bad-element-name':
    case 'load/dependency-cycle':
    case 'load/version':
    case 'source/fetch':
    case 'source/digest-mismatch':
    case 'source/no-ref':
    case 'source/track':
    case 'artifact/not-cached':
    case 'build/failed':
    case 'build/interrupted':
    case 'cli/usage':
    case 'internal':
      return Status.INTERNAL;
  }
}

/** A grpc-js error with a status code and optional google.rpc.Status details. */
export function grpcError(
  code: Status,
  message: string,
  details: { schema: DescMessage; value: MessageShape<DescMessage> }[] = [],
): Partial<ServiceError> {
  const metadata = new Metadata();
  if (details.length > 0) {
    const st = create(rpc.StatusSchema, {
      code,
      message,
      details: details.map((d) => anyPack(d.schema, d.value)),
    });
    metadata.set('grpc-status-details-bin', Buffer.from(toBinary(rpc.StatusSchema, st)));
  }
  return { code, details: message, metadata };
}

/** Converts anything thrown by a handler into a gRPC error; unknown errors are INTERNAL. */
export function toGrpcError(e: unknown): Partial<ServiceError> {
  if (isSpecbuildError(e)) return grpcError(grpcCodeOf(e.code), e.message);
  return grpcError(
    Status.INTERNAL,
    `internal error: ${e instanceof Error ? e.message : String(e)}`,
  );
}

/** A google.rpc.Status message (for per-item results in batch responses). */
export function rpcStatus(code: Status, message = ''): rpc.Status {
  return create(rpc.StatusSchema, { code, message });
}

export function rpcStatusOf(e: unknown): rpc.Status {
  const err = toGrpcError(e);
  return rpcStatus(err.code ?? Status.INTERNAL, err.details ?? '');
}
