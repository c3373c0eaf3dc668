// The Cas interface over a remote REAPI endpoint: FindMissingBlobs, batches
// split by the server's advertised limit, ByteStream for larger blobs
// (reads resume after a broken stream), every received blob verified.
import { randomUUID } from 'node:crypto';
import { SpecbuildError } from '../core/index.js';
import { readBlobIfPresent, type CallOptions, type Cas, type ReadRange } from '../cas/index.js';
import {
  bytestream,
  ContentAddressableStorage,
  digestEquals,
  digestKey,
  digestOf,
  DigestBuilder,
  fromPb,
  toPb,
  type Digest,
} from '../reapi/index.js';
import { RemoteCallError, type Connection } from './connection.js';
import { status as Status } from '@grpc/grpc-js';

/** FindMissingBlobs requests carry at most this many digests. */
const FIND_MISSING_CHUNK = 10_000;
/** Bytes of protobuf overhead budgeted per blob in a batch. */
const PER_BLOB_OVERHEAD = 100;
/** Data per ByteStream WriteRequest. */
const WRITE_CHUNK = 1024 * 1024;

export class RemoteCas implements Cas {
  /**
   * Set once the server answered BatchReadBlobs with UNIMPLEMENTED (Bazel's
   * own remote worker, for one): from then on every read uses ByteStream.
   */
  private noBatchRead = false;

  constructor(
    private readonly conn: Connection,
    private readonly instance: string,
    /** The server's max_batch_total_size_bytes (0 = none advertised). */
    private readonly maxBatchBytes: number,
  ) {}

  private get batchLimit(): number {
    // Stay within the default gRPC message size even when the server advertises no limit.
    const grpcSafe = 4 * 1024 * 1024 - 64 * 1024;
    return this.maxBatchBytes > 0 ? Math.min(this.maxBatchBytes, grpcSafe) : grpcSafe;
  }

  /** True when a blob of this size goes in a batch call rather than ByteStream. */
  private fitsBatch(size: number): boolean {
    return size + PER_BLOB_OVERHEAD <= this.batchLimit;
  }

  /** Groups digests into batches whose total size stays under the limit. */
  private batches<T>(items: readonly T[], sizeOf: (t: T) => number): T[][] {
    const out: T[][] = [];
    let cur: T[] = [];
    let bytes = 0;
    for (const it of items) {
      const n = sizeOf(it) + PER_BLOB_OVERHEAD;
      if (cur.length > 0 && bytes + n > this.batchLimit) {
        out.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(it);
      bytes += n;
    }
    if (cur.length > 0) out.push(cur);
    return out;
  }

  async findMissingBlobs(digests: readonly Digest[], opts: CallOptions = {}): Promise<Digest[]> {
    const missing: Digest[] = [];
    for (let i = 0; i < digests.length; i += FIND_MISSING_CHUNK) {
      const chunk = digests.slice(i, i + FIND_MISSING_CHUNK);
      const res = await this.conn.unary(
        ContentAddressableStorage.method.findMissingBlobs,
        { instanceName: this.instance, blobDigests: chunk.map(toPb) },
        opts,
      );
      for (const d of res.missingBlobDigests) missing.push(fromPb(d, 'missing_blob_digests'));
    }
    return missing;
  }

  async readBlob(d: Digest, opts: CallOptions = {}): Promise<Uint8Array> {
    if (d.size === 0) return new Uint8Array(0);
    if (this.fitsBatch(d.size) && !this.noBatchRead) {
      const got = await this.readBlobs([d], opts);
      const data = got.get(digestKey(d));
      if (data === undefined)
        throw new SpecbuildError(
          'cas/not-found',
          `blob ${digestKey(d)} not found on ${this.conn.target.text}`,
        );
      return data;
    }
    const parts: Uint8Array[] = [];
    for await (const chunk of this.readStream(d, {}, opts)) parts.push(chunk);
    return Buffer.concat(parts);
  }

  async readBlobs(
    digests: readonly Digest[],
    opts: CallOptions = {},
  ): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const unique = new Map<string, Digest>();
    for (const d of digests) unique.set(digestKey(d), d);
    const small: Digest[] = [];
    for (const d of unique.values()) {
      if (d.size === 0) out.set(digestKey(d), new Uint8Array(0));
      else if (this.fitsBatch(d.size) && !this.noBatchRead) small.push(d);
      else {
        const data = await readBlobIfPresent(this, d, opts);
        if (data !== undefined) out.set(digestKey(d), data);
      }
    }
    const batches = this.batches(small, (d) => d.size);
    for (const [i, batch] of batches.entries()) {
      const res = await this.conn
        .unary(
          ContentAddressableStorage.method.batchReadBlobs,
          { instanceName: this.instance, digests: batch.map(toPb) },
          opts,
        )
        .catch((e: unknown) => {
          if (e instanceof RemoteCallError && e.grpcCode === Status.UNIMPLEMENTED) {
            this.noBatchRead = true;
            return undefined;
          }
          throw e;
        });
      if (res === undefined) {
        // No batch reads on this server: the rest, one ByteStream read each.
        for (const d of batches.slice(i).flat()) {
          const data = await readBlobIfPresent(this, d, opts);
          if (data !== undefined) out.set(digestKey(d), data);
        }
        break;
      }
      for (const r of res.responses) {
        if (r.status?.code === Status.NOT_FOUND) continue;
        this.checkBatchStatus('BatchReadBlobs', r.status);
        const d = fromPb(r.digest, 'BatchReadBlobs digest');
        const got = digestOf(r.data);
        if (!digestEquals(got, d)) {
          throw new SpecbuildError(
            'cas/digest-mismatch',
            `server sent data for ${digestKey(d)} that hashes to ${digestKey(got)}`,
          );
        }
        out.set(digestKey(d), r.data);
      }
    }
    return out;
  }

  async *readStream(
    d: Digest,
    range: ReadRange = {},
    opts: CallOptions = {},
  ): AsyncIterable<Uint8Array> {
    const start = range.offset ?? 0;
    const end =
      range.limit === undefined || range.limit === 0
        ? d.size
        : Math.min(d.size, start + range.limit);
    if (start < 0 || start > d.size) {
      throw new SpecbuildError(
        'cas/out-of-range',
        `read of ${digestKey(d)} at offset ${start} is out of range`,
      );
    }
    const whole = start === 0 && end === d.size;
    const hasher = whole ? new DigestBuilder() : undefined;
    let pos = start;
    for (let attempt = 1; pos < end; attempt++) {
      try {
        const stream = this.conn.serverStream(
          bytestream.ByteStream.method.read,
          {
            resourceName: `${this.prefix()}blobs/${d.hash}/${d.size}`,
            readOffset: BigInt(pos),
            readLimit: BigInt(end - pos),
          },
          opts,
        );
        for await (const res of stream) {
          if (pos + res.data.byteLength > end) {
            throw new SpecbuildError(
              'remote/protocol',
              `ByteStream Read of ${digestKey(d)} sent too much data`,
            );
          }
          pos += res.data.byteLength;
          hasher?.update(res.data);
          attempt = 0; // progress was made: reset the retry budget
          yield res.data;
        }
        if (pos < end)
          throw new SpecbuildError(
            'remote/protocol',
            `ByteStream Read of ${digestKey(d)} ended early at ${pos}`,
          );
      } catch (e) {
        if (e instanceof RemoteCallError && e.grpcCode === Status.NOT_FOUND) {
          throw new SpecbuildError(
            'cas/not-found',
            `blob ${digestKey(d)} not found on ${this.conn.target.text}`,
          );
        }
        if (!(e instanceof RemoteCallError)) throw e;
        await this.conn.retryOrThrow(e, attempt, opts.signal);
      }
    }
    if (hasher !== undefined && !digestEquals(hasher.digest(), d)) {
      throw new SpecbuildError(
        'cas/digest-mismatch',
        `server sent data for ${digestKey(d)} that does not hash to it`,
      );
    }
  }

  /** Throws for a per-blob status in a batch response that is not OK. */
  private checkBatchStatus(
    rpc: string,
    status: { code: number; message: string } | undefined,
  ): void {
    const code = (status?.code ?? Status.OK) as Status;
    if (code !== Status.OK)
      throw new RemoteCallError(
        code,
        `${rpc}: ${status?.message ?? ''}`,
        undefined,
        this.conn.target.text,
      );
  }

  private prefix(): string {
    return this.instance === '' ? '' : `${this.instance}/`;
  }

  async writeBlob(data: Uint8Array, opts: CallOptions = {}): Promise<Digest> {
    const [d] = await this.writeBlobs([data], opts);
    if (d === undefined) throw new Error('bug: no digest');
    return d;
  }

  /** Uploads every blob given (batched by the server's limit, ByteStream for large ones). */
  async writeBlobs(blobs: readonly Uint8Array[], opts: CallOptions = {}): Promise<Digest[]> {
    const items = blobs.map((data) => ({ data, digest: digestOf(data) }));
    const todo = new Map<string, { data: Uint8Array; digest: Digest }>();
    for (const it of items) todo.set(digestKey(it.digest), it);
    const small = [...todo.values()].filter((it) => this.fitsBatch(it.digest.size));
    for (const batch of this.batches(small, (it) => it.digest.size)) {
      const res = await this.conn.unary(
        ContentAddressableStorage.method.batchUpdateBlobs,
        {
          instanceName: this.instance,
          requests: batch.map((it) => ({ digest: toPb(it.digest), data: it.data })),
        },
        opts,
      );
      for (const r of res.responses) this.checkBatchStatus('BatchUpdateBlobs', r.status);
    }
    for (const it of todo.values()) {
      if (!this.fitsBatch(it.digest.size)) await this.writeBuffer(it.digest, it.data, opts);
    }
    return items.map((i) => i.digest);
  }

  /** Uploads an in-memory blob by ByteStream, resuming after a broken stream. */
  private async writeBuffer(d: Digest, data: Uint8Array, opts: CallOptions): Promise<void> {
    const name = `${this.prefix()}uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
    let offset = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.sendWrite(name, d, chunksOf(data, offset), offset, opts);
        return;
      } catch (e) {
        if (!(e instanceof RemoteCallError)) throw e;
        await this.conn.retryOrThrow(e, attempt, opts.signal);
        const st = await this.conn
          .unary(bytestream.ByteStream.method.queryWriteStatus, { resourceName: name }, opts)
          .catch(() => undefined);
        if (st?.complete === true) return;
        offset = st === undefined ? 0 : Number(st.committedSize);
      }
    }
  }

  async writeStream(
    d: Digest,
    data: AsyncIterable<Uint8Array>,
    opts: CallOptions = {},
  ): Promise<void> {
    if ((await this.findMissingBlobs([d], opts)).length === 0) return;
    const name = `${this.prefix()}uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
    await this.sendWrite(name, d, data, 0, opts);
  }

  private async sendWrite(
    name: string,
    d: Digest,
    data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    startOffset: number,
    opts: CallOptions,
  ): Promise<void> {
    let offset = startOffset;
    async function* requests(): AsyncIterable<bytestream.WriteRequest | Record<string, unknown>> {
      let first = true;
      for await (const chunk of data) {
        for (let i = 0; i < chunk.byteLength; i += WRITE_CHUNK) {
          const piece = chunk.subarray(i, i + WRITE_CHUNK);
          const req = {
            resourceName: first ? name : '',
            writeOffset: BigInt(offset),
            data: piece,
            finishWrite: offset + piece.byteLength === d.size,
          };
          first = false;
          offset += piece.byteLength;
          yield req;
        }
      }
      if (first || offset !== d.size) {
        // Empty blob, or data shorter than announced: let the server judge it.
        yield { resourceName: first ? name : '', writeOffset: BigInt(offset), finishWrite: true };
      }
    }
    const res = await this.conn.clientStream(bytestream.ByteStream.method.write, requests(), opts);
    if (Number(res.committedSize) !== d.size) {
      throw new SpecbuildError(
        'remote/protocol',
        `ByteStream Write of ${digestKey(d)} committed ${res.committedSize} of ${d.size} bytes`,
      );
    }
  }
}

function chunksOf(data: Uint8Array, from: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let i = from; i < data.byteLength; i += WRITE_CHUNK)
    pieces.push(data.subarray(i, i + WRITE_CHUNK));
  return pieces;
}
