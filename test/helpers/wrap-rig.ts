// A server on this machine (unix socket) and the environment that points
// specbuild-cc at it, with its own daemon socket, caches and wrapper log:
// the set-up of the wrapper tests that run through the real client, daemon,
// server and gcc.
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCliServer, type CliServer } from './cli-server.js';
import { readWrapperLog, type LogLine } from './cproject.js';
import { stopDaemonsUnder } from './daemons.js';

export interface WrapRig {
  server: CliServer;
  /** The project directory (empty). */
  proj: string;
  env: NodeJS.ProcessEnv;
  /** The daemon's socket. */
  sock: string;
  /** The wrapper log. */
  log: string;
  /** The log's last line. */
  last: () => LogLine;
  /** Stops the daemons under `dir` and the server. */
  stop: () => Promise<void>;
}

export async function startWrapRig(dir: string): Promise<WrapRig> {
  const server = await startCliServer(join(dir, 'cache'), {
    listen: `unix:${join(dir, 'reapi.sock')}`,
  });
  const proj = join(dir, 'p');
  mkdirSync(proj);
  const log = join(dir, 'wrapper.log');
  const sock = join(dir, 'daemon.sock');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SPECBUILD_SERVER: server.address,
    SPECBUILD_DAEMON_SOCKET: sock,
    XDG_CACHE_HOME: join(dir, 'xdg'),
    SPECBUILD_WRAPPER_LOG: log,
  };
  return {
    server,
    proj,
    env,
    sock,
    log,
    last: () => {
      const l = readWrapperLog(log).pop();
      if (l === undefined) throw new Error('no log line');
      return l;
    },
    stop: async () => {
      await stopDaemonsUnder(dir);
      await server.stop();
    },
  };
}

/** The file in a server's cache directory that holds exactly `bytes` (a blob), or undefined. */
export function blobHolding(cacheDir: string, bytes: Uint8Array): string | undefined {
  return readdirSync(cacheDir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(cacheDir, f))
    .find((p) => {
      try {
        return readFileSync(p).equals(bytes);
      } catch {
        return false; // a directory
      }
    });
}
