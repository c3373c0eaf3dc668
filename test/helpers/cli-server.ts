// Starts `specbuild server` as a real child process on a free TCP port.
import assert from 'node:assert/strict';
import { cliMain } from './paths.js';
import { startService, type Exit } from './process.js';

export interface CliServer {
  /** host:port */
  address: string;
  /** The instance it says it serves. */
  instance: string;
  /** SIGTERM; resolves with how it exited (SIGKILL after 15 s); again: the same exit. */
  stop: () => Promise<Exit>;
  /** SIGKILL, as a crash would. */
  kill: () => Promise<Exit>;
  pid: number;
  /** Everything it printed. */
  output: () => string;
}

export async function startCliServer(
  cacheDir: string,
  opts: {
    instance?: string;
    jobs?: number;
    listen?: string;
    /** Options for Node itself (e.g. --trace-gc), before the script. */
    nodeArgs?: string[];
    /** More options of `specbuild server`. */
    args?: string[];
  } = {},
): Promise<CliServer> {
  const args = [
    ...(opts.nodeArgs ?? []),
    cliMain,
    'server',
    '--listen',
    opts.listen ?? '127.0.0.1:0',
    '--cache-dir',
    cacheDir,
  ];
  args.push('--jobs', String(opts.jobs ?? 2));
  if (opts.instance !== undefined) args.push('--instance', opts.instance);
  args.push(...(opts.args ?? []));
  const service = await startService(process.execPath, args, {
    ready: (out) => {
      const m = /^specbuild server listening on (\S+) \(instance "(.*)", cache .*\)$/m.exec(out);
      return m?.[1] === undefined ? undefined : { address: m[1], instance: m[2] ?? '' };
    },
  });
  return {
    ...service.value,
    stop: service.stop,
    kill: service.kill,
    pid: service.pid,
    output: service.output,
  };
}

/** Stops the server and fails the test unless it exited 0 on SIGTERM. */
export async function assertStopsCleanly(server: CliServer): Promise<void> {
  assert.deepEqual(
    await server.stop(),
    { code: 0, signal: null },
    `server did not stop cleanly on SIGTERM: ${server.output()}`,
  );
}
