// The Cas and ActionCache contracts on the local store, plus what only the
// local store promises: read-only files, quota with LRU eviction, torn files.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, stat, truncate, unlink, chmod } from 'node:fs/promises';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import {
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
