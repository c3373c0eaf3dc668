// The server's unix socket, with the mode asked for from its first moment.
// grpc-js binds and listens in one step, and the socket file takes its mode
// from the umask (0777 under umask 0: anyone on the machine could connect).
// So the socket is bound in a fresh 0700 directory beside its path, given
// its mode there, and only then linked into place.
import { chmod, link, lstat, mkdtemp, rm, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { errnoCode, SpecbuildError } from '../core/index.js';

/** Default mode of the socket: its owner only. */
export const DEFAULT_SOCKET_MODE = 0o600;

/** Longest path a unix socket can be bound at (sun_path, less its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

export interface UnixSocket {
  /** Removes the socket file, if it is still the one bound here. */
  release(): Promise<void>;
}

/**
 * Binds a unix socket at `path` with `mode`: `bind` must bind and listen on
 * the path it is given. A stale socket at `path` (its server is gone) is
 * replaced; a live one, or any other file, is refused.
 */
export async function bindUnixSocket(
  path: string,
  mode: number,
  bind: (path: string) => Promise<void>,
): Promise<UnixSocket> {
  await removeStaleSocket(path);
  // mkdtemp makes the directory 0700 whatever the umask.
  const dir = await mkdtemp(join(dirname(path), '.s'));
  try {
    const tmp = join(dir, 's');
    if (Buffer.byteLength(tmp) > MAX_SOCKET_PATH_BYTES) {
      throw new SpecbuildError(
        'server/listen',
        `cannot listen on unix:${path}: the path is too long for a unix socket`,
        { hint: `use a path of fewer than ${MAX_SOCKET_PATH_BYTES - 10} bytes` },
      );
    }
    await bind(tmp);
    await chmod(tmp, mode);
    // A link, not a rename: it never replaces what another server put there meanwhile.
    await link(tmp, path).catch((e: unknown) => {
      if (errnoCode(e) !== 'EEXIST') throw e;
      throw new SpecbuildError(
        'server/listen',
        `cannot listen on unix:${path}: another process created it meanwhile`,
      );
    });
    const { ino, dev } = await lstat(path);
    return {
      async release() {
        const now = await lstat(path).catch(() => undefined);
        if (now?.ino === ino && now.dev === dev) await unlink(path).catch(() => undefined);
      },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes a socket file left by a dead server; refuses one a live server still answers on. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) {
      throw new SpecbuildError(
        'server/listen',
        `cannot listen on unix:${path}: it is not a socket`,
        {
          hint: 'choose another --listen path',
        },
      );
    }
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  const live = await new Promise<boolean>((resolve) => {
    const sock = connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      resolve(false);
    });
  });
  if (live) {
    throw new SpecbuildError(
      'server/listen',
      `cannot listen on unix:${path}: another server is using it`,
      {
        hint: 'stop that server or choose another --listen path',
      },
    );
  }
  await unlink(path);
}
