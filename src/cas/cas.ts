// The storage interfaces every layer uses: a content-addressable blob store and
// an action cache. Local stores, the remote client and decorators implement them.
import { isSpecbuildError } from '../core/index.js';
import type { ActionResult, Digest } from '../reapi/index.js';

export interface CallOptions {
  /** Cancels the call; remote implementations also derive deadlines from it. */
  signal?: AbortSignal;
}

export interface ReadRange {
  /** First byte to read (default 0). */
  offset?: number;
  /** Maximum number of bytes (default: to the end). */
  limit?: number;
}

export interface Cas {
  /** The digests among `digests` that the store does not hold. */
  findMissingBlobs(digests: readonly Digest[], opts?: CallOptions): Promise<Digest[]>;
  /** A whole blob. Throws `cas/not-found` if absent. Meant for blobs that fit in memory. */
  readBlob(digest: Digest, opts?: CallOptions): Promise<Uint8Array>;
  /** Several blobs; absent ones are simply not in the returned map (keyed by digestKey). */
  readBlobs(digests: readonly Digest[], opts?: CallOptions): Promise<Map<string, Uint8Array>>;
  /** A blob as a stream of chunks, for blobs of any size. Throws `cas/not-found`. */
  readStream(digest: Digest, range?: ReadRange, opts?: CallOptions): AsyncIterable<Uint8Array>;
  /** Stores bytes; returns their digest. */
  writeBlob(data: Uint8Array, opts?: CallOptions): Promise<Digest>;
  /**
   * Stores several blobs at once (all of them: to skip ones the store holds,
   * ask findMissingBlobs first, as uploadMissing does); returns their digests
   * in order.
   */
  writeBlobs(blobs: readonly Uint8Array[], opts?: CallOptions): Promise<Digest[]>;
  /**
   * Stores a blob of any size from a stream of chunks. The data must hash to
   * `digest` (else `cas/digest-mismatch` and nothing is stored).
   */
  writeStream(digest: Digest, data: AsyncIterable<Uint8Array>, opts?: CallOptions): Promise<void>;
}

export interface ActionCache {
  /**
   * The cached result of an action, or undefined on a miss. An entry whose
   * referenced blobs are no longer in the CAS is a miss.
   */
  getActionResult(actionDigest: Digest, opts?: CallOptions): Promise<ActionResult | undefined>;
  updateActionResult(actionDigest: Digest, result: ActionResult, opts?: CallOptions): Promise<void>;
  /**
   * The directory of its entry files on this machine, when it is a local
   * action cache (`DIR/ac`, see direct-store.ts): a server tells clients on
   * this machine they may write there (DIRECT_STORE_HEADER).
   */
  readonly localDir?: string;
}

/** An upload in progress that can be continued after a broken stream. */
export interface Upload {
  readonly digest: Digest;
  /** Bytes received and written so far. */
  readonly committedSize: number;
  /** Appends data; fails with `cas/digest-mismatch` when it would exceed the digest's size. */
  write(chunk: Uint8Array): Promise<void>;
  /** Waits until what was written so far is stored; fails as `write` would (e.g. `cas/full`). */
  flush(): Promise<void>;
  /** Verifies the data against the digest and makes the blob visible; else `cas/digest-mismatch`. */
  finish(): Promise<void>;
  /** Discards the partial data. */
  abort(): Promise<void>;
}

/** A store that can hold partial uploads (what ByteStream Write's resumption needs). */
export interface UploadableCas extends Cas {
  beginUpload(digest: Digest): Promise<Upload>;
  /** True when the blob is present (cheap, local). */
  has(digest: Digest): boolean;
  /**
   * The directory of its blob files on this machine (`OBJECTS/<first two
   * hex digits>/<hash>`, read-only), when it has one: a client on this
   * machine may copy outputs from there instead of reading them over gRPC.
   */
  readonly objectsDir?: string;
  /**
   * True when another process of this user may add blob files to
   * `objectsDir` itself, as the store writes them (direct-store.ts): the
   * store keeps no other record of its blobs (no quota to account them in).
   */
  readonly directWrites?: boolean;
}

/** A whole blob, or undefined when the store does not hold it (other errors throw). */
export async function readBlobIfPresent(
  cas: Pick<Cas, 'readBlob'>,
  digest: Digest,
  opts?: CallOptions,
): Promise<Uint8Array | undefined> {
  try {
    return await cas.readBlob(digest, opts);
  } catch (e) {
    if (isSpecbuildError(e, 'cas/not-found')) return undefined;
    throw e;
  }
}
