// Bad input reaching a real server over a real socket gets the status code
// REAPI prescribes, and never changes what the store holds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { status as Status } from '@grpc/grpc-js';
import {
  ActionCache,
  bytestream,
  Capabilities,
  ContentAddressableStorage,
  DigestFunction_Value,
  digestOf,
  toPb,
} from '../../src/reapi/index.js';
import { RemoteCallError, type Connection } from '../../src/remote/index.js';
import { MAX_PARTIAL_UPLOADS } from '../../src/server/index.js';
import { startFixture } from '../helpers/server-fixture.js';

async function codeOf(p: Promise<unknown> | AsyncIterable<unknown>): Promise<number> {
  try {
    if (Symbol.asyncIterator in p) {
      for await (const _ of p) {
        // drain
      }
    } else {
      await p;
    }
  } catch (e) {
    if (e instanceof RemoteCallError) return e.grpcCode;
    throw e;
  }
  return Status.OK;
}

const badDigest = { hash: 'XYZ', sizeBytes: 3n };
const upperDigest = { hash: 'A'.repeat(64), sizeBytes: 3n };
const negDigest = { hash: 'a'.repeat(64), sizeBytes: -1n };

async function* once<T>(...items: T[]): AsyncIterable<T> {
  for (const i of items) {
    await Promise.resolve();
    yield i;
  }
}

describe('server status codes', () => {
  const noRetry = { retry: false };
  const cas = ContentAddressableStorage.method;

  it('INVALID_ARGUMENT for malformed digests anywhere', async () => {
    await using f = await startFixture('tcp');
    const c: Connection = f.endpoint.connection;
    for (const d of [badDigest, upperDigest, negDigest]) {
      assert.equal(
        await codeOf(c.unary(cas.findMissingBlobs, { blobDigests: [d] }, noRetry)),
        Status.INVALID_ARGUMENT,
      );
      assert.equal(
        await codeOf(c.unary(cas.batchReadBlobs, { digests: [d] }, noRetry)),
        Status.INVALID_ARGUMENT,
      );
      assert.equal(
        await codeOf(c.unary(ActionCache.method.getActionResult, { actionDigest: d }, noRetry)),
        Status.INVALID_ARGUMENT,
      );
      assert.equal(
        await codeOf(c.serverStream(cas.getTree, { rootDigest: d })),
        Status.INVALID_ARGUMENT,
      );
    }
    assert.equal(
      await codeOf(c.unary(ActionCache.method.getActionResult, {}, noRetry)),
      Status.INVALID_ARGUMENT,
    );
    // Per-blob status in a batch update.
    const res = await c.unary(cas.batchUpdateBlobs, {
      requests: [{ digest: badDigest, data: Buffer.from('abc') }],
    });
    assert.equal(res.responses[0]?.status?.code, Status.INVALID_ARGUMENT);
  });

  it('INVALID_ARGUMENT for data that does not hash to its digest; nothing stored', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const good = Buffer.from('good data');
    const d = digestOf(Buffer.from('other data'));
    const res = await c.unary(cas.batchUpdateBlobs, {
      requests: [
        { digest: toPb(d), data: good },
        { digest: toPb(digestOf(good)), data: good },
      ],
    });
    assert.equal(res.responses[0]?.status?.code, Status.INVALID_ARGUMENT);
    assert.equal(res.responses[1]?.status?.code, Status.OK);
    assert.equal(f.cas.has(d), false);
    assert.equal(f.cas.has(digestOf(good)), true);

    const big = randomBytes(3 * 1024 * 1024);
    const wrong = digestOf(randomBytes(big.byteLength));
    const name = `uploads/${randomUUID()}/blobs/${wrong.hash}/${wrong.size}`;
    const code = await codeOf(
      c.clientStream(
        bytestream.ByteStream.method.write,
        once({ resourceName: name, data: big, finishWrite: true }),
        noRetry,
      ),
    );
    assert.equal(code, Status.INVALID_ARGUMENT);
    assert.equal(f.cas.has(wrong), false);
    assert.equal(f.server.partialUploads, 0);
  });

  it('INVALID_ARGUMENT for a batch over the advertised limit', async () => {
    await using f = await startFixture('tcp', { maxBatchBytes: 64 * 1024 });
    const c = f.endpoint.connection;
    const caps = await c.unary(Capabilities.method.getCapabilities, {});
    assert.equal(caps.cacheCapabilities?.maxBatchTotalSizeBytes, 64n * 1024n);
    const blobs = [randomBytes(40 * 1024), randomBytes(40 * 1024)];
    const code = await codeOf(
      c.unary(
        cas.batchUpdateBlobs,
        { requests: blobs.map((b) => ({ digest: toPb(digestOf(b)), data: b })) },
        noRetry,
      ),
    );
    assert.equal(code, Status.INVALID_ARGUMENT);
    for (const b of blobs) assert.equal(f.cas.has(digestOf(b)), false);
    const read = await codeOf(
      c.unary(cas.batchReadBlobs, { digests: blobs.map((b) => toPb(digestOf(b))) }, noRetry),
    );
    assert.equal(read, Status.INVALID_ARGUMENT);
    // The client splits by the advertised limit, so the same blobs go through.
    await f.endpoint.cas.writeBlobs(blobs);
    for (const b of blobs) assert.equal(f.cas.has(digestOf(b)), true);
  });

  it('NOT_FOUND for missing blobs, trees and action results', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const d = toPb(digestOf(Buffer.from('never stored')));
    const res = await c.unary(cas.batchReadBlobs, { digests: [d] });
    assert.equal(res.responses[0]?.status?.code, Status.NOT_FOUND);
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, {
          resourceName: `blobs/${d.hash}/${d.sizeBytes}`,
        }),
      ),
      Status.NOT_FOUND,
    );
    assert.equal(await codeOf(c.serverStream(cas.getTree, { rootDigest: d })), Status.NOT_FOUND);
    assert.equal(
      await codeOf(c.unary(ActionCache.method.getActionResult, { actionDigest: d }, noRetry)),
      Status.NOT_FOUND,
    );
    const q = `uploads/${randomUUID()}/blobs/${d.hash}/${d.sizeBytes}`;
    assert.equal(
      await codeOf(
        c.unary(bytestream.ByteStream.method.queryWriteStatus, { resourceName: q }, noRetry),
      ),
      Status.NOT_FOUND,
    );
  });

  it('INVALID_ARGUMENT for an unknown instance name', async () => {
    await using f = await startFixture('unix', { instance: 'main' });
    const c = f.endpoint.connection;
    for (const instanceName of ['', 'other', 'main/sub']) {
      assert.equal(
        await codeOf(c.unary(Capabilities.method.getCapabilities, { instanceName }, noRetry)),
        Status.INVALID_ARGUMENT,
      );
      assert.equal(
        await codeOf(c.unary(cas.findMissingBlobs, { instanceName }, noRetry)),
        Status.INVALID_ARGUMENT,
      );
    }
    const d = await f.endpoint.cas.writeBlob(Buffer.from('in main'));
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, {
          resourceName: `main/blobs/${d.hash}/${d.size}`,
        }),
      ),
      Status.OK,
    );
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, {
          resourceName: `other/blobs/${d.hash}/${d.size}`,
        }),
      ),
      Status.INVALID_ARGUMENT,
    );
  });

  it('INVALID_ARGUMENT for malformed resource names', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const d = await f.endpoint.cas.writeBlob(Buffer.from('named'));
    const names = [
      '',
      'blobs',
      `blobs/${d.hash}`,
      `blobs/${d.hash}/x`,
      `blobs/${d.hash.toUpperCase()}/${d.size}`,
      `blobs/${d.hash}/${d.size}/extra`,
      `../blobs/${d.hash}/${d.size}`,
      `compressed-blobs/zstd/${d.hash}/${d.size}`,
      `uploads/u/blobs/${d.hash}/${d.size}`,
    ];
    for (const resourceName of names) {
      assert.equal(
        await codeOf(c.serverStream(bytestream.ByteStream.method.read, { resourceName })),
        Status.INVALID_ARGUMENT,
        resourceName,
      );
    }
    for (const resourceName of [
      `blobs/${d.hash}/${d.size}`,
      `uploads//blobs/${d.hash}/${d.size}`,
      'uploads/u/blobs/zz/1',
    ]) {
      const code = await codeOf(
        c.clientStream(
          bytestream.ByteStream.method.write,
          once({ resourceName, data: Buffer.from('named'), finishWrite: true }),
          noRetry,
        ),
      );
      assert.equal(code, Status.INVALID_ARGUMENT, resourceName);
    }
  });

  it('OUT_OF_RANGE / INVALID_ARGUMENT for bad read offsets and limits', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const d = await f.endpoint.cas.writeBlob(Buffer.from('0123456789'));
    const resourceName = `blobs/${d.hash}/${d.size}`;
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, { resourceName, readOffset: 11n }),
      ),
      Status.OUT_OF_RANGE,
    );
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, { resourceName, readOffset: -1n }),
      ),
      Status.OUT_OF_RANGE,
    );
    assert.equal(
      await codeOf(
        c.serverStream(bytestream.ByteStream.method.read, { resourceName, readLimit: -1n }),
      ),
      Status.INVALID_ARGUMENT,
    );
  });

  it('INVALID_ARGUMENT for a digest function other than SHA-256', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const code = await codeOf(
      c.unary(cas.findMissingBlobs, { digestFunction: DigestFunction_Value.MD5 }, noRetry),
    );
    assert.equal(code, Status.INVALID_ARGUMENT);
    assert.equal(
      await codeOf(
        c.unary(cas.findMissingBlobs, { digestFunction: DigestFunction_Value.SHA256 }, noRetry),
      ),
      Status.OK,
    );
  });

  it('rejects a write whose offset does not continue the upload', async () => {
    await using f = await startFixture('tcp');
    const c = f.endpoint.connection;
    const data = randomBytes(2048);
    const d = digestOf(data);
    const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
    const code = await codeOf(
      c.clientStream(
        bytestream.ByteStream.method.write,
        once(
          { resourceName, data: data.subarray(0, 1024) },
          { writeOffset: 2000n, data: data.subarray(1024), finishWrite: true },
        ),
        noRetry,
      ),
    );
    assert.equal(code, Status.INVALID_ARGUMENT);
    assert.equal(f.cas.has(d), false);
  });

  it('resumes a broken upload from the committed size', async () => {
    await using f = await startFixture('unix');
    const c = f.endpoint.connection;
    const data = randomBytes(3 * 1024 * 1024);
    const d = digestOf(data);
    const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
    const first = await c.clientStream(
      bytestream.ByteStream.method.write,
      once({ resourceName, data: data.subarray(0, 1_000_000) }),
    );
    assert.equal(first.committedSize, 1_000_000n);
    const st = await c.unary(bytestream.ByteStream.method.queryWriteStatus, { resourceName });
    assert.equal(st.committedSize, 1_000_000n);
    assert.equal(st.complete, false);
    assert.equal(f.cas.has(d), false);
    const rest = await c.clientStream(
      bytestream.ByteStream.method.write,
      once({
        resourceName,
        writeOffset: 1_000_000n,
        data: data.subarray(1_000_000),
        finishWrite: true,
      }),
    );
    assert.equal(rest.committedSize, BigInt(d.size));
    const done = await c.unary(bytestream.ByteStream.method.queryWriteStatus, { resourceName });
    assert.equal(done.complete, true);
    assert.ok(Buffer.from(await f.cas.readBlob(d)).equals(data));
    assert.equal(f.server.partialUploads, 0);
  });

  it('accepts batches up to a configured limit above the default', async () => {
    await using f = await startFixture('tcp', { maxBatchBytes: 8 * 1024 * 1024 });
    const blobs = [0, 1, 2].map(() => randomBytes(2 * 1024 * 1024));
    const res = await f.endpoint.connection.unary(
      ContentAddressableStorage.method.batchUpdateBlobs,
      { requests: blobs.map((data) => ({ digest: toPb(digestOf(data)), data })) },
      noRetry,
    );
    assert.deepEqual(
      res.responses.map((r) => r.status?.code ?? 0),
      [0, 0, 0],
    );
    assert.deepEqual(await f.cas.findMissingBlobs(blobs.map((b) => digestOf(b))), []);
  });

  it('refuses to resume an upload it does not have, keeping nothing', async () => {
    await using f = await startFixture('unix');
    const c = f.endpoint.connection;
    const data = randomBytes(4096);
    const d = digestOf(data);
    const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
    const code = await codeOf(
      c.clientStream(
        bytestream.ByteStream.method.write,
        once({ resourceName, writeOffset: 100n, data: data.subarray(100) }),
        noRetry,
      ),
    );
    assert.equal(code, Status.OUT_OF_RANGE);
    assert.equal(f.server.partialUploads, 0);
  });

  it('keeps at most MAX_PARTIAL_UPLOADS partial uploads, dropping the oldest idle one', async () => {
    await using f = await startFixture('unix');
    const c = f.endpoint.connection;
    const names: string[] = [];
    for (let i = 0; i <= MAX_PARTIAL_UPLOADS; i++) {
      const data = randomBytes(64);
      const d = digestOf(data);
      const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
      names.push(resourceName);
      await c.clientStream(
        bytestream.ByteStream.method.write,
        once({ resourceName, data: data.subarray(0, 10) }),
      );
    }
    assert.equal(f.server.partialUploads, MAX_PARTIAL_UPLOADS);
    const oldest = await codeOf(
      c.unary(bytestream.ByteStream.method.queryWriteStatus, { resourceName: names[0] }, noRetry),
    );
    assert.equal(oldest, Status.NOT_FOUND, 'the oldest was dropped');
    const newest = await c.unary(bytestream.ByteStream.method.queryWriteStatus, {
      resourceName: names.at(-1),
    });
    assert.equal(newest.committedSize, 10n);
  });

  it('pages GetTree with tokens it issued, and rejects others', async () => {
    await using f = await startFixture('tcp');
    const { create } = await import('@bufbuild/protobuf');
    const { DirectorySchema, digestMessage } = await import('../../src/reapi/index.js');
    const leaf = digestMessage(
      DirectorySchema,
      create(DirectorySchema, { symlinks: [{ name: 'l', target: 'x' }] }),
    );
    const mid = digestMessage(
      DirectorySchema,
      create(DirectorySchema, { directories: [{ name: 'leaf', digest: toPb(leaf.digest) }] }),
    );
    const root = digestMessage(
      DirectorySchema,
      create(DirectorySchema, {
        directories: [
          { name: 'a', digest: toPb(mid.digest) },
          { name: 'b', digest: toPb(leaf.digest) },
        ],
      }),
    );
    await f.endpoint.cas.writeBlobs([leaf.bytes, mid.bytes, root.bytes]);
    const c = f.endpoint.connection;
    const all = [];
    for await (const r of c.serverStream(cas.getTree, { rootDigest: toPb(root.digest) }))
      all.push(...r.directories);
    assert.equal(all.length, 3);
    let token = '';
    const paged = [];
    let pages = 0;
    for (let i = 0; i < 10; i++) {
      let next = '';
      for await (const r of c.serverStream(cas.getTree, {
        rootDigest: toPb(root.digest),
        pageSize: 1,
        pageToken: token,
      })) {
        assert.ok(
          r.directories.length <= 1,
          `page of ${String(r.directories.length)} > pageSize 1`,
        );
        paged.push(...r.directories);
        next = r.nextPageToken || next;
      }
      pages++;
      if (next === '') break;
      token = next;
    }
    assert.equal(paged.length, 3);
    assert.ok(pages >= 2, 'the tree came in more than one call');
    assert.deepEqual(
      paged.map((d) => digestMessage(DirectorySchema, d).digest.hash).sort(),
      all.map((d) => digestMessage(DirectorySchema, d).digest.hash).sort(),
      'the pages hold the same directories as the whole tree',
    );
    assert.equal(
      await codeOf(
        c.serverStream(cas.getTree, { rootDigest: toPb(root.digest), pageToken: 'bogus' }),
      ),
      Status.INVALID_ARGUMENT,
    );
  });
});
