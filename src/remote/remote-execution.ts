// The Execution service over a remote endpoint: execute and wait for the
// result (re-attaching with WaitExecution after a broken stream), or submit
// fire-and-forget (accepted once the server answers; the server runs it on).
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { status as Status } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import type { ExecutionEvent, ExecutionStage } from '../cas/index.js';
import type { EventSink } from '../core/index.js';
import {
  checkActionResult,
  Execution,
  ExecuteOperationMetadataSchema,
  ExecuteResponseSchema,
  ExecutionStage_Value,
  rpcDetails,
  toPb,
  type Digest,
  type ExecuteResponse,
  type longrunning,
} from '../reapi/index.js';
import { RemoteCallError, type CallOpts, type Connection } from './connection.js';

export interface RemoteExecuteOptions extends CallOpts {
  skipCacheLookup?: boolean;
  /** Told of each stage the server reports (QUEUED, EXECUTING, ...). */
  events?: EventSink<ExecutionEvent>;
}

const STAGES: Partial<Record<ExecutionStage_Value, ExecutionStage>> = {
  [ExecutionStage_Value.CACHE_CHECK]: 'cache-check',
  [ExecutionStage_Value.QUEUED]: 'queued',
  [ExecutionStage_Value.EXECUTING]: 'executing',
  [ExecutionStage_Value.COMPLETED]: 'completed',
};

/** The MISSING blobs named by a FAILED_PRECONDITION status, as `blobs/HASH/SIZE` subjects. */
export function missingBlobs(status: ExecuteResponse['status']): string[] {
  const out: string[] = [];
  for (const any of status?.details ?? []) {
    const pf = anyUnpack(any, rpcDetails.PreconditionFailureSchema);
    for (const v of pf?.violations ?? []) if (v.type === 'MISSING') out.push(v.subject);
  }
  return out;
}

/** Executes started again when WaitExecution finds the operation gone. */
const MAX_START_OVER = 3;

export class RemoteExecution {
  constructor(
    private readonly conn: Connection,
    private readonly instance: string,
  ) {}

  /** Executes an action (already uploaded) and returns the server's ExecuteResponse. */
  async execute(action: Digest, opts: RemoteExecuteOptions = {}): Promise<ExecuteResponse> {
    let name: string | undefined;
    let startedOver = 0;
    for (let attempt = 1; ; attempt++) {
      // This attempt re-attaches with WaitExecution; and whether an error
      // is the operation's own result (final), not the call's.
      const waiting = name !== undefined;
      const seen = { final: false };
      try {
        const stream =
          name === undefined
            ? this.conn.serverStream(
                Execution.method.execute,
                {
                  instanceName: this.instance,
                  actionDigest: toPb(action),
                  skipCacheLookup: opts.skipCacheLookup ?? false,
                },
                opts,
              )
            : this.conn.serverStream(Execution.method.waitExecution, { name }, opts);
        let done: ExecuteResponse | undefined;
        // Read to the end of the stream even after the final operation:
        // cancelling a finished stream makes servers count invalid frames.
        for await (const op of stream) {
          name = op.name;
          attempt = 0;
          try {
            done ??= this.handle(op, action, opts);
          } catch (e) {
            seen.final = true;
            throw e;
          }
        }
        if (done !== undefined) return done;
        throw new SpecbuildError(
          'remote/protocol',
          `${this.conn.target.text}: Execute stream ended before the operation was done`,
          {
            temporary: true,
          },
        );
      } catch (e) {
        // The server no longer knows the operation (it restarted, or another
        // of its processes answered): execute again, a few times at most.
        // NOT_FOUND is not retryable, so this comes before retryOrThrow.
        if (
          waiting &&
          !seen.final &&
          e instanceof RemoteCallError &&
          e.grpcCode === Status.NOT_FOUND &&
          startedOver < MAX_START_OVER
        ) {
          opts.signal?.throwIfAborted();
          startedOver++;
          name = undefined;
          continue;
        }
        await this.conn.retryOrThrow(e, attempt, opts.signal);
      }
    }
  }

  /**
   * Sends an Execute and returns once the server has accepted it (its first
   * response), then drops the stream: the server keeps executing and writes
   * the result to its action cache. Returns the operation name.
   */
  async submit(action: Digest, opts: RemoteExecuteOptions = {}): Promise<string> {
    const abort = new AbortController();
    const signal =
      opts.signal === undefined ? abort.signal : AbortSignal.any([opts.signal, abort.signal]);
    try {
      for await (const op of this.conn.serverStream(
        Execution.method.execute,
        {
          instanceName: this.instance,
          actionDigest: toPb(action),
          skipCacheLookup: opts.skipCacheLookup ?? false,
        },
        { ...opts, signal },
      )) {
        this.handle(op, action, opts);
        return op.name;
      }
    } finally {
      abort.abort();
    }
    throw new SpecbuildError(
      'remote/protocol',
      `${this.conn.target.text}: Execute returned no operation`,
    );
  }

  private handle(
    op: longrunning.Operation,
    action: Digest,
    opts: RemoteExecuteOptions,
  ): ExecuteResponse | undefined {
    const tell = (value: ExecutionStage_Value): void => {
      const stage = STAGES[value];
      if (stage !== undefined) opts.events?.({ type: 'execution', action, stage });
    };
    if (op.metadata !== undefined && !op.done) {
      const meta = anyUnpack(op.metadata, ExecuteOperationMetadataSchema);
      if (meta !== undefined) tell(meta.stage);
    }
    if (!op.done) return undefined;
    if (op.result.case === 'error') {
      // A finished operation's error is final: waiting on it again returns the same.
      throw new RemoteCallError(
        op.result.value.code,
        `operation failed: ${op.result.value.message}`,
        undefined,
        this.conn.target.text,
        false,
      );
    }
    if (op.result.case !== 'response') {
      throw new SpecbuildError(
        'remote/protocol',
        `${this.conn.target.text}: operation done without a response`,
      );
    }
    const res = anyUnpack(op.result.value, ExecuteResponseSchema);
    if (res === undefined)
      throw new SpecbuildError(
        'remote/protocol',
        `${this.conn.target.text}: response is not an ExecuteResponse`,
      );
    // The result is untrusted input like any other: paths and digests checked.
    if (res.result !== undefined)
      checkActionResult(res.result, `ExecuteResponse from ${this.conn.target.text}`);
    tell(ExecutionStage_Value.COMPLETED);
    return res;
  }
}
