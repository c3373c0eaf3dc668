// Several serving processes behind one address. grpc-js runs every call on
// one event loop, and a remotely executed compile costs that loop ~12 ms of
// CPU (HTTP/2, protobuf, the executor's checks and messages): one process
// serves at most ~80 executed actions a second, whatever the cores. With
// `--processes N`, the primary process owns the listening socket and hands
// each new connection to one of N serving processes in turn (node:cluster's
// round robin); each serving process runs the whole gRPC server over the same
// cache directory (blobs and action results are files written atomically,
// each process stages under its own `exec/<pid>`), and asks the primary for
// every CPU slot, so that `--jobs` stays one limit for all of them.
//
// The primary's event loop then does per connection what each call cost
// before, and per executed action two small messages (a slot and its release).
import {
  SlotPool,
  SpecbuildError,
  type ErrorCode,
  type Release,
  type Slots,
} from '../core/index.js';

/** A serving process's settings, as its primary parsed them (JSON over IPC). */
export interface WireSettings {
  cacheDir: string;
  quotaBytes: number;
  jobs: number;
  maxInputEntries: number | null;
  instance: string;
  /** PEM files' bytes, base64. */
  tls: { cert: string; key: string; clientCa: string | null } | null;
  token: string | null;
  processes: number;
  debug: boolean;
}

/** What a serving process tells its primary. */
export type ToPrimary =
  | { t: 'hello' }
  | { t: 'slot'; id: number; priority: number }
  | { t: 'release'; id: number }
  | { t: 'cancel'; id: number }
  | { t: 'ready'; address: string; platform: string | undefined }
  | { t: 'failed'; code: string; message: string; hint: string | undefined };

/** What the primary tells a serving process. */
export type ToServing =
  | { t: 'grant'; id: number }
  | { t: 'settings'; listen: string; settings: WireSettings }
  | { t: 'stop' };

/** Set to 1 in a serving process's environment (with node:cluster's own). */
export const SERVING_ENV = 'SPECBUILD_SERVING';

function isMessage(m: unknown): m is { t: string; id?: unknown } {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** A serving process as the broker sees it (a node:cluster Worker). */
export interface ServingPeer {
  isConnected(): boolean;
  send(m: ToServing): unknown;
}

/**
 * The primary's side of the slots: one SlotPool of `--jobs` for every serving
 * process. A process that exits gives back what it held and stops waiting.
 */
export class SlotBroker<Worker extends ServingPeer = ServingPeer> {
  private readonly pool: SlotPool;
  /** Per serving process: its granted slots, and its requests still waiting. */
  private readonly held = new Map<
    Worker,
    { granted: Map<number, Release>; waiting: Map<number, AbortController> }
  >();

  constructor(jobs: number) {
    this.pool = new SlotPool(jobs);
  }

  /** Slots in use, by all the serving processes. */
  get busy(): number {
    return this.pool.busy;
  }

  /** Handles a message of `worker`; false when it is not about slots. */
  handle(worker: Worker, m: unknown): boolean {
    if (!isMessage(m) || typeof m.id !== 'number') return false;
    const id = m.id;
    const mine = this.of(worker);
    switch (m.t) {
      case 'slot': {
        const priority = (m as { priority?: unknown }).priority;
        const abort = new AbortController();
        mine.waiting.set(id, abort);
        this.pool.acquire(typeof priority === 'number' ? priority : 0, abort.signal).then(
          (release) => {
            mine.waiting.delete(id);
            // Cancelled, or gone, meanwhile (a cancel handled after the pool
            // granted but before this ran found nothing to cancel): the slot
            // goes straight back.
            if (abort.signal.aborted || this.held.get(worker) !== mine || !worker.isConnected()) {
              release();
              return;
            }
            mine.granted.set(id, release);
            worker.send({ t: 'grant', id } satisfies ToServing);
          },
          () => {
            mine.waiting.delete(id);
          },
        );
        return true;
      }
      case 'release':
      case 'cancel': {
        // A cancel can cross its grant: then it gives the slot back.
        mine.waiting.get(id)?.abort();
        mine.granted.get(id)?.();
        mine.granted.delete(id);
        return true;
      }
      default:
        return false;
    }
  }

  /** `worker` exited: its slots are given back, its waits dropped. */
  forget(worker: Worker): void {
    const mine = this.held.get(worker);
    if (mine === undefined) return;
    this.held.delete(worker);
    for (const a of mine.waiting.values()) a.abort();
    for (const r of mine.granted.values()) r();
  }

  private of(worker: Worker): {
    granted: Map<number, Release>;
    waiting: Map<number, AbortController>;
  } {
    let mine = this.held.get(worker);
    if (mine === undefined) {
      mine = { granted: new Map(), waiting: new Map() };
      this.held.set(worker, mine);
    }
    return mine;
  }
}

/** A serving process's slots: each one asked of the primary. */
export class PrimarySlots implements Slots {
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Release) => void>();

  constructor(private readonly send: (m: ToPrimary) => void) {}

  /** Feeds a message from the primary; false when it is not a grant. */
  handle(m: unknown): boolean {
    if (!isMessage(m) || m.t !== 'grant' || typeof m.id !== 'number') return false;
    const grant = this.waiting.get(m.id);
    this.waiting.delete(m.id);
    // A grant that crossed its cancel: given back (the primary may have
    // recorded it before the cancel arrived).
    if (grant === undefined) this.send({ t: 'release', id: m.id });
    else grant(this.releaser(m.id));
    return true;
  }

  acquire(priority = 0, signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    const id = this.nextId++;
    return new Promise<Release>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.waiting.delete(id)) return;
        this.send({ t: 'cancel', id });
        reject(signal?.reason as Error);
      };
      this.waiting.set(id, (release) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send({ t: 'slot', id, priority });
    });
  }

  private releaser(id: number): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.send({ t: 'release', id });
    };
  }
}

/** A serving process's start-up error, as the primary reports it. */
export function failedError(m: ToPrimary & { t: 'failed' }): SpecbuildError {
  return new SpecbuildError(
    m.code as ErrorCode,
    m.message,
    m.hint === undefined ? {} : { hint: m.hint },
  );
}
