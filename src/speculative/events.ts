// What speculative actions report: every priming outcome of every action,
// every generation, and during the build how each recorded action was
// answered, so that precision and recall can be measured in any mode.

export type PrimeOutcome =
  /** Adapted to the current digests (and about to be submitted). */
  | 'instantiated'
  /** Sent to the executor, ahead of the build. */
  | 'submitted'
  /** Every overlay resolved and nothing differs: the recorded action itself (already cached). */
  | 'unchanged'
  /** An overlay cannot resolve yet (waiting on the named thing); retried later. */
  | 'deferred'
  /** An overlay can never resolve; the build will run it normally. */
  | 'unresolved'
  /** A submitted action finished and its result is in the action cache. */
  | 'completed'
  /** A submitted action failed (never fails a build). */
  | 'failed'
  /**
   * Instantiated but not submitted, under scheduler.speculative-actions-budget:
   * cheaper than priming it, or over the budget (the build runs it).
   */
  | 'skipped';

export interface PrimeEvent {
  type: 'prime';
  element: string;
  outcome: PrimeOutcome;
  /** The recorded action, HASH/SIZE. */
  action: string;
  /** The adapted action, HASH/SIZE. */
  adapted?: string;
  /**
   * Deferred: what it waits on; unresolved, failed and skipped: why;
   * completed: set only when priming did not produce the result (the build
   * had run it first), saying so.
   */
  reason?: string;
}

/** How the build answered one of its actions. */
export type BuildActionOutcome = 'hit-primed' | 'hit-cached' | 'miss';

export interface BuildActionEvent {
  type: 'build-action';
  element: string;
  action: string;
  outcome: BuildActionOutcome;
}

export interface GenerateEvent {
  type: 'generate';
  element: string;
  /** Stored: the blob's digest; kept: the previous one carried over; failed: why. */
  outcome: 'stored' | 'kept' | 'failed';
  actions?: number;
  overlays?: number;
  /** Recorded actions that could not be read (skipped); `reason` says why for the first. */
  skipped?: number;
  reason?: string;
}

export type SpeculativeEvent = PrimeEvent | BuildActionEvent | GenerateEvent;

/** Per element and overall: what priming did and what the build got from it. */
export interface SpeculativeStats {
  primed: number;
  unchanged: number;
  deferred: number;
  unresolved: number;
  /** Instantiated but not submitted (the budget: cheaper than priming, or over it). */
  skipped: number;
  hits_primed: number;
  hits_cached: number;
  misses: number;
  /** Primed actions the build used ÷ primed (null when nothing was primed). */
  precision: number | null;
  /** Build actions that hit thanks to priming ÷ build actions that missed the plain cache. */
  recall: number | null;
}

export function emptyStats(): SpeculativeStats {
  return {
    primed: 0,
    unchanged: 0,
    deferred: 0,
    unresolved: 0,
    skipped: 0,
    hits_primed: 0,
    hits_cached: 0,
    misses: 0,
    precision: null,
    recall: null,
  };
}

/** Artifacts and priming data moved to and from artifact remotes (never a build failure). */
export interface ShareEvent {
  type: 'share';
  /** The remote's URL. */
  remote: string;
  /** execute: the remote execution service (its unreachable outcome). */
  op: 'connect' | 'pull' | 'pull-priming' | 'push' | 'execute';
  outcome: 'pulled' | 'miss' | 'pushed' | 'retrying' | 'failed' | 'unreachable';
  element?: string;
  /** Blobs and bytes that moved; action-cache entries written (priming pulls). */
  blobs?: number;
  bytes?: number;
  results?: number;
  /** Miss, retrying, failed, unreachable: why. */
  reason?: string;
}
