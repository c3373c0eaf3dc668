// Removing one file where it is done per command. fs.rmSync is Node's
// general remover (its options checked, an lstat first, then the unlink, in
// JavaScript): for a file that another process had just written it cost
// ~290 µs of CPU on the 2-core CI machine against ~107 µs for the unlink
// alone, and a miss removed one or two such files.
import { unlinkSync } from 'node:fs';

/** Removes the file at `path`; one that is not there is not an error (as rmSync with `force`). */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
