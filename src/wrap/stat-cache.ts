// A persistent stat cache: file digests keyed by path, size, mtime, ctime and
// inode, so repeated headers are hashed once, across runs of the daemon.
import { randomBytes } from 'node:crypto';
import { createReadStream, statSync, type BigIntStats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readSmallFile } from '../cas/index.js';
import type { FileSignature } from './native-answers.js';
import {
  DigestBuilder,
  digestOf,
  digestOfFile,
  changedLately,
  fileStatOf,
  parseDigest,
  sameFileStat,
  type Digest,
  type FileStat,
} from '../reapi/index.js';

interface Entry {
  size: number;
  mtimeNs: string;
  /**
   * The inode's change time: a file rewritten in place with its mtime put
   * back (`cp -p`, `rsync -t --inplace`, `touch -r`) keeps size, mtime and
   * inode, but not this, which no call can set. Entries saved without it
   * never match, so they are hashed again.
   */
  ctimeNs: string;
  ino: number;
  hash: string;
  /** What the file's bytes mention that a cached result cannot follow (MARK_*), or MARKS_UNKNOWN. */
  marks: number;
}

/** `.incbin` or `.include`: the assembler reads the file named, and no dependency list names it. */
export const MARK_ASM = 1;
/** `__DATE__` or `__TIME__`: the compile's time, fixed only by SOURCE_DATE_EPOCH. */
export const MARK_DATE = 2;
/** `__TIMESTAMP__`: the source's mtime, which no action carries. */
export const MARK_TIMESTAMP = 4;

/**
 * What a file's bytes mention that makes a compile reading it uncacheable
 * (ccache refuses the same): MARK_* bits. A mention in a comment counts: it
 * costs a cached result, never a wrong one.
 */
export function marksOf(bytes: Uint8Array): number {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let marks = 0;
  if (b.includes('.incbin') || b.includes('.include')) marks |= MARK_ASM;
  if (b.includes('__DATE__') || b.includes('__TIME__')) marks |= MARK_DATE;
  if (b.includes('__TIMESTAMP__')) marks |= MARK_TIMESTAMP;
  return marks;
}

/** An entry's marks when its file was hashed without looking for them (a binary: see digest's `marks`). */
const MARKS_UNKNOWN = -1;

/** The longest word marksOf looks for, less one: what a chunk carries over to the next. */
const MARK_CARRY = '__TIMESTAMP__'.length - 1;

/** A large file's digest and marks, from one streamed read (a compiler binary is ~100 MB). */
async function digestAndMarks(path: string): Promise<{ digest: Digest; marks: number }> {
  const b = new DigestBuilder();
  let marks = 0;
  let tail = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    b.update(buf);
    // A word split between two chunks is found in the carried tail and the next chunk's start.
    marks |= marksOf(Buffer.concat([tail, buf.subarray(0, MARK_CARRY)]));
    marks |= marksOf(buf);
    tail = Buffer.from(buf.subarray(Math.max(0, buf.length - MARK_CARRY)));
  }
  return { digest: b.digest(), marks };
}

/** A file's digest, what its bytes mention, and the stat its digest holds for. */
export interface HashedFile {
  digest: Digest;
  executable: boolean;
  marks: number;
  /**
   * On a cache hit, the stat that matched the entry; else the stat taken
   * after the bytes were read. Its times tell whether the file changed
   * since a moment before, as a new stat would (changedSince).
   */
  stat: BigIntStats;
}

export class StatCache {
  private readonly entries = new Map<string, Entry>();
  private dirty = false;
  hits = 0;
  misses = 0;

  constructor(
    private readonly file: string | undefined,
    /** The clock the freshness window is measured on (ms since the epoch). */
    private readonly now: () => number = Date.now,
  ) {}

  static async load(file: string | undefined, now?: () => number): Promise<StatCache> {
    const c = new StatCache(file, now);
    if (file === undefined) return c;
    try {
      const data = JSON.parse(await readFile(file, 'utf8')) as Record<string, Entry>;
      for (const [k, v] of Object.entries(data)) {
        // Entries saved before `marks` was kept are hashed again.
        if (
          typeof v.hash === 'string' &&
          /^[0-9a-f]{64}$/.test(v.hash) &&
          typeof v.marks === 'number'
        )
          c.entries.set(k, v);
      }
    } catch {
      // absent or damaged: start empty
    }
    return c;
  }

  /**
   * The digest of a file, from the cache when its size, mtime, ctime and
   * inode are unchanged. The stat is synchronous: a few microseconds, where an
   * asynchronous one costs the event loop ten times that (a hit stats every
   * header it lists).
   */
  async digest(
    path: string,
    /**
     * False for a file no compile reads as source (the compiler's binary,
     * the assembler's): its bytes are not searched for the words marksOf
     * looks for, which took longer than hashing a binary's megabytes, and
     * `marks` is 0 unless an earlier call looked for them. An entry so made
     * is hashed again for a caller that wants them.
     */
    want: { marks: boolean } = { marks: true },
  ): Promise<HashedFile> {
    const st = statSync(path, { bigint: true });
    const { nlink, ...key } = fileStatOf(st);
    const executable = (Number(st.mode) & 0o111) !== 0;
    const e = this.entries.get(path);
    // A file modified within the last second may change again within the
    // same timestamp tick (changedLately; a changed ctime of a file with
    // more links still misses the key, once).
    const fresh = changedLately(st.mtimeNs, st.ctimeNs, nlink, this.now());
    if (
      e !== undefined &&
      sameFileStat(e, key) &&
      !fresh &&
      (e.marks !== MARKS_UNKNOWN || !want.marks)
    ) {
      this.hits++;
      const marks = e.marks === MARKS_UNKNOWN ? 0 : e.marks;
      return { digest: parseDigest(e.hash, e.size), executable, marks, stat: st };
    }
    this.misses++;
    // Small files (most sources and headers) with synchronous calls: a
    // worker's first compile hashes ~100 headers, each four thread-pool
    // round trips through fs.promises.
    const small = readSmallFile(path);
    const { digest, marks } =
      small === undefined
        ? want.marks
          ? await digestAndMarks(path)
          : { digest: await digestOfFile(path), marks: MARKS_UNKNOWN }
        : { digest: digestOf(small), marks: want.marks ? marksOf(small) : MARKS_UNKNOWN };
    if (!fresh) {
      this.entries.set(path, { ...key, hash: digest.hash, marks });
      this.dirty = true;
    }
    // The stat after the read: a change made while the bytes were read shows in it.
    return {
      digest,
      executable,
      marks: marks === MARKS_UNKNOWN ? 0 : marks,
      stat: statSync(path, { bigint: true }),
    };
  }

  /**
   * Takes `hash` as the digest of `path` while it has stat `st` (the same
   * before and after another thread hashed it: hostPlatform's toolchain),
   * unless that stat is too new to trust, by digest()'s rule. Its marks are
   * not known: a caller that wants them has the file hashed again.
   */
  seed(path: string, st: FileStat, hash: string): void {
    if (changedLately(BigInt(st.mtimeNs), BigInt(st.ctimeNs), st.nlink, this.now())) return;
    const e = this.entries.get(path);
    if (e?.hash === hash && sameFileStat(e, st)) return; // known already, with its marks if they were looked for
    const { size, mtimeNs, ctimeNs, ino } = st;
    this.entries.set(path, { size, mtimeNs, ctimeNs, ino, hash, marks: MARKS_UNKNOWN });
    this.dirty = true;
  }

  /**
   * The file's stat, when this cache vouches that its contents are still
   * `hash`: its entry was made while the file had not changed for a second,
   * and its size, mtime, ctime and inode are the same now. Another process
   * (the native client) may then trust that stat alone. Undefined otherwise.
   */
  vouch(
    path: string,
    hash: string,
    /** The file's stat taken by digest() for this request, ms ago: else a new one. */
    taken?: BigIntStats,
  ): { sig: FileSignature; executable: boolean } | undefined {
    const e = this.entries.get(path);
    if (e?.hash !== hash) return undefined;
    let st: BigIntStats | undefined = taken;
    if (st === undefined)
      try {
        st = statSync(path, { bigint: true });
      } catch {
        return undefined;
      }
    // The same freshness rule as digest(): a file changed within the last second is not vouched for.
    const now = fileStatOf(st);
    if (!sameFileStat(e, now) || changedLately(st.mtimeNs, st.ctimeNs, now.nlink, this.now()))
      return undefined;
    return {
      sig: { dev: st.dev, ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs },
      executable: (Number(st.mode) & 0o111) !== 0,
    };
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
