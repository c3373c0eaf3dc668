// The wrapper daemon's worker threads (issue 12): on one thread the work of
// each command (the -M scan, hashing, protobuf, gRPC) cost the daemon 7-8 ms
// of its only thread per hit and 15 ms per miss, so hits per second did not
// grow with cores. Here the main thread only moves frames: it hands each raw
// request frame to a worker and writes back the encoded frames the worker
// returns (daemon-pool-worker.ts is the other end).
//
// Each worker also listens on a socket of its own beside the daemon's
// (workerSocketPath), and the native client, which computes the same hash,
// connects there directly: then the main thread does nothing per command
// (it cost 0.6-1.0 ms of its time per hit, the one part of a hit that did not
// grow with cores). The main socket stays for the first command, for clients
// that find no worker socket, and for starting the daemon.
//
// A request goes to the worker its command hashes to, always (another
// worker only while that one is dead), so that the same command always meets
// the same direct-mode memory and stat cache: a command sent elsewhere would
// find no memory of itself and compile again where it would have been a
// hit. A worker's work is mostly waiting (a compiler, a gRPC call), so a
// busier one does not hold the others up. A worker that crashes
// takes its requests with it (their clients run the commands themselves) and
// is replaced.
import { readlink, rename, symlink, unlink } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { commandHash } from './daemon-protocol.js';
import { DaemonActivity, type FrameExchange, type FrameHandler } from './daemon-server.js';

/** From the main thread to a worker. */
export type ToWorker =
  | { type: 'request'; id: number; frame: Uint8Array<ArrayBuffer> }
  | { type: 'abort'; id: number }
  | { type: 'close' };

/** From a worker to the main thread. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'frames'; id: number; frames: Uint8Array<ArrayBuffer>; last: boolean }
  | { type: 'drop'; id: number }
  | { type: 'closed' };

/** What each worker gets as its workerData. */
export interface PoolWorkerData {
  /** Its place in the pool, 0 … size-1; a replacement gets the same. */
  index: number;
  /** WorkerPoolOptions.data. */
  data: unknown;
  /** Where it listens for clients itself (workerSocketPath), if anywhere. */
  socket?: string;
  /** The daemon's DaemonActivity buffer, to which it reports its connections. */
  activity: SharedArrayBuffer;
}

/** The socket worker `index` of the daemon on `socketPath` listens on. */
export function workerSocketPath(socketPath: string, index: number): string {
  return `${socketPath}.w${String(index)}`;
}

/** The symbolic link that tells clients how many worker sockets there are. */
export function workersLinkPath(socketPath: string): string {
  return `${socketPath}.workers`;
}

/**
 * Says, beside the daemon's socket, that `size` workers listen on sockets of
 * their own: a symbolic link whose target is "SIZE:PID" (one readlink for a
 * client, and replaced atomically). Returns what removes it again, if it is
 * still ours.
 */
export async function publishWorkers(
  socketPath: string,
  size: number,
): Promise<() => Promise<void>> {
  const link = workersLinkPath(socketPath);
  const target = `${String(size)}:${String(process.pid)}`;
  const tmp = `${link}.${String(process.pid)}.tmp`;
  await unlink(tmp).catch(() => undefined);
  await symlink(target, tmp);
  await rename(tmp, link);
  return async () => {
    if ((await readlink(link).catch(() => undefined)) === target)
      await unlink(link).catch(() => undefined);
  };
}

export interface WorkerPoolOptions {
  /** The workers' entry module (compiled JavaScript); it calls servePoolWorker(). */
  url: URL;
  size: number;
  /** Given to every worker beside its index; must be cloneable. */
  data?: unknown;
  /** Told when a worker died (its requests then run locally; it is replaced). */
  onCrash?: (index: number, err: unknown) => void;
  /** The daemon's socket: each worker also listens on workerSocketPath(socketPath, index). */
  socketPath?: string;
}

export interface WorkerPool {
  readonly size: number;
  /** Where the workers report their connections: for the main daemon's idle timeout. */
  readonly activity: DaemonActivity;
  /** For startDaemon: hands each request to a worker. */
  readonly frameHandler: FrameHandler;
  /**
   * Asks every worker to finish (to save its caches), waits for them at most
   * `timeoutMs` (default 5 s), then ends them all.
   */
  close(timeoutMs?: number): Promise<void>;
}

/** A worker that dies this many times in a row before it is ready is not started again. */
const MAX_FAILED_STARTS = 3;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

interface Slot {
  readonly index: number;
  worker: Worker;
  ready: boolean;
  failedStarts: number;
  /** Given up: its worker kept dying at start-up. */
  dead: boolean;
  /** Its worker exited (closing, or given up). */
  exited: boolean;
  /** Requests handed to the current worker and not yet answered. */
  readonly inflight: Map<number, FrameExchange>;
  /** Resolves close()'s wait for this worker. */
  onClosed?: () => void;
}

/** Starts `size` workers at once; requests sent before one is ready wait in its queue. */
export function startWorkerPool(opts: WorkerPoolOptions): WorkerPool {
  if (!Number.isSafeInteger(opts.size) || opts.size < 1)
    throw new RangeError(`a worker pool needs at least one worker, not ${String(opts.size)}`);
  let nextId = 0;
  let closing = false;
  const activity = new DaemonActivity();

  const spawn = (index: number): Worker => {
    const data: PoolWorkerData = {
      index,
      data: opts.data,
      socket: opts.socketPath === undefined ? undefined : workerSocketPath(opts.socketPath, index),
      activity: activity.buffer,
    };
    return new Worker(opts.url, { workerData: data });
  };

  const watch = (slot: Slot, worker: Worker): void => {
    let error: unknown;
    worker.on('message', (m: FromWorker) => {
      onMessage(slot, m);
    });
    worker.on('error', (e) => {
      error = e; // 'exit' follows
    });
    worker.on('exit', (code) => {
      if (slot.worker === worker) onExit(slot, error ?? new Error(`worker exited with ${code}`));
    });
  };

  const onMessage = (slot: Slot, m: FromWorker): void => {
    switch (m.type) {
      case 'frames': {
        const exchange = slot.inflight.get(m.id);
        if (m.last) slot.inflight.delete(m.id);
        exchange?.send(m.frames, m.last);
        return;
      }
      case 'drop': {
        const exchange = slot.inflight.get(m.id);
        slot.inflight.delete(m.id);
        exchange?.drop();
        return;
      }
      case 'ready':
        slot.ready = true;
        slot.failedStarts = 0;
        return;
      case 'closed':
        slot.onClosed?.();
        return;
    }
  };

  const onExit = (slot: Slot, err: unknown): void => {
    slot.exited = true;
    // Its clients see the connection close and run their commands themselves.
    for (const exchange of slot.inflight.values()) exchange.drop();
    slot.inflight.clear();
    slot.onClosed?.();
    if (closing) return;
    try {
      opts.onCrash?.(slot.index, err);
    } catch {
      // a failing reporter changes nothing
    }
    if (!slot.ready && ++slot.failedStarts >= MAX_FAILED_STARTS) {
      slot.dead = true;
      return;
    }
    slot.worker = spawn(slot.index);
    slot.ready = false;
    slot.exited = false;
    watch(slot, slot.worker);
  };

  const slots: Slot[] = [];
  for (let index = 0; index < opts.size; index++) {
    const slot: Slot = {
      index,
      worker: spawn(index),
      ready: false,
      failedStarts: 0,
      dead: false,
      exited: false,
      inflight: new Map(),
    };
    watch(slot, slot.worker);
    slots.push(slot);
  }

  /** The command's own worker, or while it is dead the least busy one. */
  const route = (frame: Uint8Array): Slot | undefined => {
    const home = slots[commandHash(frame) % slots.length];
    if (home !== undefined && !home.dead) return home;
    let least: Slot | undefined;
    for (const s of slots) {
      if (!s.dead && (least === undefined || s.inflight.size < least.inflight.size)) least = s;
    }
    return least;
  };

  const frameHandler: FrameHandler = (frame, exchange) => {
    const slot = route(frame);
    if (slot === undefined || closing) {
      exchange.drop(); // no worker left: the client runs the command and logs a fallback
      return undefined;
    }
    const id = nextId++;
    const worker = slot.worker;
    slot.inflight.set(id, exchange);
    const m: ToWorker = { type: 'request', id, frame };
    worker.postMessage(m, [frame.buffer]);
    // The client went away: the worker aborts its work for it.
    return () => {
      if (slot.worker !== worker || !slot.inflight.delete(id)) return;
      const abort: ToWorker = { type: 'abort', id };
      worker.postMessage(abort);
    };
  };

  const close = async (timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> => {
    closing = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([
      timeout,
      Promise.all(
        slots.map((slot) => {
          if (slot.exited) return Promise.resolve();
          const done = new Promise<void>((resolve) => {
            slot.onClosed = resolve;
          });
          const m: ToWorker = { type: 'close' };
          slot.worker.postMessage(m);
          return done;
        }),
      ),
    ]);
    clearTimeout(timer);
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  };

  return { size: opts.size, activity, frameHandler, close };
}
