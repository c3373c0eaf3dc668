// ByteStream service for blobs of any size: chunked Read with offset and
// limit, resumable Write (verified before the blob becomes visible) and
// QueryWriteStatus.
import { create } from '@bufbuild/protobuf';
import type { ServerReadableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import type { Upload } from '../cas/index.js';
import { bytestream } from '../reapi/index.js';
import { READ_CHUNK_BYTES, writeMessage, type ServerContext } from './context.js';
import { parseReadName, parseWriteName } from './resource-name.js';

/** A partial upload is dropped after this long without data. */
const UPLOAD_IDLE_MS = 10 * 60 * 1000;
/**
 * Partial uploads kept at once (each holds an open file): past this, the
 * least recently started idle one is dropped, or the new one refused.
 */
export const MAX_PARTIAL_UPLOADS = 256;

interface Partial {
  upload: Upload;
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class ByteStreamService {
  private readonly partial = new Map<string, Partial>();
  /** Names being claimed right now (between the checks and the map entry). */
  private readonly claiming = new Set<string>();

  constructor(private readonly ctx: ServerContext) {}

  /** Discards every partial upload (on shutdown). */
  async close(): Promise<void> {
    const all = [...this.partial.values()];
    this.partial.clear();
    for (const p of all) clearTimeout(p.timer);
    await Promise.all(all.map((p) => p.upload.abort()));
  }

  get partialUploads(): number {
    return this.partial.size;
  }

  implementation(): UntypedServiceImplementation {
    const ctx = this.ctx;
    return {
      read: ctx.serverStream(async (req: bytestream.ReadRequest, call) => {
        const { instance, digest } = parseReadName(req.resourceName);
        const { cas } = ctx.instance(instance);
        if (req.readOffset < 0n || req.readOffset > BigInt(digest.size)) {
          throw new SpecbuildError(
            'cas/out-of-range',
            `read_offset ${req.readOffset} is outside blob of ${digest.size} bytes`,
          );
        }
        if (req.readLimit < 0n) {
          throw new SpecbuildError(
            'reapi/invalid-message',
            `read_limit ${req.readLimit} is negative`,
          );
        }
        const abort = new AbortController();
        call.once('cancelled', () => {
          abort.abort();
        });
        const range = { offset: Number(req.readOffset), limit: Number(req.readLimit) };
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        for await (const chunk of cas.readStream(digest, range, { signal: abort.signal })) {
          // Re-chunk so that every message carries about READ_CHUNK_BYTES.
          pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          pendingBytes += chunk.byteLength;
          while (pendingBytes >= READ_CHUNK_BYTES) {
            const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
            await writeMessage(
              call,
              create(bytestream.ReadResponseSchema, { data: all.subarray(0, READ_CHUNK_BYTES) }),
            );
            const rest = all.subarray(READ_CHUNK_BYTES);
            pending = rest.byteLength > 0 ? [rest] : [];
            pendingBytes = rest.byteLength;
          }
        }
        if (pendingBytes > 0) {
          await writeMessage(
            call,
            create(bytestream.ReadResponseSchema, { data: Buffer.concat(pending) }),
          );
        }
      }),

      write: ctx.clientStream((call) => this.write(call)),

      queryWriteStatus: ctx.unary((req: bytestream.QueryWriteStatusRequest) => {
        const { instance, digest } = parseWriteName(req.resourceName);
        const { cas } = ctx.instance(instance);
        if (cas.has(digest)) {
          return Promise.resolve(
            create(bytestream.QueryWriteStatusResponseSchema, {
              committedSize: BigInt(digest.size),
              complete: true,
            }),
          );
        }
        const p = this.partial.get(req.resourceName);
        if (p === undefined) {
          throw new SpecbuildError(
            'cas/not-found',
            `no upload in progress for "${req.resourceName.slice(0, 300)}"`,
          );
        }
        return Promise.resolve(
          create(bytestream.QueryWriteStatusResponseSchema, {
            committedSize: BigInt(p.upload.committedSize),
            complete: false,
          }),
        );
      }),
    };
  }

  private async write(
    call: ServerReadableStream<bytestream.WriteRequest, bytestream.WriteResponse>,
  ): Promise<bytestream.WriteResponse> {
    const done = (size: number): bytestream.WriteResponse =>
      create(bytestream.WriteResponseSchema, { committedSize: BigInt(size) });
    let name: string | undefined;
    let entry: Partial | undefined;
    try {
      for await (const raw of call) {
        const req = raw as bytestream.WriteRequest;
        if (name === undefined) {
          name = req.resourceName;
          const { instance, digest } = parseWriteName(name);
          const { cas } = this.ctx.instance(instance);
          if (cas.has(digest)) return done(digest.size); // already stored: finish early
          entry = await this.claim(name, digest, cas.beginUpload.bind(cas), req.writeOffset);
        } else if (req.resourceName !== '' && req.resourceName !== name) {
          throw new SpecbuildError(
            'reapi/invalid-message',
            'resource_name changed within one Write stream',
          );
        }
        if (entry === undefined) throw new Error('bug: no upload');
        if (req.writeOffset !== BigInt(entry.upload.committedSize)) {
          throw new SpecbuildError(
            'reapi/invalid-message',
            `write_offset ${req.writeOffset} does not match committed size ${entry.upload.committedSize}`,
            { hint: 'ask QueryWriteStatus where to resume' },
          );
        }
        try {
          if (req.data.byteLength > 0) await entry.upload.write(req.data);
        } catch (e) {
          await this.drop(name);
          throw e;
        }
        if (req.finishWrite) {
          this.partial.delete(name);
          clearTimeout(entry.timer);
          const size = entry.upload.digest.size;
          try {
            await entry.upload.finish();
          } catch (e) {
            await entry.upload.abort();
            throw e;
          }
          entry = undefined;
          return done(size);
        }
      }
      if (name === undefined)
        throw new SpecbuildError('reapi/invalid-message', 'empty Write stream');
      // The client closed without finish_write: keep the data for a later
      // resume, once it is stored (committed_size promises that).
      if (entry !== undefined) {
        try {
          await entry.upload.flush();
        } catch (e) {
          await this.drop(name);
          entry = undefined;
          throw e;
        }
      }
      return done(entry?.upload.committedSize ?? 0);
    } finally {
      if (entry !== undefined) {
        entry.busy = false;
        this.armTimer(name ?? '', entry);
      }
    }
  }

  /** Takes (or creates) the partial upload for `name`; one stream at a time per name. */
  private async claim(
    name: string,
    digest: Upload['digest'],
    begin: (d: Upload['digest']) => Promise<Upload>,
    offset: bigint,
  ): Promise<Partial> {
    let p = this.partial.get(name);
    if (p?.busy === true || this.claiming.has(name)) {
      throw new SpecbuildError(
        'server/upload-busy',
        `another stream is writing "${name.slice(0, 300)}"`,
      );
    }
    if (p === undefined && offset !== 0n) {
      throw new SpecbuildError(
        'cas/out-of-range',
        `no upload of "${name.slice(0, 300)}" to resume at offset ${offset}`,
        { hint: 'start at offset 0, or ask QueryWriteStatus where to resume' },
      );
    }
    this.claiming.add(name); // held across the awaits below
    try {
      if (p !== undefined && offset === 0n && p.upload.committedSize > 0) {
        await this.drop(name); // the client restarts from the beginning
        p = undefined;
      }
      if (p === undefined) {
        await this.makeRoom();
        p = { upload: await begin(digest), busy: true, timer: undefined };
        this.partial.set(name, p);
      }
    } finally {
      this.claiming.delete(name);
    }
    p.busy = true;
    clearTimeout(p.timer);
    return p;
  }

  /** Keeps the number of partial uploads under MAX_PARTIAL_UPLOADS. */
  private async makeRoom(): Promise<void> {
    if (this.partial.size + this.claiming.size <= MAX_PARTIAL_UPLOADS) return;
    for (const [name, p] of this.partial) {
      if (p.busy) continue;
      await this.drop(name); // the oldest idle one
      return;
    }
    throw new SpecbuildError(
      'server/too-many-uploads',
      `${String(MAX_PARTIAL_UPLOADS)} uploads are in progress`,
      { temporary: true, hint: 'try again shortly' },
    );
  }

  private armTimer(name: string, p: Partial): void {
    if (this.partial.get(name) !== p) return;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      void this.drop(name);
    }, UPLOAD_IDLE_MS);
    p.timer.unref();
  }

  private async drop(name: string): Promise<void> {
    const p = this.partial.get(name);
    if (p === undefined) return;
    this.partial.delete(name);
    clearTimeout(p.timer);
    await p.upload.abort();
  }
}
