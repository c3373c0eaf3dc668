// A server's CAS seen through its blob directory on this machine: which blobs
// it holds is a stat of each file, not a FindMissingBlobs call. A miss
// compiled here asked twice (its command stored? which of its ~100 blobs are
// missing?): 3-5 ms and 5-14 ms of wall per miss on the 2-core VM, most of it
// gRPC on both sides; the stats take ~0.5 ms.
//
// When the server also says its store may be written directly (no quota:
// DIRECT_STORE_HEADER), the blobs and the action result of a miss are
// written as files too (cas/direct-store.ts): a miss compiled here then
// makes no gRPC call at all.
import { statSync } from 'node:fs';
import {
  putActionResultFile,
  putBlobFile,
  type ActionCache,
  type CallOptions,
  type Cas,
  type ReadRange,
} from '../cas/index.js';
import type { ActionResult, Digest } from '../reapi/index.js';
import type { RemoteEndpoint } from '../remote/index.js';
import { localBlobPath } from './outputs.js';

/**
 * The server still hears, at most this long after the last time, of each
 * present blob this thread uses (a FindMissingBlobs of those only): that
 * call is how it knows them recently used, and its least-recently-used
 * eviction (`--quota`) must not drop a header every compile reads because
 * nobody asked for it. Its own record of use on disk is as coarse (a blob's
 * mtime is refreshed at most once a minute, local-cas.ts).
 */
export const TOLD_FRESH_MS = 60_000;

/** Entries kept before the stale ones are dropped (a bound, not a tuning). */
const TOLD_MAX = 100_000;

export class ObjectsDirCas implements Cas {
  /** hash → when the server last learnt of its use from this thread (asked for, or written). */
  private readonly told = new Map<string, number>();

  constructor(
    private readonly inner: Cas,
    /** The server's blob directory (`objects/HH/HASH`), as Capabilities named it. */
    private readonly objects: string,
    /**
     * The store has no quota and takes blob files written here: blobs are
     * written so, and nothing is ever evicted, so the server need not hear
     * of their use.
     */
    private readonly writable: boolean,
    /** A monotonic clock in ms (a wall clock stepping back would keep the server untold). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether the blob file is there, with the size the digest names (as the
   * server's own check); undefined when this process cannot tell (the
   * server's directory not searchable by this user, say): then the server is asked.
   */
  private present(d: Digest): boolean | undefined {
    if (d.size === 0) return true; // the empty blob is always present
    try {
      const st = statSync(localBlobPath(this.objects, d), { throwIfNoEntry: false });
      return st?.isFile() === true && st.size === d.size;
    } catch {
      return undefined;
    }
  }

  private tell(digests: readonly Digest[]): void {
    const now = this.now();
    if (this.told.size + digests.length > TOLD_MAX) {
      for (const [h, t] of this.told) if (now - t >= TOLD_FRESH_MS) this.told.delete(h);
      if (this.told.size + digests.length > TOLD_MAX) this.told.clear();
    }
    for (const d of digests) this.told.set(d.hash, now);
  }

  async findMissingBlobs(digests: readonly Digest[], opts?: CallOptions): Promise<Digest[]> {
    const now = this.now();
    const missing: Digest[] = [];
    const ask: Digest[] = [];
    for (const d of digests) {
      const here = this.present(d);
      if (here === false) missing.push(d);
      else if (
        here === undefined ||
        (!this.writable &&
          d.size > 0 &&
          now - (this.told.get(d.hash) ?? -Infinity) >= TOLD_FRESH_MS)
      )
        ask.push(d);
    }
    if (ask.length > 0) {
      // The server's answer counts: a blob it says is missing (removed
      // between our stat and its look) is sent again.
      const gone = await this.inner.findMissingBlobs(ask, opts);
      const goneKeys = new Set(gone.map((d) => d.hash));
      this.tell(ask.filter((d) => !goneKeys.has(d.hash)));
      missing.push(...gone);
    }
    return missing;
  }

  readBlob(digest: Digest, opts?: CallOptions): Promise<Uint8Array> {
    return this.inner.readBlob(digest, opts);
  }

  readBlobs(digests: readonly Digest[], opts?: CallOptions): Promise<Map<string, Uint8Array>> {
    return this.inner.readBlobs(digests, opts);
  }

  readStream(digest: Digest, range?: ReadRange, opts?: CallOptions): AsyncIterable<Uint8Array> {
    return this.inner.readStream(digest, range, opts);
  }

  async writeBlob(data: Uint8Array, opts?: CallOptions): Promise<Digest> {
    return (await this.writeBlobs([data], opts))[0] as Digest;
  }

  async writeBlobs(blobs: readonly Uint8Array[], opts?: CallOptions): Promise<Digest[]> {
    if (this.writable) {
      try {
        return blobs.map((b) => putBlobFile(this.objects, b));
      } catch {
        // A file that could not be written (a full disk, a directory made
        // read-only): the server is asked to write them, and says why not.
      }
    }
    const ds = await this.inner.writeBlobs(blobs, opts);
    this.tell(ds);
    return ds;
  }

  async writeStream(
    digest: Digest,
    data: AsyncIterable<Uint8Array>,
    opts?: CallOptions,
  ): Promise<void> {
    await this.inner.writeStream(digest, data, opts);
    this.tell([digest]);
  }
}

/** One per endpoint (each worker thread has its own endpoints), dropped with it. */
const decorated = new WeakMap<RemoteEndpoint, Cas>();
const decoratedAc = new WeakMap<RemoteEndpoint, ActionCache>();

/**
 * The CAS to store into and ask for presence: through the server's blob
 * directory when it is visible here (`localObjects`), else the server's own.
 */
export function storeCas(ep: RemoteEndpoint): Cas {
  const objects = ep.localObjects;
  if (objects === undefined) return ep.cas;
  let cas = decorated.get(ep);
  if (cas === undefined) {
    cas = new ObjectsDirCas(ep.cas, objects, ep.localActionCache !== undefined);
    decorated.set(ep, cas);
  }
  return cas;
}

/**
 * The action cache to store results into: by writing its entry files when
 * the server said so (`localActionCache`), else the server's own.
 */
export function storeActionCache(ep: RemoteEndpoint): ActionCache {
  const dir = ep.localActionCache;
  if (dir === undefined) return ep.actionCache;
  let ac = decoratedAc.get(ep);
  if (ac === undefined) {
    ac = {
      getActionResult: (d, opts) => ep.actionCache.getActionResult(d, opts),
      async updateActionResult(d: Digest, result: ActionResult, opts?: CallOptions) {
        try {
          putActionResultFile(dir, d, result);
        } catch {
          // As for blobs: the server writes it, or says why it cannot.
          await ep.actionCache.updateActionResult(d, result, opts);
        }
      },
    };
    decoratedAc.set(ep, ac);
  }
  return ac;
}
