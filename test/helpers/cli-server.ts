// Starts `specbuild server` as a real child process on a free TCP port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cliMain } from './paths.js';

export async function startCliServer(
  cacheDir: string,
): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [
    cliMain,
    'server',
    '--listen',
    '127.0.0.1:0',
    '--cache-dir',
    cacheDir,
    '--jobs',
    '2',
  ]);
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const address = /listening on (\S+)/.exec(line.toString())?.[1];
  assert.ok(address, line.toString());
  return {
    address,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}
