// Disposable temporary directories for tests.
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir extends AsyncDisposable {
  path: string;
}

export async function tempDir(prefix = 'specbuild-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return {
    path,
    async [Symbol.asyncDispose]() {
      await chmod(path, 0o755).catch(() => undefined);
      await rm(path, { recursive: true, force: true });
    },
  };
}
