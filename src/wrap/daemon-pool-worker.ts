// A worker thread's end of the daemon's worker pool (daemon-pool.ts): it
// decodes the request frames the main thread hands it, answers them with a
// DaemonHandler, and returns the encoded response frames, which the main
// thread only writes to the client's socket.
import { parentPort, type MessagePort } from 'node:worker_threads';
import { unreachable } from '../core/index.js';
import {
  DaemonActivity,
  decodingHandler,
  startDaemon,
  type Daemon,
  type DaemonHandler,
  type FrameExchange,
} from './daemon-server.js';
import type { DaemonRequest } from './daemon-protocol.js';
import type { FromWorker, PoolWorkerData, ToWorker } from './daemon-pool.js';

export interface PoolWorkerOptions {
  handler: DaemonHandler;
  /** Told about handler failures (the client then runs the command locally). */
  onError?: (err: unknown, req: DaemonRequest) => void;
  /** Runs when the pool closes (saving caches), before the worker reports that it is done. */
  close?: () => Promise<void> | void;
  /** This worker's PoolWorkerData: where it listens for clients itself. */
  pool?: PoolWorkerData;
}

/** Whether `b` is all of an ArrayBuffer: transferring it then takes no one else's bytes. */
function ownsBuffer(b: Uint8Array): b is Uint8Array<ArrayBuffer> {
  return (
    b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
  );
}

/** The frames as one array in an ArrayBuffer of its own. */
function owned(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const [only] = parts;
  if (parts.length === 1 && only !== undefined && ownsBuffer(only)) return only;
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * One exchange as seen from the worker. Output frames sent in the same turn
 * of the event loop (a hit's stdout, stderr and exit) travel to the main
 * thread as one message: each message costs the main thread as much as a
 * small write.
 */
function portExchange(
  port: MessagePort,
  id: number,
  ac: AbortController,
  ended: () => void,
): FrameExchange {
  let done = false;
  let pending: Uint8Array[] = [];
  let scheduled = false;
  const post = (last: boolean): void => {
    scheduled = false;
    if (pending.length === 0 || ac.signal.aborted) return;
    const frames = owned(pending);
    pending = [];
    const m: FromWorker = { type: 'frames', id, frames, last };
    port.postMessage(m, [frames.buffer]);
  };
  const end = (): void => {
    done = true;
    ended();
  };
  ac.signal.addEventListener('abort', end, { once: true });
  return {
    send(frames, last) {
      if (done) return;
      pending.push(frames);
      if (last) {
        end();
        post(true);
      } else if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          if (!done) post(false);
        });
      }
    },
    drop() {
      if (done) return;
      end();
      pending = [];
      const m: FromWorker = { type: 'drop', id };
      port.postMessage(m);
    },
    get done() {
      return done;
    },
    signal: ac.signal,
  };
}

/** Serves the pool's requests in this worker thread; call it once the worker's state is loaded. */
export function servePoolWorker(opts: PoolWorkerOptions): void {
  const port = parentPort;
  if (port === null) throw new Error('bug: servePoolWorker runs only in a worker thread');
  const handle = decodingHandler(opts.handler, opts.onError);
  const running = new Map<number, AbortController>();
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'request': {
        const ac = new AbortController();
        running.set(m.id, ac);
        handle(
          m.frame,
          portExchange(port, m.id, ac, () => running.delete(m.id)),
        );
        return;
      }
      case 'abort':
        running.get(m.id)?.abort();
        return;
      case 'close':
        void (own ?? Promise.resolve(undefined))
          .then((d) => d?.close())
          .then(opts.close)
          .catch(() => undefined)
          .then(() => {
            const closed: FromWorker = { type: 'closed' };
            port.postMessage(closed);
          });
        return;
      default:
        unreachable(m);
    }
  });
  // Its own socket, which the native client connects to directly; if it
  // cannot listen (a path too long, another daemon's worker there), its
  // clients go through the main thread as before.
  const { socket, activity } = opts.pool ?? {};
  const own =
    socket === undefined || activity === undefined
      ? undefined
      : startDaemon({
          socketPath: socket,
          idleTimeoutMs: Infinity, // the main thread's timeout ends the daemon
          activity: new DaemonActivity(activity),
          frameHandler: handle,
        }).catch((): Daemon | undefined => undefined);
  const ready: FromWorker = { type: 'ready' };
  port.postMessage(ready);
}
