// The local content-addressable store: blobs as read-only files in sharded
// directories, written atomically, verified before they become visible, with a
// size quota enforced by least-recently-used eviction.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
} from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isSpecbuildError, processAlive, SpecbuildError } from '../core/index.js';
import {
  DigestBuilder,
  digestEquals,
  digestKey,
  digestOf,
  digestOfFile,
  EMPTY_DIGEST,
  EMPTY_HASH,
  fromValidatedParts,
  type Digest,
} from '../reapi/index.js';
import {
  readBlobIfPresent,
  type CallOptions,
  type ReadRange,
  type Upload,
  type UploadableCas,
} from './cas.js';
import { isDiskFull, writeError } from './disk-error.js';
import type { FsPool } from './fs-pool.js';
import { TEMP_PREFIX, type CasLayout } from './fs-tasks.js';
import { LruIndex } from './lru-index.js';
import { readSmallFile, SMALL_FILE_BYTES } from './small-file.js';

export interface LocalCasOptions {
  /** Root of the cache directory; blobs live under `DIR/cas/`. */
  dir: string;
  /** Maximum bytes of blobs kept; 0 or undefined means unlimited. */
  quotaBytes?: number;
  /**
   * Worker threads that write blobs and import files (temporary file,
   * rename) off the event loop; this store still keeps the index, the
   * quota and the pins. Without one, everything is done here.
   */
  pool?: FsPool;
}

/** Read chunk size for streams: well under gRPC's 4 MiB message limit. */
export const STREAM_CHUNK = 1 << 20;
/** Disk writes of one upload that may be in flight at once. */
const MAX_PENDING_WRITES = 16;

/** A blob's mtime is refreshed (to mark use across restarts) at most this often. */
const TOUCH_INTERVAL_MS = 60_000;
/** Blobs up to this size are read with one synchronous call. */
const SYNC_READ_MAX_BYTES = SMALL_FILE_BYTES;
/**
 * Blobs up to this size are written by the pool's workers, when there is a
 * pool: a message round trip costs the event loop ~35 µs where fs.promises'
 * open, write, close and rename cost ~230 µs (3 KB blob, 2-core machine).
 * Larger ones are streamed here, without copying them into a message.
 */
const POOL_WRITE_MAX_BYTES = 1 << 20;

function notFound(d: Digest): SpecbuildError {
  return new SpecbuildError('cas/not-found', `blob ${digestKey(d)} is not in the local CAS`);
}

export class LocalCas implements UploadableCas {
  readonly root: string;
  private readonly objects: string;
  private readonly tmp: string;
  private readonly quota: number;
  private readonly pool: FsPool | undefined;
  private readonly index = new LruIndex();
  /** Blobs kept from eviction, with how many holders each (see pin()). */
  private readonly pins = new Map<string, number>();

  private constructor(opts: LocalCasOptions) {
    this.root = opts.dir;
    this.objects = join(opts.dir, 'cas', 'objects');
    this.tmp = join(opts.dir, 'cas', 'tmp');
    this.quota = opts.quotaBytes ?? 0;
    this.pool = opts.pool;
  }

  /** Where the blobs are, for a pool's workers. */
  get layout(): CasLayout {
    return { objects: this.objects, tmp: this.tmp };
  }

  /** Opens (creating if needed) the store and loads its index in LRU order. */
  static async open(opts: LocalCasOptions): Promise<LocalCas> {
    const cas = new LocalCas(opts);
    await mkdir(cas.objects, { recursive: true });
    await mkdir(cas.tmp, { recursive: true });
    // Shards are made once, the last one after all the others.
    if (!existsSync(join(cas.objects, 'ff'))) {
      await Promise.all(
        Array.from({ length: 255 }, (_, i) =>
          mkdir(join(cas.objects, i.toString(16).padStart(2, '0')), { recursive: true }),
        ),
      );
      await mkdir(join(cas.objects, 'ff'), { recursive: true });
    }
    await cas.removeStaleTemps(cas.tmp);
    await cas.ensureEmptyBlob();
    // Only a quota needs every blob's size and last use up front (to evict
    // the least recently used). Without one the index is filled as blobs are
    // used and written, and opening only lists the shards for the temporary
    // files of writers that died: a cache of 40,000 blobs opened in 43 ms
    // instead of 490-546 ms (209 against 1,195 ms with a cold page cache,
    // 2-core VM), at every `specbuild build` and every server process start.
    await cas.openShards(cas.quota > 0);
    return cas;
  }

  /** Where the blob files are (see UploadableCas.objectsDir). */
  get objectsDir(): string {
    return this.objects;
  }

  /** See UploadableCas.directWrites: a quota needs every blob's size in the index, so not with one. */
  get directWrites(): boolean {
    return this.quota <= 0;
  }

  /** Path of a blob's file (for hard-linking it elsewhere; the file is read-only). */
  pathOf(d: Digest): string {
    return this.pathOfHash(d.hash);
  }

  private pathOfHash(hash: string): string {
    return join(this.objects, hash.slice(0, 2), hash);
  }

  /**
   * Total bytes of blobs this process knows of: with a quota, every blob in
   * the store; without one, those it has used or written since it opened it.
   */
  get sizeBytes(): number {
    return this.index.totalBytes;
  }

  private async ensureEmptyBlob(): Promise<void> {
    try {
      await stat(this.pathOf(EMPTY_DIGEST));
    } catch {
      await this.commit(await this.writeTemp(new Uint8Array(0), EMPTY_DIGEST), EMPTY_DIGEST);
    }
  }

  /**
   * Lists every shard, removing dead writers' temporary files; with
   * `index`, also every blob's size and mtime into the LRU index, by
   * synchronous calls: nothing else runs while a store opens, and each
   * fs.promises stat cost 25-40 µs of the event loop against ~5 µs
   * (bench:load's cache of 4,400 blobs opened in 0.13-0.4 s with promises).
   */
  private async openShards(index: boolean): Promise<void> {
    const found: { hash: string; size: number; mtime: number }[] = [];
    for (const shard of readdirSync(this.objects)) {
      const dir = join(this.objects, shard);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of index ? names : []) {
        if (name.startsWith(TEMP_PREFIX)) continue;
        // undefined: removed meanwhile by another process.
        const st = statSync(join(dir, name), { throwIfNoEntry: false });
        if (st !== undefined) found.push({ hash: name, size: st.size, mtime: st.mtimeMs });
      }
      await this.removeStaleTemps(dir, names);
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.index.use(f.hash, f.size, f.mtime);
  }

  /** Synchronous presence check: a stat of one file, no thread-pool round trip. */
  private present(d: Digest): boolean {
    if (d.hash === EMPTY_HASH) return true;
    const st = statSync(this.pathOf(d), { throwIfNoEntry: false });
    if (st === undefined) {
      this.index.remove(d.hash);
      return false;
    }
    if (st.size !== d.size) return false;
    this.used(d, st.mtimeMs);
    return true;
  }

  /**
   * Records a use of a blob; its file's mtime is set to now when it was last
   * set over a minute ago. `mtimeMs`, the file's mtime when the caller has
   * it, is the last use of a blob not indexed yet (a store without a quota
   * indexes as it goes), as openShards would have indexed it.
   */
  private used(d: Digest, mtimeMs?: number): void {
    const now = Date.now();
    const last = this.index.use(d.hash, d.size, mtimeMs ?? now) ?? mtimeMs;
    if (last !== undefined && now - last > TOUCH_INTERVAL_MS) {
      this.index.markTouched(d.hash, now);
      // Synchronously: a null build of bench:load touches 4,400 blobs, and
      // fs.promises.utimes spent 0.26 s of its event loop on them.
      const t = now / 1000;
      try {
        utimesSync(this.pathOf(d), t, t);
      } catch {
        // removed meanwhile: the next read finds out
      }
    }
  }

  has(d: Digest): boolean {
    return this.present(d);
  }

  findMissingBlobs(digests: readonly Digest[], _opts?: CallOptions): Promise<Digest[]> {
    return Promise.resolve(digests.filter((d) => !this.present(d)));
  }

  async readBlob(d: Digest, _opts?: CallOptions): Promise<Uint8Array> {
    if (d.size === 0 && d.hash === EMPTY_HASH) return new Uint8Array(0);
    const path = this.pathOf(d);
    let data: Buffer;
    let mtimeMs: number;
    try {
      // The size first: a digest with the wrong size is simply not here (and
      // a small claimed size never makes us read a large file on the loop).
      const st = statSync(path, { throwIfNoEntry: false });
      if (st === undefined) {
        this.index.remove(d.hash);
        throw notFound(d);
      }
      if (st.size !== d.size) {
        await this.discardIfTorn(d);
        throw notFound(d);
      }
      mtimeMs = st.mtimeMs;
      // Small blobs (Directory messages, headers) are read synchronously: one
      // system call instead of fs.promises' four thread-pool round trips.
      data = d.size <= SYNC_READ_MAX_BYTES ? readFileSync(path) : await readFile(path);
    } catch (e) {
      if (isSpecbuildError(e)) throw e;
      if (errnoCode(e) === 'ENOENT') {
        this.index.remove(d.hash);
        throw notFound(d);
      }
      throw new SpecbuildError('cas/io', `reading blob ${digestKey(d)}: ${String(e)}`, {
        cause: e,
      });
    }
    if (data.byteLength !== d.size) {
      await this.discardIfTorn(d);
      throw notFound(d);
    }
    this.used(d, mtimeMs);
    return data;
  }

  async readBlobs(
    digests: readonly Digest[],
    opts?: CallOptions,
  ): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    await Promise.all(
      digests.map(async (d) => {
        const data = await readBlobIfPresent(this, d, opts);
        if (data !== undefined) out.set(digestKey(d), data);
      }),
    );
    return out;
  }

  async *readStream(
    d: Digest,
    range: ReadRange = {},
    opts?: CallOptions,
  ): AsyncIterable<Uint8Array> {
    const offset = range.offset ?? 0;
    const limit = range.limit ?? 0;
    if (offset < 0 || limit < 0 || offset > d.size) {
      throw new SpecbuildError(
        'cas/out-of-range',
        `read of ${digestKey(d)} at offset ${offset} limit ${limit} is out of range`,
      );
    }
    if (d.hash === EMPTY_HASH) return;
    let fd: number;
    try {
      fd = openSync(this.pathOf(d), 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(d);
      throw new SpecbuildError('cas/io', `opening blob ${digestKey(d)}: ${String(e)}`, {
        cause: e,
      });
    }
    const st = fstatSync(fd);
    if (st.size !== d.size) {
      closeSync(fd);
      await this.discardIfTorn(d);
      throw notFound(d);
    }
    const end = limit === 0 ? d.size : Math.min(d.size, offset + limit);
    if (end === offset) {
      closeSync(fd);
      return;
    }
    this.used(d, st.mtimeMs);
    const stream = createReadStream('', {
      fd,
      start: offset,
      end: end - 1,
      highWaterMark: STREAM_CHUNK,
      signal: opts?.signal,
    });
    yield* stream as AsyncIterable<Buffer>;
  }

  async writeBlob(data: Uint8Array, _opts?: CallOptions): Promise<Digest> {
    const d = digestOf(data);
    if (this.present(d)) return d;
    if (this.pool !== undefined && data.byteLength <= POOL_WRITE_MAX_BYTES) {
      await this.pool.writeBlob(this.layout, data, d.hash);
      await this.adopt(d);
      return d;
    }
    await this.commit(await this.writeTemp(data, d), d);
    return d;
  }

  async writeBlobs(blobs: readonly Uint8Array[], opts?: CallOptions): Promise<Digest[]> {
    return Promise.all(blobs.map((b) => this.writeBlob(b, opts)));
  }

  async writeStream(d: Digest, data: AsyncIterable<Uint8Array>, opts?: CallOptions): Promise<void> {
    if (this.present(d)) return;
    const upload = await this.beginUpload(d);
    try {
      for await (const chunk of data) {
        opts?.signal?.throwIfAborted();
        await upload.write(chunk);
      }
      await upload.finish();
    } catch (e) {
      await upload.abort();
      throw e;
    }
  }

  /** Starts writing a blob to a temporary file; nothing is visible until `finish()`. */
  async beginUpload(d: Digest): Promise<Upload> {
    const what = `blob ${digestKey(d)}`;
    const tmp = this.tempName(d.hash);
    const fh = await open(tmp, 'wx', 0o444).catch((e: unknown) => {
      throw writeError(e, what);
    });
    const hasher = new DigestBuilder();
    // Disk writes are pipelined (positional, so order of completion does not
    // matter): receiving the next chunk overlaps writing the previous ones.
    const pending: Promise<void>[] = [];
    let failure: SpecbuildError | undefined;
    const fail = (e: unknown): void => {
      if (failure !== undefined) return;
      failure = writeError(e, what);
      // The temporary file goes now, not whenever the caller gets to abort().
      void discard();
    };
    const check = (): void => {
      if (failure !== undefined) throw failure;
    };
    const drain = async (): Promise<void> => {
      await Promise.all(pending.splice(0));
      check();
    };
    let closed = false;
    const close = async (): Promise<void> => {
      if (!closed) {
        closed = true;
        await Promise.all(pending.splice(0));
        await fh.close();
      }
    };
    const discard = async (): Promise<void> => {
      await close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    };
    return {
      digest: d,
      get committedSize() {
        return hasher.size;
      },
      write: async (chunk) => {
        check();
        if (closed) throw new Error('bug: write after the upload ended');
        if (hasher.size + chunk.byteLength > d.size) {
          throw new SpecbuildError(
            'cas/digest-mismatch',
            `upload of ${digestKey(d)} sends more than ${d.size} bytes`,
          );
        }
        pending.push(fh.write(chunk, 0, chunk.byteLength, hasher.size).then(() => undefined, fail));
        hasher.update(chunk);
        while (pending.length > MAX_PENDING_WRITES) await pending.shift();
        check();
      },
      flush: drain,
      finish: async () => {
        try {
          await drain();
          await close();
          const got = hasher.digest();
          if (!digestEquals(got, d)) {
            throw new SpecbuildError(
              'cas/digest-mismatch',
              `uploaded data hashes to ${digestKey(got)}, not ${digestKey(d)}`,
            );
          }
        } catch (e) {
          await discard();
          throw writeError(e, what);
        }
        await this.commit(tmp, d);
      },
      abort: discard,
    };
  }

  /**
   * Imports a file already on disk (e.g. an action output): copies it to a
   * temporary file while hashing it, then commits it under its digest.
   * Memory stays constant whatever the file's size.
   */
  async writeFile(path: string, opts?: CallOptions): Promise<Digest> {
    if (this.pool === undefined) return this.importHere(path, opts);
    // An empty file (most stdout and stderr) costs one stat here; the
    // empty blob is always stored.
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isFile() === true && st.size === 0) return EMPTY_DIGEST;
    const got = await this.pool.importFile(this.layout, path, opts?.signal);
    const d = fromValidatedParts(got.hash, got.size);
    if (got.created) await this.adopt(d);
    // Found stored by the worker, but evicted since: imported again, here.
    else if (!this.present(d)) return this.importHere(path, opts);
    return d;
  }

  /** writeFile on this thread. */
  private async importHere(path: string, opts?: CallOptions): Promise<Digest> {
    // Most imports are small (an action's stdout and stderr, most of its
    // outputs) and often already stored: one synchronous read, and no write
    // when the blob is present. Copying each through a temporary file cost
    // thread-pool round trips: a trivial action's empty stdout and stderr
    // took 1.9 ms (median, 2-core machine), now 0.15 ms; capturing its
    // 6-byte output 1.7 ms, now 0.4 ms.
    let small: Buffer | undefined;
    try {
      small = readSmallFile(path, SYNC_READ_MAX_BYTES);
    } catch (e) {
      throw new SpecbuildError('cas/io', `importing ${path}: ${String(e)}`, { cause: e });
    }
    if (small !== undefined) return this.writeBlob(small, opts);
    const tmp = this.tempName();
    const out = await open(tmp, 'wx', 0o444).catch((e: unknown) => {
      throw writeError(e, 'an imported file');
    });
    const b = new DigestBuilder();
    try {
      for await (const chunk of createReadStream(path, {
        highWaterMark: STREAM_CHUNK,
        signal: opts?.signal,
      })) {
        const buf = chunk as Buffer;
        b.update(buf);
        await out.write(buf);
      }
      await out.close();
    } catch (e) {
      await out.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      if (isDiskFull(e)) throw writeError(e, 'an imported file');
      throw new SpecbuildError('cas/io', `importing ${path}: ${String(e)}`, { cause: e });
    }
    const d = b.digest();
    if (this.present(d)) {
      await unlink(tmp).catch(() => undefined);
      return d;
    }
    await this.commit(tmp, d);
    return d;
  }

  /**
   * A temporary file name. When the blob's hash is known it goes in the
   * blob's own shard (spreading directory locks); else in `cas/tmp`. The pid in
   * the name lets a later open remove what a crashed writer left behind.
   */
  private tempName(hash?: string): string {
    const dir = hash === undefined ? this.tmp : join(this.objects, hash.slice(0, 2));
    return join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** Removes temporary files of writers that are no longer running. */
  private async removeStaleTemps(dir: string, names?: string[]): Promise<void> {
    for (const name of names ?? (await readdir(dir))) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0]);
      if (Number.isInteger(pid) && (pid === process.pid || processAlive(pid))) continue;
      await unlink(join(dir, name)).catch(() => undefined);
    }
  }

  /** Writes a blob's bytes to a new temporary file; on failure none is left behind. */
  private async writeTemp(data: Uint8Array, d: Digest): Promise<string> {
    const what = `blob ${digestKey(d)}`;
    const tmp = this.tempName(d.hash);
    const fh = await open(tmp, 'wx', 0o444).catch((e: unknown) => {
      throw writeError(e, what);
    });
    try {
      await fh.writeFile(data);
      await fh.close();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw writeError(e, what);
    }
    return tmp;
  }

  /** Makes a verified temporary file visible under its digest (atomic rename). */
  private async commit(tmp: string, d: Digest): Promise<void> {
    const dest = this.pathOf(d);
    try {
      try {
        await rename(tmp, dest);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        await mkdir(join(this.objects, d.hash.slice(0, 2)), { recursive: true });
        await rename(tmp, dest);
      }
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw writeError(e, `blob ${digestKey(d)}`);
    }
    await this.adopt(d);
  }

  /** Registers a blob just made visible (here or by a pool's worker): indexed, within the quota. */
  private async adopt(d: Digest): Promise<void> {
    this.used(d);
    await this.maybeEvict(d);
  }

  /**
   * A stored file whose size differs from a digest's is either torn (after a
   * power loss) or asked for with a wrong size. Only a file that no longer
   * hashes to its name is removed: a wrong size from a client never deletes
   * an intact blob.
   */
  private async discardIfTorn(d: Digest): Promise<void> {
    const real = await digestOfFile(this.pathOf(d)).catch(() => undefined);
    if (real?.hash !== d.hash) await this.discard(d);
  }

  private async discard(d: Digest): Promise<void> {
    this.index.remove(d.hash);
    await unlink(this.pathOf(d)).catch(() => undefined);
  }

  /** Evicts least-recently-used blobs down to 90% of the quota once it is exceeded. */
  /**
   * Keeps these blobs from eviction until the returned function is called
   * (an action's inputs, between checking they exist and staging them).
   */
  pin(digests: readonly Digest[]): () => void {
    for (const d of digests) this.pins.set(d.hash, (this.pins.get(d.hash) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const d of digests) {
        const n = (this.pins.get(d.hash) ?? 1) - 1;
        if (n <= 0) this.pins.delete(d.hash);
        else this.pins.set(d.hash, n);
      }
    };
  }

  private async maybeEvict(justWritten: Digest): Promise<void> {
    if (this.quota <= 0 || this.index.totalBytes <= this.quota) return;
    const excess = this.index.totalBytes - Math.floor(this.quota * 0.9);
    const keep = new Set([justWritten.hash, EMPTY_HASH, ...this.pins.keys()]);
    const victims = this.index.victims(excess, keep);
    for (const h of victims) this.index.remove(h);
    await Promise.all(victims.map((h) => unlink(this.pathOfHash(h)).catch(() => undefined)));
  }
}
