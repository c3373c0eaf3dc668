// Files of an element's live build tree that its recorded actions read but
// no recorded action or staged file produced (BUILD_TREE overlays): watched
// for while the element builds, each read once it exists and has stopped
// changing, stored in CAS and handed to the priming engine. The tree is
// written by the build's own commands: a path must stay inside it (no `..`,
// no symbolic link leading out), and nothing is read beyond a size limit.
import { lstat, open, readlink, realpath } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join, sep } from 'node:path';
import type { Cas } from '../cas/index.js';
import type { Digest } from '../reapi/index.js';

/** How often watched files are looked at. */
const POLL_MS = 40;
/** Larger files are not read (a generated header is a few KiB). */
export const BUILD_TREE_FILE_LIMIT = 16 * 1024 * 1024;

interface Watched {
  /** Size and modification time when last seen; read when two looks agree. */
  last?: string;
}

export class BuildTreeWatch {
  private readonly files = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private looking = false;
  private stopped = false;

  constructor(
    /** The build root on this machine. */
    private readonly root: string,
    private readonly cas: Cas,
    private readonly found: (path: string, digest: Digest) => void,
  ) {}

  /** Watches `path` (relative to the build root) until it is read or the build ends. */
  watch(path: string): void {
    if (this.stopped || this.files.has(path) || !safeRelative(path)) return;
    this.files.set(path, {});
    this.timer ??= setInterval(() => void this.look(), POLL_MS);
    void this.look();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.files.clear();
  }

  private live(): boolean {
    return !this.stopped;
  }

  private async look(): Promise<void> {
    if (this.looking || this.stopped) return;
    this.looking = true;
    try {
      for (const [path, w] of [...this.files]) {
        const full = join(this.root, path);
        const st = await lstat(full).catch(() => undefined);
        if (st === undefined || !st.isFile()) continue;
        const now = `${String(st.size)}:${String(st.mtimeMs)}:${String(st.ino)}`;
        if (w.last !== now) {
          w.last = now; // seen changing (or seen first): read on the next look if it holds
          continue;
        }
        this.files.delete(path);
        const digest = await this.read(full, st.ino, st.dev).catch(() => undefined);
        // stop() may have come while it was read: the build has ended.
        if (digest !== undefined && this.live()) this.found(path, digest);
      }
      if (this.files.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    } finally {
      this.looking = false;
    }
  }

  /**
   * The file into CAS, if what is open is the regular file looked at (same
   * inode), inside the tree (the open descriptor's own path, so that a
   * directory swapped for a link in between does not count) and within the
   * limit. Never blocks on a FIFO.
   */
  private async read(full: string, ino: number, dev: number): Promise<Digest | undefined> {
    const fh = await open(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.ino !== ino || st.dev !== dev || st.size > BUILD_TREE_FILE_LIMIT)
        return undefined;
      const [root, real] = await Promise.all([
        realpath(this.root),
        readlink(`/proc/self/fd/${String(fh.fd)}`),
      ]);
      if (!real.startsWith(root + sep)) return undefined;
      const bytes = Buffer.alloc(st.size);
      const { bytesRead } = await fh.read(bytes, 0, st.size, 0);
      return await this.cas.writeBlob(bytes.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
  }
}

/** A relative path of plain names: no `..`, `.` or empty segments, not absolute. */
function safeRelative(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\0')) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}
