// Digests from outside are checked before anything trusts them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  DigestSchema,
  EMPTY_HASH,
  digestOf,
  parseDigest,
  parseDigestString,
  toPb,
} from '../../src/reapi/index.js';

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
