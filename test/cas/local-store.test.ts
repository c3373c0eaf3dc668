// The Cas and ActionCache contracts on the local store, plus what only the
// local store promises: read-only files, quota with LRU eviction, torn files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, stat, truncate, unlink, chmod, writeFile } from 'node:fs/promises';
import { utimesSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { basename, join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { LocalActionCache, LocalCas, putActionResultFile } from '../../src/cas/index.js';
import {
  ActionResultSchema,
  digestKey,
  digestOf,
  EMPTY_DIGEST,
  parseDigest,
  type Digest,
} from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';
import { casContract } from './cas-contract.js';
import { acContract } from './ac-contract.js';

async function localRig() {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  return {
    cas,
    ac,
    evict: (d: Parameters<LocalCas['pathOf']>[0]) => unlink(cas.pathOf(d)),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

casContract('local store', localRig);
acContract('local store', localRig);

describe('local CAS', () => {
  it('keeps blobs as read-only files in sharded directories, and the empty blob on disk', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const d = await cas.writeBlob(Buffer.from('read only please'));
    const p = cas.pathOf(d);
    assert.equal(p, join(dir.path, 'cas', 'objects', d.hash.slice(0, 2), d.hash));
    assert.equal((await stat(p)).mode & 0o777, 0o444);
    assert.equal((await stat(cas.pathOf(EMPTY_DIGEST))).size, 0);
    assert.deepEqual(await readdir(join(dir.path, 'cas', 'tmp')), []);
  });

  it('evicts least-recently-used blobs to stay under its quota', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path, quotaBytes: 10 * 1024 });
    const blobs = Array.from({ length: 10 }, () => randomBytes(1024));
    const digests = [];
    for (const b of blobs) digests.push(await cas.writeBlob(b));
    // Use the first blob so it becomes the most recently used.
    await cas.readBlob(digests[0] ?? EMPTY_DIGEST);
    const extra = await cas.writeBlob(randomBytes(2048)); // 12 KiB > 10 KiB quota
    assert.ok(cas.sizeBytes <= 10 * 1024, `size ${cas.sizeBytes} over quota`);
    const missing = new Set((await cas.findMissingBlobs([...digests, extra])).map(digestKey));
    assert.ok(missing.size >= 2, 'something was evicted');
    assert.ok(!missing.has(digestKey(extra)), 'the blob just written stays');
    assert.ok(!missing.has(digestKey(digests[0] ?? EMPTY_DIGEST)), 'the recently used blob stays');
    assert.ok(
      missing.has(digestKey(digests[1] ?? EMPTY_DIGEST)),
      'the oldest unused blob went first',
    );
    assert.deepEqual(await cas.findMissingBlobs([EMPTY_DIGEST]), []);
  });

  it('never evicts a pinned blob, and evicts it once released', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path, quotaBytes: 5000 });
    const input = await cas.writeBlob(randomBytes(1000)); // the oldest
    const release = cas.pin([input]);
    for (let i = 0; i < 10; i++) await cas.writeBlob(randomBytes(1000));
    assert.deepEqual(await cas.findMissingBlobs([input]), [], 'pinned: kept');
    release();
    release(); // twice is harmless
    for (let i = 0; i < 10; i++) await cas.writeBlob(randomBytes(1000));
    assert.equal((await cas.findMissingBlobs([input])).length, 1, 'released: evicted in turn');
  });

  it('restores its LRU index and total size when reopened', async () => {
    await using dir = await tempDir();
    const a = await LocalCas.open({ dir: dir.path });
    const written: Digest[] = [];
    for (let i = 0; i < 5; i++) written.push(await a.writeBlob(randomBytes(1000)));
    // Last use as the files record it: blob 0 the most recent, then 4, 3, 2, 1.
    const now = Date.now() / 1000;
    const lastUse = [now, now - 400, now - 300, now - 200, now - 100];
    written.forEach((d, i) => {
      utimesSync(a.pathOf(d), lastUse[i] ?? now, lastUse[i] ?? now);
    });
    const b = await LocalCas.open({ dir: dir.path, quotaBytes: 3500 });
    const before: number = b.sizeBytes;
    assert.equal(before, 5000);
    await b.writeBlob(randomBytes(100));
    const after: number = b.sizeBytes;
    assert.ok(after <= 3500, `size ${after} over quota`);
    // The least recently used went first (1 and 2); 0, used last, stayed.
    const missing = new Set((await b.findMissingBlobs(written)).map(digestKey));
    assert.deepEqual(
      written.map((d) => missing.has(digestKey(d))),
      [false, true, true, false, false],
    );
  });

  it('without a quota, opens without indexing every blob, and marks use as a full index would', async () => {
    await using dir = await tempDir();
    const a = await LocalCas.open({ dir: dir.path });
    const [old, recent, streamed, unused] = await a.writeBlobs(
      [1000, 2000, 3000, 4000].map((n) => randomBytes(n)),
    );
    if (old === undefined || recent === undefined || streamed === undefined || unused === undefined)
      throw new Error('bug: four blobs written');
    const now = Date.now() / 1000;
    const mtimes = new Map<Digest, number>([
      [old, now - 600],
      [recent, now - 10],
      [streamed, now - 600],
      [unused, now - 600],
    ]);
    for (const [d, t] of mtimes) utimesSync(a.pathOf(d), t, t);
    // The temporary files of a writer that is gone, and of one still running (this process).
    const shard = join(dir.path, 'cas', 'objects', 'ab');
    const dead = join(shard, '.tmp-2147483646-0011223344556677');
    const live = join(shard, `.tmp-${String(process.pid)}-8899aabbccddeeff`);
    await writeFile(dead, 'half a blob');
    await writeFile(live, 'a blob being written');

    const b = await LocalCas.open({ dir: dir.path });
    assert.equal(b.sizeBytes, 0, 'no blob was indexed as the store opened');
    // (One of the four blobs may share the shard: only temporary files are looked at.)
    assert.deepEqual(
      (await readdir(shard)).filter((n) => n.startsWith('.tmp-')),
      [basename(live)],
      "the dead writer's file is gone",
    );
    const mtimeOf = async (d: Digest): Promise<number> => (await stat(b.pathOf(d))).mtimeMs / 1000;

    assert.equal(b.has(old), true);
    assert.equal(b.has(recent), true);
    for await (const chunk of b.readStream(streamed)) assert.ok(chunk.byteLength > 0);
    // Used, and last marked over a minute ago: marked now. Marked 10 s ago: left.
    assert.ok((await mtimeOf(old)) >= now - 5, 'a blob last used 10 minutes ago is marked used');
    assert.ok((await mtimeOf(streamed)) >= now - 5, 'so is one read as a stream');
    assert.equal(
      Math.round(await mtimeOf(recent)),
      Math.round(now - 10),
      'one used 10 s ago is not',
    );
    assert.equal(Math.round(await mtimeOf(unused)), Math.round(now - 600), 'one not used is not');
    assert.equal(b.sizeBytes, 1000 + 2000 + 3000, 'the index holds the blobs used');
    // A store with a quota still indexes everything at once, in order of last use.
    const c = await LocalCas.open({ dir: dir.path, quotaBytes: 1 << 30 });
    assert.equal(c.sizeBytes, 1000 + 2000 + 3000 + 4000);
  });

  it('removes the temporary files of dead writers from the action cache as it opens, and only theirs', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    await LocalActionCache.open(dir.path, cas);
    const tmp = join(dir.path, 'ac', 'tmp');
    // A wrapper daemon writes its entries here too (direct-store.ts): one killed mid-write leaves this.
    await writeFile(join(tmp, '2147483646-0011223344556677'), 'half an entry');
    await writeFile(join(tmp, `${String(process.pid)}-8899aabbccddeeff`), 'being written');
    // Another live process's, and a name not of this layout: neither is touched.
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(join(tmp, `${String(other.pid)}-0123456789abcdef`), 'another writer');
      await writeFile(join(tmp, 'notes.txt'), 'not ours');
      await LocalActionCache.open(dir.path, cas);
      assert.deepEqual(
        (await readdir(tmp)).sort(),
        [
          `${String(other.pid)}-0123456789abcdef`,
          `${String(process.pid)}-8899aabbccddeeff`,
          'notes.txt',
        ].sort(),
      );
    } finally {
      other.kill();
    }
  });

  it("makes the action cache's 256 shards as it opens, and a shard removed since as an entry needs it", async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const ac = await LocalActionCache.open(dir.path, cas);
    const entries = join(dir.path, 'ac', 'entries');
    const shards = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
    assert.deepEqual((await readdir(entries)).sort(), shards);
    // An entry, once its shard is gone, both through the store and written directly.
    const result = create(ActionResultSchema, { exitCode: 0 });
    for (const [i, put] of [
      (d: Digest) => ac.updateActionResult(d, result),
      (d: Digest) => {
        putActionResultFile(ac.localDir, d, result);
        return Promise.resolve();
      },
    ].entries()) {
      const d = digestOf(Buffer.from(`action ${String(i)}`));
      await rm(join(entries, d.hash.slice(0, 2)), { recursive: true });
      await put(d);
      assert.equal((await ac.getActionResult(d))?.exitCode, 0);
    }
    // Opened again, it makes none: a removed shard stays removed until needed.
    await rm(join(entries, '00'), { recursive: true });
    await LocalActionCache.open(dir.path, cas);
    assert.equal((await readdir(entries)).length, 255);
  });

  it('treats a torn (truncated) blob file as missing and removes it', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const data = randomBytes(4096);
    const d = await cas.writeBlob(data);
    await chmod(cas.pathOf(d), 0o644);
    await truncate(cas.pathOf(d), 100);
    assert.deepEqual((await cas.findMissingBlobs([d])).map(digestKey), [digestKey(d)]);
    await assert.rejects(cas.readBlob(d), { code: 'cas/not-found' });
    // A fresh write repairs it.
    await cas.writeBlob(data);
    assert.ok(Buffer.from(await cas.readBlob(d)).equals(data));
  });

  it('answers a read with the wrong size as missing, and keeps the intact blob', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: dir.path });
    const data = randomBytes(4096);
    const d = await cas.writeBlob(data);
    for (const size of [d.size + 1, d.size - 1, 10]) {
      const wrong = parseDigest(d.hash, size);
      await assert.rejects(cas.readBlob(wrong), { code: 'cas/not-found' });
      await assert.rejects(
        (async () => {
          for await (const _ of cas.readStream(wrong)) {
            // drain
          }
        })(),
        { code: 'cas/not-found' },
      );
      assert.deepEqual((await cas.findMissingBlobs([wrong])).length, 1);
    }
    assert.ok(Buffer.from(await cas.readBlob(d)).equals(data), 'the blob is still there');
  });

  it('imports a file from disk by streaming it', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: join(dir.path, 'c') });
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir.path, 'big.bin'), data);
    const d = await cas.writeFile(join(dir.path, 'big.bin'));
    assert.equal(digestKey(d), digestKey(digestOf(data)));
    assert.ok(Buffer.from(await cas.readBlob(d)).equals(data));
  });

  it('imports small and empty files, writing nothing for a blob it has, and names a missing file', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: join(dir.path, 'c') });
    const { writeFile } = await import('node:fs/promises');
    // Either side of the size read in one synchronous call (64 KiB).
    for (const size of [0, 6, 64 * 1024, 64 * 1024 + 1]) {
      const data = randomBytes(size);
      const file = join(dir.path, `f${size}`);
      await writeFile(file, data);
      const d = await cas.writeFile(file);
      assert.equal(digestKey(d), digestKey(digestOf(data)), `${size} bytes`);
      assert.ok(Buffer.from(await cas.readBlob(d)).equals(data));
      const before = (await stat(cas.pathOf(d))).ino;
      assert.equal(digestKey(await cas.writeFile(file)), digestKey(d));
      assert.equal((await stat(cas.pathOf(d))).ino, before, 'the stored blob is left alone');
    }
    assert.equal(digestKey(await cas.writeFile(join(dir.path, 'f0'))), digestKey(EMPTY_DIGEST));
    await assert.rejects(cas.writeFile(join(dir.path, 'missing')), { code: 'cas/io' });
    assert.deepEqual(
      await readdir(join(dir.path, 'c', 'cas', 'tmp')),
      [],
      'no temporary file left',
    );
  });
});
