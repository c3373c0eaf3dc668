// A small tmpfs mounted for one test: a disk that really fills up, or one on
// which a runaway test cannot take the machine's disk with it. Mounting needs
// root; without it the test fails saying so (it is never skipped).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

export interface Tmpfs extends AsyncDisposable {
  path: string;
}

/** Mounts a tmpfs of `size` (e.g. `2m`) and at most `inodes` inodes on `path`. */
export async function mountTmpfs(
  path: string,
  opts: { size: string; inodes?: number },
): Promise<Tmpfs> {
  assert.equal(
    process.getuid?.(),
    0,
    `this test mounts a tmpfs on ${path} and must run as root (e.g. sudo npm test)`,
  );
  await mkdir(path, { recursive: true });
  const options = `size=${opts.size}${opts.inodes === undefined ? '' : `,nr_inodes=${opts.inodes}`}`;
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path], { stdio: 'pipe' });
  return {
    path,
    [Symbol.asyncDispose]() {
      try {
        execFileSync('umount', [path], { stdio: 'pipe' });
      } catch {
        // Still busy (a server being torn down): detach it now, freed once unused.
        execFileSync('umount', ['--lazy', path], { stdio: 'pipe' });
      }
      return Promise.resolve();
    },
  };
}
