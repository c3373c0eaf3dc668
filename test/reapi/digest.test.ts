// Digests from outside are checked before anything trusts them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  DigestSchema,
  EMPTY_HASH,
  digestOf,
  digestOfFile,
  parseDigest,
  parseDigestString,
  toPb,
} from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('digest validation', () => {
  it('accepts well-formed digests, including the empty blob', () => {
    const d = digestOf(Buffer.from('hello\n'));
    assert.deepEqual(parseDigest(d.hash, d.size), d);
    assert.deepEqual(parseDigest(EMPTY_HASH, 0), digestOf(new Uint8Array(0)));
    assert.deepEqual(parseDigestString(`${d.hash}/${String(d.size)}`), d);
  });

  it('refuses malformed hashes, sizes, and sizes that cannot belong to the hash', () => {
    const h = digestOf(Buffer.from('x')).hash;
    for (const [hash, size, why] of [
      [h.toUpperCase(), 1, /64 lowercase hexadecimal/],
      [h.slice(1), 1, /64 lowercase hexadecimal/],
      [h, -1, /out of range/],
      [h, '1.5', /not an integer/],
      [h, 2 ** 60, /out of range/],
      [EMPTY_HASH, 3, /the empty hash with size 3/],
      [h, 0, /size 0 with a hash other than the empty blob's/],
    ] as const) {
      assert.throws(() => parseDigest(hash, size), { code: 'reapi/invalid-digest', message: why });
    }
    assert.throws(() => parseDigestString(`${h}-1`), { code: 'reapi/invalid-digest' });
  });

  it('toPb makes what create makes', () => {
    for (const d of [digestOf(Buffer.from('x')), digestOf(new Uint8Array(0))]) {
      const want = create(DigestSchema, { hash: d.hash, sizeBytes: BigInt(d.size) });
      assert.deepEqual(toPb(d), want);
      assert.deepEqual(Object.keys(toPb(d)), Object.keys(want));
      assert.deepEqual(toBinary(DigestSchema, toPb(d)), toBinary(DigestSchema, want));
    }
  });
});

describe('file digests', () => {
  it('hash a file as its bytes, read whole or streamed (around the 1 MiB chunk)', async () => {
    await using tmp = await tempDir();
    const MiB = 1 << 20;
    for (const size of [0, 1, 100, MiB - 1, MiB, MiB + 1, 3 * MiB + 5]) {
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i++) bytes[i] = (i * 31 + size) & 0xff;
      const path = join(tmp.path, `f${size}`);
      await writeFile(path, bytes);
      assert.deepEqual(await digestOfFile(path), digestOf(bytes), `size ${size}`);
    }
    await assert.rejects(digestOfFile(join(tmp.path, 'missing')), { code: 'ENOENT' });
  });
});
