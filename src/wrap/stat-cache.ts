// A persistent stat cache: file digests keyed by path, size, mtime and inode,
// so repeated headers are hashed once, across runs of the daemon.
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSmallFile } from '../cas/index.js';
import { digestOf, digestOfFile, parseDigest, type Digest } from '../reapi/index.js';

interface Entry {
  size: number;
  mtimeNs: string;
  ino: number;
  hash: string;
}

export class StatCache {
  private readonly entries = new Map<string, Entry>();
  private dirty = false;
  hits = 0;
  misses = 0;

  constructor(private readonly file: string | undefined) {}

  static async load(file: string | undefined): Promise<StatCache> {
    const c = new StatCache(file);
    if (file === undefined) return c;
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as Record<string, Entry>;
      for (const [k, v] of Object.entries(data)) {
        if (typeof v.hash === 'string' && /^[0-9a-f]{64}$/.test(v.hash)) c.entries.set(k, v);
      }
    } catch {
      // absent or damaged: start empty
    }
    return c;
  }

  /**
   * The digest of a file, from the cache when its size, mtime and inode are
   * unchanged. The stat is synchronous: a few microseconds, where an
   * asynchronous one costs the event loop ten times that (a hit stats every
   * header it lists).
   */
  async digest(path: string): Promise<{ digest: Digest; executable: boolean }> {
    const st = statSync(path, { bigint: true });
    const key = { size: Number(st.size), mtimeNs: st.mtimeNs.toString(), ino: Number(st.ino) };
    const executable = (Number(st.mode) & 0o111) !== 0;
    const e = this.entries.get(path);
    // A file modified within the last second may change again within the same mtime tick.
    const fresh = Date.now() - Number(st.mtimeMs) < 1000;
    if (
      e !== undefined &&
      e.size === key.size &&
      e.mtimeNs === key.mtimeNs &&
      e.ino === key.ino &&
      !fresh
    ) {
      this.hits++;
      return { digest: parseDigest(e.hash, e.size), executable };
    }
    this.misses++;
    // Small files (most sources and headers) with synchronous calls: a
    // worker's first compile hashes ~100 headers, each four thread-pool
    // round trips through fs.promises.
    const small = readSmallFile(path);
    const digest = small === undefined ? await digestOfFile(path) : digestOf(small);
    if (!fresh) {
      this.entries.set(path, { ...key, hash: digest.hash });
      this.dirty = true;
    }
    return { digest, executable };
  }

  async save(): Promise<void> {
    if (this.file === undefined || !this.dirty) return;
    this.dirty = false;
    await writeJsonAtomic(this.file, Object.fromEntries(this.entries));
  }
}

/** Writes JSON to a temporary file beside `file`, then renames it over: never half a file. */
export async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, JSON.stringify(data));
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
