// ContentAddressableStorage service: FindMissingBlobs, batch reads and writes
// within the advertised limit, and GetTree with paging.
import { create } from '@bufbuild/protobuf';
import { status as Status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import { walkTree } from '../cas/index.js';
import {
  BatchReadBlobsResponse_ResponseSchema,
  BatchReadBlobsResponseSchema,
  BatchUpdateBlobsResponse_ResponseSchema,
  BatchUpdateBlobsResponseSchema,
  Compressor_Value,
  digestEquals,
  digestKey,
  FindMissingBlobsResponseSchema,
  fromPb,
  GetTreeResponseSchema,
  toPb,
  type BatchReadBlobsRequest,
  type BatchUpdateBlobsRequest,
  type Directory,
  type FindMissingBlobsRequest,
  type GetTreeRequest,
  type GetTreeResponse,
} from '../reapi/index.js';
import { writeMessage, type ServerContext } from './context.js';
import { rpcStatus, rpcStatusOf } from './status.js';

/** Directories per GetTree response message (keeps each well under 4 MiB). */
const TREE_MESSAGE_DIRS = 1000;
const TREE_MESSAGE_BYTES = 2 * 1024 * 1024;

export function casService(ctx: ServerContext): UntypedServiceImplementation {
  return {
    findMissingBlobs: ctx.unary(async (req: FindMissingBlobsRequest) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { cas } = ctx.instance(req.instanceName);
      const digests = req.blobDigests.map((d, i) => fromPb(d, `blob_digests[${i}]`));
      const missing = await cas.findMissingBlobs(digests);
      return create(FindMissingBlobsResponseSchema, { missingBlobDigests: missing.map(toPb) });
    }),

    batchUpdateBlobs: ctx.unary(async (req: BatchUpdateBlobsRequest) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { cas } = ctx.instance(req.instanceName);
      const total = req.requests.reduce((n, r) => n + r.data.byteLength, 0);
      if (total > ctx.maxBatchBytes) {
        throw new SpecbuildError(
          'server/batch-too-large',
          `batch of ${total} bytes exceeds max_batch_total_size_bytes ${ctx.maxBatchBytes}`,
          { hint: 'upload large blobs with ByteStream Write' },
        );
      }
      const responses = await Promise.all(
        req.requests.map(async (r, i) => {
          const digest = r.digest;
          try {
            const d = fromPb(digest, `requests[${i}].digest`);
            if (r.compressor !== Compressor_Value.IDENTITY) {
              throw new SpecbuildError(
                'reapi/invalid-message',
                `compressor ${r.compressor} is not supported`,
              );
            }
            if (r.data.byteLength !== d.size)
              throw new SpecbuildError(
                'cas/digest-mismatch',
                `${String(r.data.byteLength)} bytes sent for ${digestKey(d)}`,
              );
            // Hashed once, by the store; data under another digest is stored
            // there (harmless: content-addressed) and the request refused.
            const got = await cas.writeBlob(r.data);
            if (!digestEquals(got, d)) {
              throw new SpecbuildError(
                'cas/digest-mismatch',
                `data hashes to ${digestKey(got)}, not ${digestKey(d)}`,
              );
            }
            return create(BatchUpdateBlobsResponse_ResponseSchema, {
              digest,
              status: rpcStatus(Status.OK),
            });
          } catch (e) {
            return create(BatchUpdateBlobsResponse_ResponseSchema, {
              digest,
              status: rpcStatusOf(e),
            });
          }
        }),
      );
      return create(BatchUpdateBlobsResponseSchema, { responses });
    }),

    batchReadBlobs: ctx.unary(async (req: BatchReadBlobsRequest) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { cas } = ctx.instance(req.instanceName);
      const digests = req.digests.map((d, i) => fromPb(d, `digests[${i}]`));
      const total = digests.reduce((n, d) => n + d.size, 0);
      if (total > ctx.maxBatchBytes) {
        throw new SpecbuildError(
          'server/batch-too-large',
          `batch of ${total} bytes exceeds max_batch_total_size_bytes ${ctx.maxBatchBytes}`,
          { hint: 'read large blobs with ByteStream Read' },
        );
      }
      const blobs = await cas.readBlobs(digests);
      const responses = digests.map((d) => {
        const data = blobs.get(digestKey(d));
        return create(BatchReadBlobsResponse_ResponseSchema, {
          digest: toPb(d),
          data: data ?? new Uint8Array(0),
          status:
            data === undefined
              ? rpcStatus(Status.NOT_FOUND, `blob ${digestKey(d)} not found`)
              : rpcStatus(Status.OK),
        });
      });
      return create(BatchReadBlobsResponseSchema, { responses });
    }),

    getTree: ctx.serverStream(async (req: GetTreeRequest, call) => {
      ctx.checkDigestFunction(req.digestFunction);
      const { cas } = ctx.instance(req.instanceName);
      const root = fromPb(req.rootDigest, 'root_digest');
      if (req.pageSize < 0) {
        throw new SpecbuildError('reapi/invalid-message', `page_size ${req.pageSize} is negative`);
      }
      let skip = 0;
      if (req.pageToken !== '') {
        if (!/^\d{1,9}$/.test(req.pageToken)) {
          throw new SpecbuildError(
            'reapi/invalid-message',
            `page_token "${req.pageToken.slice(0, 50)}" is not one this server issued`,
          );
        }
        skip = Number(req.pageToken);
      }
      const limit = req.pageSize === 0 ? Infinity : req.pageSize;
      let batch: Directory[] = [];
      let batchBytes = 0;
      let sent = 0;
      let index = 0;
      const flush = async (nextPageToken: string): Promise<void> => {
        const msg: GetTreeResponse = create(GetTreeResponseSchema, {
          directories: batch,
          nextPageToken,
        });
        batch = [];
        batchBytes = 0;
        await writeMessage(call, msg);
      };
      for await (const w of walkTree(cas, root)) {
        if (w.missing === true) continue; // left out, with its subtree
        const { dir, size } = w;
        if (index++ < skip) continue;
        if (sent === limit) {
          await flush(String(skip + sent));
          return;
        }
        if (batch.length >= TREE_MESSAGE_DIRS || batchBytes + size > TREE_MESSAGE_BYTES)
          await flush('');
        batch.push(dir);
        batchBytes += size;
        sent++;
      }
      if (index === 0)
        throw new SpecbuildError('cas/not-found', `root directory ${digestKey(root)} not found`);
      if (skip > 0 && index <= skip) {
        throw new SpecbuildError(
          'reapi/invalid-message',
          `page_token ${skip} is past the end of the tree`,
        );
      }
      await flush('');
    }),
  };
}
