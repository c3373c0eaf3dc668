// The warm side of the wrappers: a unix-socket server that the native client
// (src/wrap/native/client.c, as specbuild-cc and specbuild-exec) hands each
// command to, so a compilation does not pay Node's start-up. It only moves
// frames: a handler decides what to do with each request. Whatever goes wrong
// here, the client is told to run the command itself, never to fail.
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

export interface DaemonOptions {
  socketPath: string;
  handler: DaemonHandler;
  /** Close after this long without a connection; default 10 minutes. */
  idleTimeoutMs?: number;
  /** Told about handler failures (the client then runs the command locally). */
  onError?: (err: unknown, req: DaemonRequest) => void;
  /** How often to check that the socket is still ours; default 5 s. */
  watchSocketMs?: number;
}

export interface Daemon {
  readonly socketPath: string;
  /** Resolves once the daemon closed: by close() or after the idle timeout. */
  readonly closed: Promise<void>;
  /** Stops accepting connections and resolves when the running exchanges ended. */
  close(): Promise<void>;
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

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const { socketPath, handler } = opts;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  await mkdir(dirname(socketPath), { recursive: true, mode: 0o700 });
  const sockets = new Set<Socket>();
  let idle: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let markClosed = (): void => undefined;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });

  const armIdle = (): void => {
    clearTimeout(idle);
    idle = undefined;
    if (closing === undefined && sockets.size === 0 && idleMs <= MAX_TIMER_MS)
      idle = setTimeout(() => void close(), Math.max(0, idleMs));
  };

  const respond = async (socket: Socket, req: DaemonRequest): Promise<void> => {
    const ac = new AbortController();
    let done = false;
    const finish = (frame: Uint8Array): void => {
      if (done) return;
      done = true;
      socket.end(frame);
    };
    socket.once('close', () => {
      if (!done) ac.abort();
      done = true;
    });
    const output = (type: 'stdout' | 'stderr', data: Uint8Array | string): void => {
      if (done) return;
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (const frame of encodeOutput(type, bytes)) socket.write(frame);
    };
    const reply: DaemonReply = {
      stdout: (data) => {
        output('stdout', data);
      },
      stderr: (data) => {
        output('stderr', data);
      },
      exit: (code) => {
        finish(encodeResponse({ type: 'exit', code }));
      },
      runLocally: () => {
        finish(encodeResponse({ type: 'local' }));
      },
      get done() {
        return done;
      },
      signal: ac.signal,
    };
    try {
      await handler(req, reply);
    } catch (e) {
      try {
        opts.onError?.(e, req);
      } catch {
        // a failing error reporter changes nothing: the command runs locally
      }
    }
    reply.runLocally(); // no-op when the handler ended the exchange
  };

  const serve = (socket: Socket): void => {
    sockets.add(socket);
    armIdle();
    socket.on('close', () => {
      sockets.delete(socket);
      armIdle();
    });
    socket.on('error', () => undefined); // the client went away; 'close' follows
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    const chunks: Buffer[] = [];
    let have = 0;
    let need = -1;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      try {
        if (need < 0 && have >= REQUEST_HEADER_BYTES)
          need = requestFrameLength(Buffer.concat(chunks, have));
        if (need < 0 || have < need) return;
        socket.off('data', onData);
        socket.setTimeout(0);
        // Bytes after the frame make it invalid too: decodeRequest checks the length.
        const req = decodeRequest(Buffer.concat(chunks, have));
        void respond(socket, req);
      } catch {
        socket.destroy(); // a bad frame: the client falls back to a local run
      }
    };
    socket.on('data', onData);
  };

  const { server, ino } = await listen(socketPath, serve);
  /** Whether the socket path still names our socket (not removed, not replaced). */
  const ours = async (): Promise<boolean> => {
    const st = await lstat(socketPath).catch(() => undefined);
    return st?.ino === ino;
  };
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(idle);
      clearInterval(watch);
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
  armIdle();
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
