// The Executor interface beside Cas and ActionCache: runs an Action whose
// blobs are in the executor's CAS. The local executor, the remote client and
// the per-build recording session implement it, so the server, the build and
// priming never care where actions run.
import { SpecbuildError } from '../core/index.js';
import type { EventSink, Release } from '../core/index.js';
import { digestKey, type ActionResult, type Digest } from '../reapi/index.js';
import type { CallOptions } from './cas.js';

/** Where an execution is (REAPI's ExecutionStage, without UNKNOWN). */
export type ExecutionStage = 'cache-check' | 'queued' | 'executing' | 'completed';

export interface ExecutionEvent {
  type: 'execution';
  action: Digest;
  stage: ExecutionStage;
}

export interface ExecuteOptions extends CallOptions {
  /** Run even when the action cache holds a result. */
  skipCacheLookup?: boolean;
  /**
   * The caller has just looked the action up in the action cache and missed:
   * the executor need not look again before running it (a server may).
   */
  cacheChecked?: boolean;
  /** Told of each stage the execution reaches. */
  events?: EventSink<ExecutionEvent>;
  /**
   * For executors that run actions on this machine: how this execution gets
   * its CPU slot (a build lends its own), instead of the executor's pool.
   */
  acquireSlot?: (signal?: AbortSignal) => Promise<Release>;
  /** The pool priority when no acquireSlot is given (priming runs below builds). */
  priority?: number;
}

export interface ExecuteOutcome {
  result: ActionResult;
  /** True when the result came from the action cache. */
  cached: boolean;
  /**
   * True when this request joined an identical execution another request
   * had started (the result is that run's). Only executors that share runs
   * in flight (the local one) say so; a remote cluster's deduplication is
   * not visible.
   */
  joined?: boolean;
  /**
   * The execution ran but failed as an execution (a timeout): the result
   * holds what the command wrote before it was stopped.
   */
  error?: SpecbuildError;
}

export interface Executor {
  /**
   * Executes an action whose Action, Command and input blobs are already in
   * the executor's CAS. A command that exits non-zero is an outcome, not an
   * error; missing blobs throw MissingBlobsError; a platform the executor
   * does not offer throws `exec/platform`.
   */
  execute(action: Digest, opts?: ExecuteOptions): Promise<ExecuteOutcome>;
  /**
   * The highest REAPI version (`major.minor`) the actions sent here may be
   * shaped for (a cluster of REAPI 2.0 reads output_files, not
   * output_paths); undefined: any this code speaks.
   */
  readonly apiHigh?: string;
  /**
   * True when actions run on this machine (the embedded executor): a client
   * on this machine may then run a command in place and store its result
   * instead of sending it here (specbuild-cc's compile-once path).
   */
  readonly local?: boolean;
}

/** Raised when blobs an action needs are not in the executor's CAS. */
export class MissingBlobsError extends SpecbuildError {
  constructor(readonly digests: readonly Digest[]) {
    super(
      'exec/missing-inputs',
      `${digests.length} blob(s) the action needs are missing, e.g. ${digests[0] ? digestKey(digests[0]) : '?'}`,
      { hint: 'upload the action, its command and its input tree before executing' },
    );
  }
}
