// The Remote Asset service of `startServer` over the local asset index,
// through the RemoteAsset client on real sockets: round trips, every way a
// name stops resolving, qualifiers, several URIs, and argument checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { LocalAssetStore, type Cas, type LocalCas } from '../../src/cas/index.js';
import {
  assetPb,
  digestMessage,
  digestOf,
  DigestFunction_Value,
  DirectorySchema,
  toPb,
  type Digest,
} from '../../src/reapi/index.js';
import { Connection, RemoteCallError } from '../../src/remote/index.js';
import { startFixture, type ServerFixture } from '../helpers/server-fixture.js';

const T0 = 1_700_000_000_000;

/** A two-level tree (root: h.txt, sub/w.txt) written through `cas`. */
async function storeTree(cas: Cas) {
  const [hello, world] = await cas.writeBlobs([Buffer.from('hello\n'), Buffer.from('world\n')]);
  assert.ok(hello !== undefined && world !== undefined);
  const sub = digestMessage(
    DirectorySchema,
    create(DirectorySchema, { files: [{ name: 'w.txt', digest: toPb(world) }] }),
  );
  const root = digestMessage(
    DirectorySchema,
    create(DirectorySchema, {
      files: [{ name: 'h.txt', digest: toPb(hello) }],
      directories: [{ name: 'sub', digest: toPb(sub.digest) }],
    }),
  );
  await cas.writeBlobs([sub.bytes, root.bytes]);
  return { root: root.digest, sub: sub.digest, hello, world };
}

/** Removes a blob from the server's store, as eviction would. */
async function evict(cas: LocalCas, d: Digest): Promise<void> {
  await unlink(cas.pathOf(d));
}

async function withClock(fn: (f: ServerFixture, clock: { now: number }) => Promise<void>) {
  const clock = { now: T0 };
  await using f = await startFixture('tcp', { now: () => clock.now });
  await fn(f, clock);
}

describe('Remote Asset service', () => {
  it('pushes a blob under several URIs and fetches it by any of them', async () => {
    await withClock(async (f) => {
      const assets = f.endpoint.assets;
      const blob = await f.endpoint.cas.writeBlob(Buffer.from('artifact record'));
      const qualifiers = [
        { name: 'z', value: '1' },
        { name: 'a', value: '2' },
      ];
      await assets.pushBlob({
        uris: ['urn:x:a', 'urn:x:b'],
        qualifiers,
        digest: blob,
        expireAtMs: T0 + 60_000,
      });
      const want = {
        digest: digestOf(Buffer.from('artifact record')),
        qualifiers: [
          { name: 'a', value: '2' },
          { name: 'z', value: '1' },
        ],
        expireAtMs: T0 + 60_000,
      };
      assert.deepEqual(await assets.fetchBlob({ uris: ['urn:x:b'], qualifiers }), {
        uri: 'urn:x:b',
        ...want,
      });
      // Any URI may answer; the first in the request's order that resolves does.
      assert.deepEqual(
        await assets.fetchBlob({ uris: ['urn:x:none', 'urn:x:a', 'urn:x:b'], qualifiers }),
        { uri: 'urn:x:a', ...want },
      );
      // Blob and directory names are apart.
      assert.equal(await assets.fetchDirectory({ uris: ['urn:x:a'], qualifiers }), undefined);
    });
  });

  it('pushes a directory tree and fetches its root; on a unix socket too', async () => {
    await using f = await startFixture('unix');
    const tree = await storeTree(f.endpoint.cas);
    await f.endpoint.assets.pushDirectory({ uris: ['urn:x:tree'], digest: tree.root });
    assert.deepEqual(await f.endpoint.assets.fetchDirectory({ uris: ['urn:x:tree'] }), {
      uri: 'urn:x:tree',
      digest: tree.root,
      qualifiers: [],
      expireAtMs: undefined,
    });
    assert.equal(await f.endpoint.assets.fetchBlob({ uris: ['urn:x:tree'] }), undefined);
  });

  it('answers NOT_FOUND for a name never pushed (the client: undefined)', async () => {
    await using f = await startFixture('tcp');
    assert.equal(await f.endpoint.assets.fetchBlob({ uris: ['urn:x:unknown'] }), undefined);
    const conn = new Connection({ target: f.server.address });
    try {
      await assert.rejects(
        conn.unary(assetPb.Fetch.method.fetchBlob, { uris: ['urn:x:unknown'] }),
        (e: unknown) =>
          e instanceof RemoteCallError &&
          e.grpcCode === Status.NOT_FOUND &&
          e.message.includes('no blob is known as "urn:x:unknown"'),
      );
    } finally {
      conn.close();
    }
  });

  it('stops resolving a name at its expire_at; a new push renews it', async () => {
    await withClock(async (f, clock) => {
      const assets = f.endpoint.assets;
      const blob = await f.endpoint.cas.writeBlob(Buffer.from('expiring'));
      await assets.pushBlob({ uris: ['urn:x:e'], digest: blob, expireAtMs: T0 + 1000 });
      clock.now = T0 + 999;
      assert.equal((await assets.fetchBlob({ uris: ['urn:x:e'] }))?.expireAtMs, T0 + 1000);
      clock.now = T0 + 1000;
      assert.equal(await assets.fetchBlob({ uris: ['urn:x:e'] }), undefined);
      await assets.pushBlob({ uris: ['urn:x:e'], digest: blob, expireAtMs: T0 + 5000 });
      assert.equal((await assets.fetchBlob({ uris: ['urn:x:e'] }))?.expireAtMs, T0 + 5000);
      // An expiry in the past withdraws the name.
      await assets.pushBlob({ uris: ['urn:x:e'], digest: blob, expireAtMs: T0 });
      assert.equal(await assets.fetchBlob({ uris: ['urn:x:e'] }), undefined);
    });
  });

  it('honours oldest_content_accepted against the time of the push', async () => {
    await withClock(async (f, clock) => {
      const assets = f.endpoint.assets;
      const blob = await f.endpoint.cas.writeBlob(Buffer.from('aging'));
      await assets.pushBlob({ uris: ['urn:x:o'], digest: blob });
      clock.now = T0 + 10_000;
      const q = (oldestAcceptedMs: number) =>
        assets.fetchBlob({ uris: ['urn:x:o'], oldestAcceptedMs });
      assert.deepEqual((await q(T0 - 1))?.digest, blob);
      assert.deepEqual((await q(T0))?.digest, blob);
      assert.equal(await q(T0 + 1), undefined);
      await assets.pushBlob({ uris: ['urn:x:o'], digest: blob }); // pushed again at T0 + 10 s
      assert.deepEqual((await q(T0 + 10_000))?.digest, blob);
      assert.equal(await q(T0 + 10_001), undefined);
    });
  });

  it('matches qualifiers exactly, in any order', async () => {
    await using f = await startFixture('tcp');
    const assets = f.endpoint.assets;
    const [one, two] = await f.endpoint.cas.writeBlobs([Buffer.from('one'), Buffer.from('two')]);
    assert.ok(one !== undefined && two !== undefined);
    const q1 = [
      { name: 'resource_type', value: 'application/x-tar' },
      { name: 'vcs.commit', value: 'abc' },
    ];
    await assets.pushBlob({ uris: ['urn:x:q'], qualifiers: q1, digest: one });
    await assets.pushBlob({ uris: ['urn:x:q'], digest: two }); // the same URI, no qualifiers
    const fetch = async (qualifiers: { name: string; value: string }[]) =>
      (await assets.fetchBlob({ uris: ['urn:x:q'], qualifiers }))?.digest;
    assert.deepEqual(await fetch([...q1].reverse()), one);
    assert.deepEqual(await fetch([]), two);
    assert.equal(await fetch(q1.slice(0, 1)), undefined, 'a subset is not a match');
    assert.equal(await fetch([...q1, { name: 'x', value: '' }]), undefined, 'nor a superset');
    const otherCommit = [
      { name: 'resource_type', value: 'application/x-tar' },
      { name: 'vcs.commit', value: 'abd' },
    ];
    assert.equal(await fetch(otherCommit), undefined, 'nor another value');
  });

  it('answers NOT_FOUND once content has left the CAS: the blob, a referenced blob, part of a tree', async () => {
    await using f = await startFixture('tcp');
    const assets = f.endpoint.assets;
    const cas = f.endpoint.cas;
    const [rec, log] = await cas.writeBlobs([Buffer.from('record'), Buffer.from('log')]);
    assert.ok(rec !== undefined && log !== undefined);
    const tree = await storeTree(cas);
    await assets.pushBlob({
      uris: ['urn:x:rec'],
      digest: rec,
      referencesBlobs: [log],
      referencesDirectories: [tree.root],
    });
    await assets.pushDirectory({ uris: ['urn:x:tree'], digest: tree.root });
    assert.deepEqual((await assets.fetchBlob({ uris: ['urn:x:rec'] }))?.digest, rec);
    assert.deepEqual((await assets.fetchDirectory({ uris: ['urn:x:tree'] }))?.digest, tree.root);

    // A file deep in the tree goes: the tree, and the record that references it, are gone.
    await evict(f.cas, tree.world);
    assert.equal(await assets.fetchDirectory({ uris: ['urn:x:tree'] }), undefined);
    assert.equal(await assets.fetchBlob({ uris: ['urn:x:rec'] }), undefined);
    // Uploaded again: both resolve again (the names were kept).
    await cas.writeBlob(Buffer.from('world\n'));
    assert.deepEqual((await assets.fetchDirectory({ uris: ['urn:x:tree'] }))?.digest, tree.root);
    assert.deepEqual((await assets.fetchBlob({ uris: ['urn:x:rec'] }))?.digest, rec);

    // A subdirectory goes.
    await evict(f.cas, tree.sub);
    assert.equal(await assets.fetchDirectory({ uris: ['urn:x:tree'] }), undefined);
    await cas.writeBlob(
      digestMessage(
        DirectorySchema,
        create(DirectorySchema, { files: [{ name: 'w.txt', digest: toPb(tree.world) }] }),
      ).bytes,
    );
    assert.deepEqual((await assets.fetchDirectory({ uris: ['urn:x:tree'] }))?.digest, tree.root);

    // A referenced blob goes; then the record itself.
    await evict(f.cas, log);
    assert.equal(await assets.fetchBlob({ uris: ['urn:x:rec'] }), undefined);
    await cas.writeBlob(Buffer.from('log'));
    await evict(f.cas, rec);
    assert.equal(await assets.fetchBlob({ uris: ['urn:x:rec'] }), undefined);
    // The root directory itself goes.
    await evict(f.cas, tree.root);
    assert.equal(await assets.fetchDirectory({ uris: ['urn:x:tree'] }), undefined);
  });

  it('refuses to name content that is not in the CAS, with INVALID_ARGUMENT naming the field', async () => {
    await using f = await startFixture('tcp');
    const assets = f.endpoint.assets;
    const present = await f.endpoint.cas.writeBlob(Buffer.from('present'));
    const absent = digestOf(Buffer.from('absent'));
    // Field 1 with a length of 5 and 1 byte of data: no Directory parses from it.
    const notDir = await f.endpoint.cas.writeBlob(Buffer.from([0x0a, 0x05, 0x01]));
    const tree = await storeTree(f.endpoint.cas);
    await evict(f.cas, tree.hello);
    const cases: [Promise<void>, string][] = [
      [assets.pushBlob({ uris: ['u'], digest: absent }), 'blob_digest: blob'],
      [
        assets.pushBlob({ uris: ['u'], digest: present, referencesBlobs: [present, absent] }),
        'references_blobs[1]: blob',
      ],
      [
        assets.pushBlob({ uris: ['u'], digest: present, referencesDirectories: [tree.root] }),
        `references_directories[0]: the tree of ${tree.root.hash}/${tree.root.size} is incomplete`,
      ],
      [
        assets.pushDirectory({ uris: ['u'], digest: tree.root }),
        'root_directory_digest: the tree of',
      ],
      [assets.pushDirectory({ uris: ['u'], digest: notDir }), 'is not a valid Directory tree'],
    ];
    for (const [call, text] of cases) {
      await assert.rejects(call, (e: unknown) => {
        assert.ok(e instanceof RemoteCallError, String(e));
        assert.equal(e.grpcCode, Status.INVALID_ARGUMENT);
        assert.ok(e.message.includes(text), `${e.message} should include ${text}`);
        return true;
      });
    }
    assert.equal(await assets.fetchBlob({ uris: ['u'] }), undefined, 'nothing was named');
  });

  it('refuses malformed requests with INVALID_ARGUMENT naming the field', async () => {
    await using f = await startFixture('tcp');
    const good = toPb(await f.endpoint.cas.writeBlob(Buffer.from('good')));
    const conn = new Connection({ target: f.server.address });
    const fetchBlob = assetPb.Fetch.method.fetchBlob;
    const pushBlob = assetPb.Push.method.pushBlob;
    const pushDir = assetPb.Push.method.pushDirectory;
    const badHash = { hash: 'abc', sizeBytes: 3n };
    const cases: [Promise<unknown>, string][] = [
      [conn.unary(fetchBlob, { uris: [] }), 'uris: at least one URI is required'],
      [conn.unary(fetchBlob, { uris: ['a', ''] }), 'uris[1] is empty'],
      [
        conn.unary(fetchBlob, {
          uris: ['a'],
          qualifiers: [
            { name: 'n', value: '1' },
            { name: 'm', value: '1' },
            { name: 'n', value: '2' },
          ],
        }),
        'qualifiers[2].name "n" repeats qualifiers[0].name',
      ],
      [
        conn.unary(fetchBlob, { uris: ['a'], oldestContentAccepted: { seconds: 1n, nanos: -1 } }),
        'oldest_content_accepted: nanos -1',
      ],
      [conn.unary(pushBlob, { uris: ['a'] }), 'blob_digest: missing'],
      [conn.unary(pushBlob, { uris: ['a'], blobDigest: badHash }), 'blob_digest: hash "abc"'],
      [conn.unary(pushBlob, { uris: [], blobDigest: good }), 'uris: at least one URI'],
      [
        conn.unary(pushBlob, { uris: ['a'], blobDigest: good, referencesBlobs: [good, badHash] }),
        'references_blobs[1]: hash',
      ],
      [
        conn.unary(pushBlob, {
          uris: ['a'],
          blobDigest: good,
          referencesDirectories: [{ hash: good.hash, sizeBytes: -1n }],
        }),
        'references_directories[0]: size -1',
      ],
      [
        conn.unary(pushBlob, {
          uris: ['a'],
          blobDigest: good,
          expireAt: { seconds: 253_402_300_800n, nanos: 0 },
        }),
        'expire_at: seconds 253402300800',
      ],
      [conn.unary(pushDir, { uris: ['a'] }), 'root_directory_digest: missing'],
      [
        conn.unary(fetchBlob, { instanceName: 'other', uris: ['a'] }),
        'unknown instance name "other"',
      ],
      [
        conn.unary(fetchBlob, { uris: ['a'], digestFunction: DigestFunction_Value.MD5 }),
        'is not supported',
      ],
    ];
    try {
      for (const [call, text] of cases) {
        await assert.rejects(call, (e: unknown) => {
          assert.ok(e instanceof RemoteCallError, String(e));
          assert.equal(e.grpcCode, Status.INVALID_ARGUMENT, e.message);
          assert.ok(e.message.includes(text), `${e.message} should include ${text}`);
          return true;
        });
      }
    } finally {
      conn.close();
    }
  });

  it('answers UNIMPLEMENTED for an instance without an asset store', async () => {
    await using f = await startFixture('tcp', { noAssets: true });
    await assert.rejects(
      f.endpoint.assets.fetchBlob({ uris: ['a'] }),
      (e: unknown) => e instanceof RemoteCallError && e.grpcCode === Status.UNIMPLEMENTED,
    );
  });

  it('keeps names across a reopen of the index, with nothing left in its tmp', async () => {
    await withClock(async (f) => {
      const blob = await f.endpoint.cas.writeBlob(Buffer.from('kept'));
      await f.endpoint.assets.pushBlob({
        uris: ['urn:x:k'],
        qualifiers: [{ name: 'q', value: 'v' }],
        digest: blob,
        expireAtMs: T0 + 1,
        referencesBlobs: [blob],
      });
      const again = await LocalAssetStore.open({
        dir: join(f.dir.path, 'cache'),
        cas: f.cas,
        now: () => T0,
      });
      assert.deepEqual(
        await again.fetchBlob({ uris: ['urn:x:k'], qualifiers: [{ name: 'q', value: 'v' }] }),
        {
          uri: 'urn:x:k',
          digest: blob,
          qualifiers: [{ name: 'q', value: 'v' }],
          expireAtMs: T0 + 1,
        },
      );
      assert.deepEqual(await readdir(join(f.dir.path, 'cache', 'assets', 'tmp')), []);
    });
  });
});
