// Where an executor stages actions: one directory per process under the
// cache's `exec/` (servers and builds may share a cache), and at start-up the
// removal of what dead processes left there. A crashed server's staging trees
// can hold millions of entries, so they are renamed aside at once and deleted
// in the background: start-up never waits on them.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, processAlive } from '../core/index.js';
import type { FsPool } from '../cas/index.js';

/** Prefix of leftovers being deleted, followed by the deleting process's pid. */
const TRASH_PREFIX = '.trash-';

export interface WorkDir {
  /** This process's own, empty work directory. */
  path: string;
  /** Leftovers of dead processes found at start-up (already moved out of the way). */
  leftovers: number;
  /** Settles once the leftovers are deleted. */
  cleared: Promise<void>;
}

/** The pid a name starts with (`123` or `.trash-123-…`), if any. */
function pidOf(name: string): number | undefined {
  const m = /^(?:\.trash-)?(\d+)(?:-|$)/.exec(name);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/**
 * Makes `base/<pid>` this process's empty work directory. Everything else in
 * `base` that no live process owns (directories of dead processes, the older
 * layout's staging directories, half-deleted trash) is renamed to trash,
 * which `cleared` deletes in the background.
 */
export async function prepareWorkDir(base: string): Promise<WorkDir> {
  await mkdir(base, { recursive: true });
  const trash: string[] = [];
  for (const name of await readdir(base)) {
    const pid = pidOf(name);
    const owned = pid !== undefined && pid !== process.pid && processAlive(pid);
    if (owned) continue; // another live server's or build's
    if (name.startsWith(TRASH_PREFIX)) {
      trash.push(join(base, name)); // its deleter died: finish the job
      continue;
    }
    const to = join(base, `${TRASH_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await rename(join(base, name), to);
      trash.push(to);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e; // another starting process took it
    }
  }
  const path = join(base, String(process.pid));
  await mkdir(path);
  const cleared = Promise.all(trash.map((t) => rm(t, { recursive: true, force: true }))).then(
    () => undefined,
  );
  cleared.catch(() => undefined); // the caller decides whether to report it
  return { path, leftovers: trash.length, cleared };
}

/**
 * Removes finished runs' staging directories off their callers' path: each
 * is renamed aside at once, beside the work directory as trash of this
 * process (which `prepareWorkDir` finishes if the process dies first), and
 * deleted in the background. Deleting the ~10 entries of a trivial action's
 * staging directory took 3.6 ms (p90 6.5) of its 20 ms on this ext4, each
 * unlink and rmdir ~0.15 ms in the kernel, so doing it synchronously would
 * only move the wait onto the event loop; fs.promises.rm's walk in turn cost
 * the loop ~4 ms per compile's tree (its lstat, readdir and rmdir callbacks),
 * so with a pool a worker thread deletes it. Past `maxPending` deletions in
 * flight, a caller waits for its own: trash cannot pile up faster than it goes.
 */
export class StagingRemover {
  private pending = 0;
  private readonly maxPending: number;
  private readonly pool: FsPool | undefined;

  constructor(
    private readonly workDir: string,
    opts: { maxPending?: number; pool?: FsPool | undefined } = {},
  ) {
    this.maxPending = opts.maxPending ?? 16;
    this.pool = opts.pool;
  }

  async remove(dir: string): Promise<void> {
    const trash = join(
      dirname(this.workDir),
      `${TRASH_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`,
    );
    // Where the rename cannot go (the work directory is a mount point), in place.
    const target = await rename(dir, trash).then(
      () => trash,
      () => dir,
    );
    this.pending++;
    const removed = this.delete(target, true)
      .catch(() => undefined)
      .finally(() => {
        this.pending--;
      });
    if (this.pending > this.maxPending) await removed;
  }

  /** Removes `dir` now (a failed or cancelled run's, whose caller waits); never fails. */
  async removeNow(dir: string): Promise<void> {
    await this.delete(dir, false).catch(() => undefined);
  }

  private delete(path: string, background: boolean): Promise<void> {
    return this.pool !== undefined
      ? this.pool.remove(path, { background })
      : rm(path, { recursive: true, force: true });
  }
}
