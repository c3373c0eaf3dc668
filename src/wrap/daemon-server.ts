// The warm side of the wrappers: a unix-socket server that the native client
// (src/wrap/native/client.c, as specbuild-cc and specbuild-exec) hands each
// command to, so a compilation does not pay Node's start-up. It only moves
// frames: a handler decides what to do with each request, here in this thread
// (a DaemonHandler) or elsewhere (a FrameHandler: the worker pool of
// daemon-pool.ts). Whatever goes wrong, the client is told to run the command
// itself, never to fail.
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  REQUEST_HEADER_BYTES,
  decodeRequest,
  encodeOutput,
  encodeResponse,
  requestFrameLength,
  type DaemonRequest,
} from './daemon-protocol.js';

/** How the handler answers one request; calls after the exchange ended are ignored. */
export interface DaemonReply {
  stdout(data: Uint8Array | string): void;
  stderr(data: Uint8Array | string): void;
  /** Ends the exchange: the client exits with this code (0..255; others become 255). */
  exit(code: number): void;
  /** Ends the exchange: the client runs the command itself. */
  runLocally(): void;
  /** True once exit() or runLocally() was called, or the client went away. */
  readonly done: boolean;
  /** Aborted when the client disconnects before the exchange ended. */
  readonly signal: AbortSignal;
}

/**
 * Answers one request. The exchange must be ended by the time the returned
 * promise settles; if it was not, or the handler threw, the client is told to
 * run the command locally.
 */
export type DaemonHandler = (req: DaemonRequest, reply: DaemonReply) => void | Promise<void>;

/**
 * One exchange at the level of encoded frames: what a FrameHandler gets (and
 * what a DaemonReply is built on). Calls after the exchange ended are ignored.
 */
export interface FrameExchange {
  /** Sends encoded response frames; `last` when they end with the final 'X' or 'L' frame. */
  send(frames: Uint8Array, last: boolean): void;
  /**
   * Ends the exchange by closing the connection unanswered (a malformed
   * request, a crashed worker): the client runs the command itself, as after
   * any broken connection, and logs it as a fallback.
   */
  drop(): void;
  /** True once the exchange ended, or the client went away. */
  readonly done: boolean;
  /** Aborted when the client disconnects before the exchange ended. */
  readonly signal: AbortSignal;
}

/**
 * Takes over one exchange from its raw request frame (whose header and length
 * were checked, nothing else) and ends it later. It may return what to call
 * if the client goes away before the exchange ended: cheaper than listening
 * to `exchange.signal`, which the main thread of a busy daemon notices. If it
 * throws, the client runs the command locally.
 */
export type FrameHandler = (
  frame: Uint8Array<ArrayBuffer>,
  exchange: FrameExchange,
) => (() => void) | undefined;

/**
 * Connections counted across the threads of one daemon: its main thread and
 * the worker threads that listen on sockets of their own (daemon-pool.ts)
 * all report to it, and the main thread's idle timeout counts them all.
 */
export class DaemonActivity {
  private readonly open: Int32Array;
  private readonly last: BigInt64Array;

  /** A new table, or (in another thread) the one whose `buffer` was passed. */
  constructor(readonly buffer = new SharedArrayBuffer(16)) {
    this.open = new Int32Array(buffer, 0, 1);
    this.last = new BigInt64Array(buffer, 8, 1);
  }

  opened(): void {
    Atomics.add(this.open, 0, 1);
  }

  closed(): void {
    Atomics.store(this.last, 0, BigInt(Date.now()));
    Atomics.sub(this.open, 0, 1);
  }

  /** Connections open now, in every thread. */
  get connections(): number {
    return Atomics.load(this.open, 0);
  }

  /** When the last connection ended (Date.now()), in any thread; 0 if none did. */
  get lastEnded(): number {
    return Number(Atomics.load(this.last, 0));
  }
}

interface DaemonBaseOptions {
  socketPath: string;
  /** Close after this long without a connection; default 10 minutes. */
  idleTimeoutMs?: number;
  /**
   * Reports this daemon's connections there; the idle timeout then counts
   * every connection reported there (by worker threads too).
   */
  activity?: DaemonActivity;
  /** How often to check that the socket is still ours; default 5 s. */
  watchSocketMs?: number;
}

export type DaemonOptions = DaemonBaseOptions &
  (
    | {
        /** Answers each request in this thread. */
        handler: DaemonHandler;
        /** Told about handler failures (the client then runs the command locally). */
        onError?: (err: unknown, req: DaemonRequest) => void;
      }
    | {
        /** Answers each raw request frame (the worker pool). */
        frameHandler: FrameHandler;
      }
  );

export interface Daemon {
  readonly socketPath: string;
  /** Resolves once the daemon closed: by close() or after the idle timeout. */
  readonly closed: Promise<void>;
  /** Stops accepting connections and resolves when the running exchanges ended. */
  close(): Promise<void>;
}

/** A DaemonReply that encodes what the handler says into frames for `exchange`. */
export function replyOver(exchange: FrameExchange): DaemonReply {
  const output = (type: 'stdout' | 'stderr', data: Uint8Array | string): void => {
    if (exchange.done) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    for (const frame of encodeOutput(type, bytes)) exchange.send(frame, false);
  };
  return {
    stdout: (data) => {
      output('stdout', data);
    },
    stderr: (data) => {
      output('stderr', data);
    },
    exit: (code) => {
      if (!exchange.done) exchange.send(encodeResponse({ type: 'exit', code }), true);
    },
    runLocally: () => {
      if (!exchange.done) exchange.send(encodeResponse({ type: 'local' }), true);
    },
    get done() {
      return exchange.done;
    },
    signal: exchange.signal,
  };
}

/**
 * A FrameHandler that decodes each frame and answers it with `handler`: a
 * frame that does not decode is dropped; a handler that throws, or returns
 * without ending the exchange, has the client run the command locally.
 */
export function decodingHandler(
  handler: DaemonHandler,
  onError?: (err: unknown, req: DaemonRequest) => void,
): FrameHandler {
  return (frame, exchange) => {
    let req: DaemonRequest;
    try {
      req = decodeRequest(frame);
    } catch {
      exchange.drop(); // a bad frame: the client falls back to a local run
      return undefined;
    }
    void answer(handler, req, exchange, onError);
    return undefined;
  };
}

async function answer(
  handler: DaemonHandler,
  req: DaemonRequest,
  exchange: FrameExchange,
  onError: ((err: unknown, req: DaemonRequest) => void) | undefined,
): Promise<void> {
  const reply = replyOver(exchange);
  try {
    await handler(req, reply);
  } catch (e) {
    try {
      onError?.(e, req);
    } catch {
      // a failing error reporter changes nothing: the command runs locally
    }
  }
  reply.runLocally(); // no-op when the handler ended the exchange
}

export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_WATCH_SOCKET_MS = 5_000;
/** A client that connected must send its request within this time. */
const REQUEST_TIMEOUT_MS = 10_000;
/** setTimeout's largest delay; longer idle timeouts mean "never". */
const MAX_TIMER_MS = 2 ** 31 - 1;

function listenOnce(path: string, onConnection: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve(server);
    });
    // The socket is bound inside listen(): create it owner-only from the start.
    let oldMask: number | undefined;
    try {
      oldMask = process.umask(0o177);
    } catch {
      // umask cannot be set in worker threads; the chmod below still applies.
    }
    try {
      server.listen(path);
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
  });
}

/** Whether something accepts connections on the unix socket at path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(true); // alive but busy: better not to remove it
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * Listens on `path` without ever taking it from a live daemon. The socket is
 * bound at a private temporary name and hard-linked into place (link fails if
 * anything is there), so that closing later unlinks only the temporary name:
 * libuv removes the path it bound, which might by then be another daemon's.
 */
async function listen(
  path: string,
  onConnection: (s: Socket) => void,
): Promise<{ server: Server; ino: number }> {
  const tmp = `${path}.${String(process.pid)}-${randomBytes(4).toString('hex')}.tmp`;
  const server = await listenOnce(tmp, onConnection);
  try {
    await chmod(tmp, 0o600); // in case umask could not be set
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (await answers(path)) throw new Error(`a daemon is already listening on ${path}`);
      if (!(await lstat(path)).isSocket())
        throw new Error(`${path} exists and is not a socket; not removing it`);
      await unlink(path); // stale: left by a daemon that died
      await link(tmp, path);
    }
    await unlink(tmp);
    return { server, ino: (await lstat(path)).ino };
  } catch (e) {
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * The exchange with the client on one socket. Its AbortController is made
 * only when someone asks for the signal: the worker pool does not, and every
 * allocation per connection shows in the main thread's time per command.
 */
class SocketExchange implements FrameExchange {
  done = false;
  /** What the frame handler wants called if the client goes away first. */
  onGone: (() => void) | undefined;
  private gone = false;
  private ac: AbortController | undefined;

  constructor(private readonly socket: Socket) {}

  get signal(): AbortSignal {
    if (this.ac === undefined) {
      this.ac = new AbortController();
      if (this.gone) this.ac.abort();
    }
    return this.ac.signal;
  }

  send(frames: Uint8Array, last: boolean): void {
    if (this.done) return;
    if (!last) {
      this.socket.write(frames);
      return;
    }
    this.done = true;
    // When the write completed at once (all but very long output), the
    // kernel has the bytes and the connection closes right away: no shutdown
    // request, and no waiting for the client to close its end, each of which
    // is another turn of the main thread's loop per command.
    this.socket.write(frames);
    if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end(() => this.socket.destroy());
  }

  drop(): void {
    if (this.done) return;
    this.done = true;
    this.socket.destroy();
  }

  /** The connection closed. */
  closed(): void {
    if (this.done) return;
    this.done = true;
    this.gone = true;
    this.ac?.abort();
    this.onGone?.();
  }
}

/** Reads one request frame from `socket`, then calls `onFrame` (or destroys a bad one). */
function readFrame(socket: Socket, onFrame: (frame: Uint8Array<ArrayBuffer>) => void): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let need = -1;
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    have += chunk.length;
    try {
      if (need < 0 && have >= REQUEST_HEADER_BYTES)
        need = requestFrameLength(chunks.length === 1 ? chunk : Buffer.concat(chunks, have));
      if (need < 0 || have < need) return;
    } catch {
      socket.destroy(); // a bad header: the client falls back to a local run
      return;
    }
    socket.off('data', onData);
    // The frame in memory of its own (a Buffer may share a pooled one), so
    // that a worker pool can transfer it. Bytes after the frame make it
    // invalid too: decodeRequest checks the length.
    const frame = new Uint8Array(have);
    let at = 0;
    for (const c of chunks) {
      frame.set(c, at);
      at += c.length;
    }
    onFrame(frame);
  };
  socket.on('data', onData);
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { socketPath } = opts;
  const handle =
    'frameHandler' in opts ? opts.frameHandler : decodingHandler(opts.handler, opts.onError);
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  const sockets = new Set<Socket>();
  /** Connections whose request has not arrived yet, with their deadlines. */
  const awaiting = new Map<Socket, number>();
  const activity = opts.activity;
  let lastBusy = Date.now();
  let idle: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let markClosed = (): void => undefined;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });

  // One timer, re-armed when it fires, rather than one per connection: the
  // daemon closes idleMs after the last connection ended.
  const armIdle = (delay: number): void => {
    if (closing === undefined && idleMs <= MAX_TIMER_MS)
      idle = setTimeout(checkIdle, Math.min(Math.max(0, delay), MAX_TIMER_MS));
  };
  const checkIdle = (): void => {
    if (sockets.size > 0 || (activity?.connections ?? 0) > 0) {
      armIdle(idleMs);
      return;
    }
    const left = Math.max(lastBusy, activity?.lastEnded ?? 0) + idleMs - Date.now();
    if (left <= 0) void close();
    else armIdle(left);
  };

  const serve = (socket: Socket): void => {
    sockets.add(socket);
    activity?.opened();
    awaiting.set(socket, performance.now() + REQUEST_TIMEOUT_MS);
    let exchange: SocketExchange | undefined;
    socket.on('close', () => {
      sockets.delete(socket);
      activity?.closed();
      awaiting.delete(socket);
      lastBusy = Date.now();
      exchange?.closed();
    });
    socket.on('error', () => undefined); // the client went away; 'close' follows
    readFrame(socket, (frame) => {
      awaiting.delete(socket);
      const ex = new SocketExchange(socket);
      exchange = ex;
      try {
        ex.onGone = handle(frame, ex);
      } catch {
        ex.send(encodeResponse({ type: 'local' }), true);
      }
    });
  };

  const { server, ino } = await listen(socketPath, serve);
  // Clients that connected but sent no request in time are let go: one sweep
  // every few seconds instead of a timer per connection.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [socket, deadline] of awaiting) if (deadline <= now) socket.destroy();
  }, REQUEST_TIMEOUT_MS / 4);
  sweep.unref();
  /** Whether the socket path still names our socket (not removed, not replaced). */
  const ours = async (): Promise<boolean> => {
    const st = await lstat(socketPath).catch(() => undefined);
    return st?.ino === ino;
  };
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(idle);
      clearInterval(watch);
      clearInterval(sweep);
      server.close(() => {
        resolve();
      });
    })
      .then(async () => {
        if (await ours()) await unlink(socketPath).catch(() => undefined);
      })
      .then(() => {
        markClosed();
      });
    return closing;
  };
  armIdle(idleMs);
  // A daemon whose socket was removed or replaced (its directory deleted, a
  // newer daemon in its place) can no longer be reached: it exits.
  const watch = setInterval(() => {
    void ours().then((yes) => {
      if (!yes) void close();
    });
  }, opts.watchSocketMs ?? DEFAULT_WATCH_SOCKET_MS);
  watch.unref();
  return { socketPath, closed, close };
}
