// What both wrappers (specbuild-cc, specbuild-exec) say about a run: one
// outcome type, the typed events of its phases, and the JSON log line.
import type { EventSink, SpecbuildError } from '../core/index.js';
import { digestKey, type Digest } from '../reapi/index.js';

/**
 * - hit: answered from the action cache; miss: executed remotely (or, in
 *   cache-only mode, here and uploaded);
 * - local: run here by design (not a cacheable command, no server set);
 * - fallback: run here because the cache or server failed.
 */
export type WrapOutcome = 'hit' | 'miss' | 'local' | 'fallback';

/** The steps of one wrapped run, in order. */
export type WrapPhase =
  | 'prepare'
  | 'action'
  | 'action-direct'
  | 'lookup'
  | 'remembered'
  | 'upload'
  | 'execute'
  | 'local-run'
  | 'store-blobs'
  | 'store-result'
  | 'outputs';

export interface WrapPhaseEvent {
  type: 'wrap-phase';
  phase: WrapPhase;
  /** Milliseconds the phase took, to a tenth. */
  ms: number;
}

export type WrapEvent = WrapPhaseEvent;

/** Times consecutive phases and emits an event as each one ends. */
export class PhaseClock {
  private mark = performance.now();
  /** Milliseconds per phase so far (for SPECBUILD_VERBOSE). */
  readonly phases: Partial<Record<WrapPhase, number>> = {};

  constructor(private readonly sink?: EventSink<WrapEvent>) {}

  end(phase: WrapPhase): void {
    const now = performance.now();
    const ms = Math.round((now - this.mark) * 10) / 10;
    this.mark = now;
    this.phases[phase] = ms;
    this.sink?.({ type: 'wrap-phase', phase, ms });
  }
}

/** Why a wrapped command ran here: the error's code travels with its message. */
export interface Fallback {
  outcome: 'fallback';
  error: SpecbuildError;
}

export interface LogEntry {
  argv: readonly string[];
  outcome: WrapOutcome;
  action?: Digest;
  ms: number;
  /**
   * How a compile's inputs were found: the -M scan, direct mode's memory,
   * the compile itself (run here once), or a link's trace.
   */
  deps?: 'scan' | 'direct' | 'compile' | 'trace';
  /** For a fallback: the code of the error that caused it. */
  error?: SpecbuildError;
  /** Which of the daemon's worker threads answered (daemon-pool.ts). */
  worker?: number;
  /** A hit answered from direct mode's memory of the result, the action cache not asked. */
  remembered?: boolean;
  /**
   * What direct mode found for a compile: fresh, changed (a listed file),
   * shadowed (a header appeared before a listed one), gone, or none.
   */
  direct?: string;
  /** Why the result of a run here was not stored (an input changed while it ran). */
  unstored?: string;
  /** Answered by the native client from the daemon's written answer (native-answers.ts). */
  native?: boolean;
}

/** The JSON line appended to the wrapper log (SPECBUILD_WRAPPER_LOG) for each run. */
export function logLine(e: LogEntry): string {
  const { head, tail } = logLineAround(e);
  return `${head}${String(e.ms)}${tail}`;
}

/**
 * A log line without its `ms` value: what comes before it and after it (the
 * native client writes its own time between them, native-answers.ts).
 */
export function logLineAround(e: Omit<LogEntry, 'ms'>): { head: string; tail: string } {
  const before = JSON.stringify({
    argv: e.argv,
    outcome: e.outcome,
    action: e.action === undefined ? '' : digestKey(e.action),
  });
  const after = JSON.stringify({
    ...(e.deps === undefined ? {} : { deps: e.deps }),
    ...(e.error === undefined ? {} : { error: e.error.code }),
    ...(e.worker === undefined ? {} : { worker: e.worker }),
    ...(e.remembered === true ? { remembered: true } : {}),
    ...(e.direct === undefined ? {} : { direct: e.direct }),
    ...(e.unstored === undefined ? {} : { unstored: e.unstored }),
    ...(e.native === true ? { native: true } : {}),
  });
  return {
    head: `${before.slice(0, -1)},"ms":`,
    tail: `${after === '{}' ? '' : `,${after.slice(1, -1)}`}}\n`,
  };
}
