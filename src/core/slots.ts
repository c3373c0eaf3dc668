// One pool of CPU slots shared by everything that runs work on this machine:
// element builds and the actions they execute, and priming at a lower
// priority, so that a 2-core machine is never oversubscribed builds × jobs
// times. A build holds one slot while it runs and lends it to the first of
// its own actions (as make's jobserver gives every make one implicit token),
// so a build waiting on its action can never starve that action of a slot.

/** Gives back a slot. Calling it twice is harmless. */
export type Release = () => void;

/**
 * Where actions get their CPU slots: a SlotPool here, or one another process
 * keeps (the serving processes of a server share their primary's).
 */
export interface Slots {
  /** Waits for a slot; higher priority first, then first come. */
  acquire(priority?: number, signal?: AbortSignal): Promise<Release>;
}

interface Waiter {
  priority: number;
  seq: number;
  grant: (r: Release) => void;
}

export class SlotPool implements Slots {
  private free: number;
  private readonly waiting: Waiter[] = [];
  private seq = 0;

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`SlotPool needs size >= 1, got ${size}`);
    this.free = size;
  }

  /** Slots in use. */
  get busy(): number {
    return this.size - this.free;
  }

  /** Waits for a slot; higher priority first, then first come. */
  acquire(priority = 0, signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    if (this.free > 0 && this.waiting.length === 0) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise<Release>((resolve, reject) => {
      const w: Waiter = { priority, seq: this.seq++, grant: resolve };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal?.reason as Error);
      };
      w.grant = (r) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(w);
      this.waiting.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    });
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next !== undefined) next.grant(this.releaser());
      else this.free++;
    };
  }
}

/**
 * A build's slot, lent to one of its actions at a time: `acquire` takes the
 * lent slot when it is free, else waits for whichever comes first, the lent
 * slot coming back or a slot from the pool. (Waiting on the pool alone would
 * deadlock when every pool slot is held by a build.)
 */
export class LentSlot {
  private lent = false;
  /** Callers waiting for the lent slot; each returns false if it was served otherwise. */
  private readonly waiters: (() => boolean)[] = [];

  constructor(
    private readonly pool: SlotPool,
    private readonly priority = 0,
  ) {}

  private giveBack(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) if (w()) return;
      this.lent = false;
    };
  }

  acquire(signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    if (!this.lent) {
      this.lent = true;
      return Promise.resolve(this.giveBack());
    }
    const stop = new AbortController();
    const poolSignal = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    return new Promise<Release>((resolve, reject) => {
      let served = false;
      const waiter = (): boolean => {
        if (served) return false;
        served = true;
        stop.abort();
        resolve(this.giveBack());
        return true;
      };
      this.waiters.push(waiter);
      this.pool.acquire(this.priority, poolSignal).then(
        (release) => {
          if (served) {
            release();
            return;
          }
          served = true;
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(release);
        },
        (e: unknown) => {
          if (served) return;
          served = true;
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}

/**
 * One slot wanted through several ways at once: a run shared by identical
 * requests may start with whichever of its callers' slots comes first (a
 * build joining a primed run still queued at priming's low priority brings
 * its own slot, instead of waiting behind the builds that hold the pool).
 * The first acquisition to succeed is used; the others are cancelled or
 * given back.
 */
export class SlotRace {
  private won = false;
  private readonly cancels: AbortController[] = [];
  private settle!: { resolve: (r: Release) => void; reject: (e: Error) => void };
  readonly slot: Promise<Release>;

  constructor(private readonly signal?: AbortSignal) {
    this.slot = new Promise<Release>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.slot.catch(() => undefined);
    signal?.addEventListener(
      'abort',
      () => {
        if (this.won) return;
        this.won = true;
        for (const c of this.cancels) c.abort();
        this.settle.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      },
      { once: true },
    );
  }

  /** Adds a way to get the slot (ignored once one has won). */
  offer(acquire: (signal: AbortSignal) => Promise<Release>): void {
    if (this.won) return;
    const cancel = new AbortController();
    this.cancels.push(cancel);
    const signal =
      this.signal === undefined ? cancel.signal : AbortSignal.any([this.signal, cancel.signal]);
    acquire(signal).then(
      (release) => {
        if (this.won) {
          release();
          return;
        }
        this.won = true;
        for (const c of this.cancels) if (c !== cancel) c.abort();
        this.settle.resolve(release);
      },
      () => {
        // Cancelled, or failed: another offer (or the abort) settles the race.
      },
    );
  }
}
