// The contract every Cas implementation keeps, run against the local store
// and against the remote client talking to a real server (TCP and unix socket).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Cas } from '../../src/cas/index.js';
import { digestKey, digestOf, EMPTY_DIGEST, parseDigest } from '../../src/reapi/index.js';

export interface CasRig extends AsyncDisposable {
  cas: Cas;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunks(data: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) {
    await Promise.resolve();
    yield data.subarray(i, i + size);
  }
}

const absent = parseDigest('0'.repeat(64), 5);

export function casContract(name: string, makeRig: () => Promise<CasRig>): void {
  describe(`Cas contract: ${name}`, () => {
    it('stores a blob and reads it back by digest', async () => {
      await using rig = await makeRig();
      const data = Buffer.from('hello\n');
      const d = await rig.cas.writeBlob(data);
      assert.equal(d.hash, '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
      assert.equal(d.size, 6);
      assert.deepEqual(Buffer.from(await rig.cas.readBlob(d)), data);
    });

    it('reports exactly the missing digests', async () => {
      await using rig = await makeRig();
      const present = await rig.cas.writeBlob(Buffer.from('present'));
      const missing = await rig.cas.findMissingBlobs([present, absent, EMPTY_DIGEST]);
      assert.deepEqual(missing.map(digestKey), [digestKey(absent)]);
    });

    it('always holds the empty blob', async () => {
      await using rig = await makeRig();
      assert.deepEqual(await rig.cas.findMissingBlobs([EMPTY_DIGEST]), []);
      assert.equal((await rig.cas.readBlob(EMPTY_DIGEST)).byteLength, 0);
      assert.equal((await collect(rig.cas.readStream(EMPTY_DIGEST))).byteLength, 0);
    });

    it('fails with cas/not-found for an absent blob', async () => {
      await using rig = await makeRig();
      await assert.rejects(rig.cas.readBlob(absent), { code: 'cas/not-found' });
      await assert.rejects(collect(rig.cas.readStream(absent)), { code: 'cas/not-found' });
      const got = await rig.cas.readBlobs([absent]);
      assert.equal(got.size, 0);
    });

    it('writes and reads many blobs in one call', async () => {
      await using rig = await makeRig();
      const blobs = Array.from({ length: 300 }, (_, i) => Buffer.from(`blob number ${i}`));
      const digests = await rig.cas.writeBlobs(blobs);
      assert.equal(digests.length, 300);
      const got = await rig.cas.readBlobs([...digests, absent]);
      assert.equal(got.size, 300);
      for (let i = 0; i < 300; i++) {
        const d = digests[i];
        assert.ok(d);
        assert.deepEqual(Buffer.from(got.get(digestKey(d)) ?? []), blobs[i]);
      }
    });

    it('splits batches larger than one call may carry', async () => {
      await using rig = await makeRig();
      // 12 blobs of 700 KiB: over 8 MiB in all, more than any single batch.
      const blobs = Array.from({ length: 12 }, () => randomBytes(700 * 1024));
      const digests = await rig.cas.writeBlobs(blobs);
      assert.deepEqual(await rig.cas.findMissingBlobs(digests), []);
      const got = await rig.cas.readBlobs(digests);
      assert.equal(got.size, 12);
      for (const [i, d] of digests.entries())
        assert.ok(Buffer.from(got.get(digestKey(d)) ?? []).equals(blobs[i] ?? Buffer.alloc(0)));
    });

    it('streams a blob larger than a gRPC message both ways, with offset and limit', async () => {
      await using rig = await makeRig();
      const data = randomBytes(9 * 1024 * 1024 + 123);
      const d = digestOf(data);
      await rig.cas.writeStream(d, chunks(data, 300 * 1024));
      assert.deepEqual(await rig.cas.findMissingBlobs([d]), []);
      const back = await collect(rig.cas.readStream(d));
      assert.ok(back.equals(data));
      const part = await collect(rig.cas.readStream(d, { offset: 5_000_000, limit: 1_000_000 }));
      assert.ok(part.equals(data.subarray(5_000_000, 6_000_000)));
      const tail = await collect(rig.cas.readStream(d, { offset: data.byteLength - 10 }));
      assert.ok(tail.equals(data.subarray(data.byteLength - 10)));
      assert.ok(Buffer.from(await rig.cas.readBlob(d)).equals(data));
    });

    it('writes a large in-memory blob', async () => {
      await using rig = await makeRig();
      const data = randomBytes(6 * 1024 * 1024);
      const [d] = await rig.cas.writeBlobs([data, Buffer.from('small')]);
      assert.ok(d);
      assert.ok(Buffer.from(await rig.cas.readBlob(d)).equals(data));
    });

    it('rejects streamed data that does not hash to the digest, storing nothing', async () => {
      await using rig = await makeRig();
      const data = Buffer.from('the real content');
      const wrong = digestOf(Buffer.from('something else!!'));
      assert.equal(wrong.size, data.byteLength);
      await assert.rejects(rig.cas.writeStream(wrong, chunks(data, 4)), (e: { code?: string }) =>
        ['cas/digest-mismatch', 'remote/invalid-argument'].includes(e.code ?? ''),
      );
      assert.deepEqual((await rig.cas.findMissingBlobs([wrong])).map(digestKey), [
        digestKey(wrong),
      ]);
      const tooLong = digestOf(data.subarray(0, 5));
      await assert.rejects(rig.cas.writeStream(tooLong, chunks(data, 4)));
      assert.equal((await rig.cas.findMissingBlobs([tooLong])).length, 1);
    });

    it('accepts the same blob written concurrently many times', async () => {
      await using rig = await makeRig();
      const data = randomBytes(256 * 1024);
      const d = digestOf(data);
      await Promise.all([
        ...Array.from({ length: 8 }, () => rig.cas.writeBlob(data)),
        ...Array.from({ length: 4 }, () => rig.cas.writeStream(d, chunks(data, 64 * 1024))),
      ]);
      assert.ok(Buffer.from(await rig.cas.readBlob(d)).equals(data));
    });

    it('rejects reads outside the blob', async () => {
      await using rig = await makeRig();
      const d = await rig.cas.writeBlob(Buffer.from('0123456789'));
      await assert.rejects(collect(rig.cas.readStream(d, { offset: 11 })));
      assert.equal((await collect(rig.cas.readStream(d, { offset: 10 }))).byteLength, 0);
    });
  });
}
