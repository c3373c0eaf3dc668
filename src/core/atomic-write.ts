// Writing a file so that a reader (or a run after a crash) sees either the
// old content or the new, never half of it: the data goes to a temporary
// file beside the target, which is then renamed over it.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Prefix of temporary files beside their target; skip such names when listing. */
export const ATOMIC_TEMP_PREFIX = '.tmp-';

/** A fresh temporary name in the directory of `path` (same file system, so rename is atomic). */
export function tempPathFor(path: string): string {
  const unique = `${process.pid}-${randomBytes(6).toString('hex')}`;
  return join(dirname(path), `${ATOMIC_TEMP_PREFIX}${unique}-${basename(path)}`);
}

export interface AtomicWriteOptions {
  /** Permission bits of the new file, exactly (default 0o644 less the umask). */
  mode?: number;
}

/** Replaces (or creates) `path` with `data` in one rename. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (opts.mode !== undefined) await fh.chmod(opts.mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
