// A per-build session: the REAPI services an element build reaches through
// the socket in its sandbox, as a decorator over the Cas / ActionCache /
// Executor it is given (local or remote alike). It records, in order and
// each once, every action that completed successfully through it, whether
// executed or answered from the action cache; those are the element's
// subactions, from which speculative actions are made.
import type { EventSink, Release } from '../core/index.js';
import type {
  ActionCache,
  CallOptions,
  ExecuteOptions,
  ExecuteOutcome,
  Executor,
  UploadableCas,
} from '../cas/index.js';
import { digestKey, type ActionResult, type Digest } from '../reapi/index.js';
import type { InstanceStores } from './context.js';

/** How a recorded action completed. */
export type SubactionOutcome = 'cache-hit' | 'executed' | 'uploaded';

export interface SubactionEvent {
  type: 'subaction';
  action: Digest;
  outcome: SubactionOutcome;
  /** The result came from the action cache (a hit through Execute counts too). */
  cached: boolean;
}

export interface SessionOptions {
  cas: UploadableCas;
  ac: ActionCache;
  executor?: Executor;
  /** How the session's executions get CPU slots (the build's lent slot). */
  acquireSlot?: (signal?: AbortSignal) => Promise<Release>;
  events?: EventSink<SubactionEvent>;
}

export class RecordingSession {
  private readonly order: Digest[] = [];
  private readonly seen = new Set<string>();
  readonly stores: InstanceStores;

  constructor(private readonly opts: SessionOptions) {
    const record = (d: Digest, outcome: SubactionOutcome, cached: boolean): void => {
      this.record(d, outcome, cached);
    };
    const ac: ActionCache = {
      async getActionResult(d: Digest, call?: CallOptions): Promise<ActionResult | undefined> {
        const r = await opts.ac.getActionResult(d, call);
        if (r?.exitCode === 0) record(d, 'cache-hit', true);
        return r;
      },
      async updateActionResult(d: Digest, result: ActionResult, call?: CallOptions): Promise<void> {
        await opts.ac.updateActionResult(d, result, call);
        // A client that ran the action itself and stored its result (cache-only mode).
        if (result.exitCode === 0) record(d, 'uploaded', false);
      },
    };
    const inner = opts.executor;
    const executor: Executor | undefined =
      inner === undefined
        ? undefined
        : {
            local: inner.local,
            async execute(d: Digest, o: ExecuteOptions = {}): Promise<ExecuteOutcome> {
              const out = await inner.execute(d, {
                ...o,
                acquireSlot: o.acquireSlot ?? opts.acquireSlot,
              });
              if (out.error === undefined && out.result.exitCode === 0)
                record(d, out.cached ? 'cache-hit' : 'executed', out.cached);
              return out;
            },
          };
    // The wrapper shapes its actions for what it is told: the cluster's version when forwarding.
    this.stores = { cas: opts.cas, ac, executor, apiHigh: inner?.apiHigh };
  }

  private record(d: Digest, outcome: SubactionOutcome, cached: boolean): void {
    const key = digestKey(d);
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.order.push(d);
    this.opts.events?.({ type: 'subaction', action: d, outcome, cached });
  }

  /** The recorded actions, in the order they completed. */
  get recorded(): readonly Digest[] {
    return this.order;
  }
}
