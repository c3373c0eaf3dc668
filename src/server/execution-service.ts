// Execution and Operations services: Execute streams an Operation from QUEUED
// through EXECUTING to COMPLETED with an ExecuteResponse. The execution
// belongs to the server, not the call: a client that drops the stream does
// not cancel it, and its result still lands in the action cache.
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { anyPack, type Any } from '@bufbuild/protobuf/wkt';
import {
  status as Status,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import {
  MissingBlobsError,
  type Cas,
  type ExecuteOutcome,
  type ExecutionStage,
} from '../cas/index.js';
import {
  ExecuteOperationMetadataSchema,
  ExecuteResponseSchema,
  ExecutionStage_Value,
  fromPb,
  longrunning,
  rpc,
  rpcDetails,
  toPb,
  type Digest,
  type ExecuteRequest,
  type ExecuteResponse,
  type WaitExecutionRequest,
} from '../reapi/index.js';
import { inlineOutputs } from './action-cache-service.js';
import { writeMessage, type ServerContext } from './context.js';
import { OperationStore } from './operation-store.js';
import { grpcCodeOf } from './status.js';

/** How long a finished operation can still be looked up, and how many of them at most. */
const KEEP_DONE_MS = 10 * 60 * 1000;
const KEEP_DONE_COUNT = 10_000;

const STAGES: Record<Exclude<ExecutionStage, 'completed'>, ExecutionStage_Value> = {
  'cache-check': ExecutionStage_Value.CACHE_CHECK,
  queued: ExecutionStage_Value.QUEUED,
  executing: ExecutionStage_Value.EXECUTING,
};

interface OperationState {
  name: string;
  actionDigest: Digest;
  stage: ExecutionStage_Value;
  response: ExecuteResponse | undefined;
  /** The response packed once for every Operation that carries it. */
  packed: Any | undefined;
  listeners: Set<() => void>;
}

export class ExecutionService {
  private readonly operations = new OperationStore<OperationState>(KEEP_DONE_COUNT, KEEP_DONE_MS);
  /** Executions still running (for tests and shutdown). */
  running = 0;

  constructor(private readonly ctx: ServerContext) {}

  private toOperation(op: OperationState): longrunning.Operation {
    const metadata = create(ExecuteOperationMetadataSchema, {
      stage: op.stage,
      actionDigest: toPb(op.actionDigest),
    });
    return create(longrunning.OperationSchema, {
      name: op.name,
      metadata: anyPack(ExecuteOperationMetadataSchema, metadata),
      done: op.response !== undefined,
      result:
        op.packed === undefined ? { case: undefined } : { case: 'response', value: op.packed },
    });
  }

  private update(
    op: OperationState,
    stage: ExecutionStage_Value,
    response?: ExecuteResponse,
  ): void {
    op.stage = stage;
    if (response !== undefined) {
      op.response = response;
      op.packed = anyPack(ExecuteResponseSchema, response);
      this.operations.finish(op.name);
    }
    for (const l of op.listeners) l();
  }

  /** The operation named `name` (running, or finished and still kept). */
  private lookup(name: string): OperationState {
    const op = this.operations.get(name);
    if (op === undefined)
      throw new SpecbuildError(
        'server/unknown-operation',
        `no operation named "${name.slice(0, 200)}"`,
      );
    return op;
  }

  /** Streams the operation's state until it is done or the client leaves. */
  private async follow(
    op: OperationState,
    call: ServerWritableStream<unknown, longrunning.Operation>,
  ): Promise<void> {
    let last: ExecutionStage_Value | undefined;
    const client = { gone: false };
    call.once('cancelled', () => {
      client.gone = true;
    });
    // A result the executor has at hand (a cache hit: its reads are
    // synchronous, so it settles within this turn) goes out alone, without
    // the CACHE_CHECK Operation before it: half the messages of a cached
    // Execute for both sides.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (!client.gone) {
      if (op.stage !== last || op.response !== undefined) {
        last = op.stage;
        await writeMessage(call, this.toOperation(op)).catch(() => {
          client.gone = true;
        });
        if (op.response !== undefined) return;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          op.listeners.delete(wake);
          call.off('cancelled', wake);
          resolve();
        };
        op.listeners.add(wake);
        call.once('cancelled', wake);
      });
    }
  }

  implementation(): UntypedServiceImplementation {
    const ctx = this.ctx;
    return {
      execute: ctx.serverStream(async (req: ExecuteRequest, call) => {
        ctx.checkDigestFunction(req.digestFunction);
        const stores = ctx.instance(req.instanceName);
        const executor = stores.executor;
        if (executor === undefined) {
          throw new SpecbuildError(
            'server/no-execution',
            `instance "${req.instanceName}" does not execute actions`,
            {
              hint: 'start the server with --jobs N to enable execution',
            },
          );
        }
        const digest = fromPb(req.actionDigest, 'action_digest');
        const op: OperationState = {
          name: `${req.instanceName === '' ? '' : `${req.instanceName}/`}operations/${randomUUID()}`,
          actionDigest: digest,
          stage: req.skipCacheLookup
            ? ExecutionStage_Value.QUEUED
            : ExecutionStage_Value.CACHE_CHECK,
          response: undefined,
          packed: undefined,
          listeners: new Set(),
        };
        this.operations.add(op.name, op);
        this.running++;
        // Detached from the call on purpose: dropping the stream must not cancel it.
        void executor
          .execute(digest, {
            skipCacheLookup: req.skipCacheLookup,
            events: (e) => {
              // COMPLETED is sent with the response, below.
              if (e.stage !== 'completed') this.update(op, STAGES[e.stage]);
            },
          })
          .then(
            async (outcome) => this.respond(outcome, stores.cas, req),
            (e: unknown) => errorResponse(e),
          )
          .then((response) => {
            this.running--;
            this.update(op, ExecutionStage_Value.COMPLETED, response);
          });
        await this.follow(op, call);
      }),

      waitExecution: ctx.serverStream(async (req: WaitExecutionRequest, call) => {
        await this.follow(this.lookup(req.name), call);
      }),
    };
  }

  operationsImplementation(): UntypedServiceImplementation {
    return {
      getOperation: this.ctx.unary((req: longrunning.GetOperationRequest) => {
        return Promise.resolve(this.toOperation(this.lookup(req.name)));
      }),
    };
  }

  private async respond(
    outcome: ExecuteOutcome,
    cas: Cas,
    req: ExecuteRequest,
  ): Promise<ExecuteResponse> {
    const result = await inlineOutputs(cas, outcome.result, req).catch(() => outcome.result);
    const response = create(ExecuteResponseSchema, { result, cachedResult: outcome.cached });
    if (outcome.error !== undefined) {
      response.status = create(rpc.StatusSchema, {
        code: grpcCodeOf(outcome.error.code),
        message: outcome.error.message,
      });
    }
    return response;
  }
}

/** An execution that could not run: the reason goes in ExecuteResponse.status, never Operation.error. */
function errorResponse(e: unknown): ExecuteResponse {
  if (e instanceof MissingBlobsError) {
    const failure = create(rpcDetails.PreconditionFailureSchema, {
      violations: e.digests.map((d) => ({ type: 'MISSING', subject: `blobs/${d.hash}/${d.size}` })),
    });
    return create(ExecuteResponseSchema, {
      status: create(rpc.StatusSchema, {
        code: Status.FAILED_PRECONDITION,
        message: e.message,
        details: [anyPack(rpcDetails.PreconditionFailureSchema, failure)],
      }),
    });
  }
  const err = SpecbuildError.from(e);
  const code = err.code === 'internal' ? Status.INTERNAL : grpcCodeOf(err.code);
  const message = err.message;
  return create(ExecuteResponseSchema, { status: create(rpc.StatusSchema, { code, message }) });
}
