// Reading small files with synchronous calls: for a file of a few kilobytes,
// fs.promises costs four thread-pool round trips (open, fstat, read, close),
// each a wake-up of the event loop, where the synchronous calls take a few
// microseconds each. Used where files are small by nature (action cache
// entries, an action's stdout and most of its outputs).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Files up to this size are read synchronously (the local CAS's limit too). */
export const SMALL_FILE_BYTES = 64 * 1024;

/**
 * The contents of `path` if it is a regular file of at most `max` bytes, else
 * undefined (read it the asynchronous way). A file that grows meanwhile counts
 * as large. Opened without blocking, so that a FIFO or device never stalls
 * the thread: anything but a regular file is left to the asynchronous way.
 * Errors are the file system's (ENOENT...).
 */
export function readSmallFile(path: string, max = SMALL_FILE_BYTES): Buffer | undefined {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const size = st.size;
    if (size > max) return undefined;
    const data = Buffer.allocUnsafe(size);
    let got = 0;
    for (let n = -1; n !== 0 && got < size; got += n) n = readSync(fd, data, got, size - got, got);
    if (got < size) return data.subarray(0, got); // shrank meanwhile: as it is now
    return readSync(fd, Buffer.allocUnsafe(1), 0, 1, size) === 0 ? data : undefined;
  } finally {
    closeSync(fd);
  }
}
