// The private directories that hold element builds' REAPI sockets. They live
// in the temporary directory (a unix socket's path has at most 107 bytes),
// named after the process that made them, so that the directories of a
// process killed outright (kill -9, a crash) are swept by the next build.
import { lstatSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'specbuild-reapi-';

/** Makes a private (0700) directory for one build's socket. */
export async function makeSocketDir(): Promise<string> {
  sweep ??= sweepStaleSocketDirs();
  await sweep;
  return mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

let sweep: Promise<number> | undefined;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive, another user's.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the socket directories, owned by this user, of processes that no
 * longer exist; returns how many. Directories of live processes (a
 * concurrent build) and of other users are left alone.
 */
export async function sweepStaleSocketDirs(dir = tmpdir()): Promise<number> {
  const uid = process.getuid?.();
  let removed = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    const path = join(dir, name);
    try {
      const st = lstatSync(path);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
    } catch {
      continue; // gone meanwhile
    }
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
