// Disposable temporary directories for tests. Disposal first stops any
// wrapper daemon whose socket lies inside (see daemons.ts), then removes it.
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopDaemonsUnder } from './daemons.js';

export interface TempDir extends AsyncDisposable {
  path: string;
}

export async function tempDir(prefix = 'specbuild-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    async [Symbol.asyncDispose]() {
      await stopDaemonsUnder(path);
      await chmod(path, 0o755).catch(() => undefined);
      await rm(path, { recursive: true, force: true });
    },
  };
}
