// Golden test: our canonical encoding reproduces, byte for byte, every vector
// produced by the reference protobuf implementation (shared/test-vectors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import {
  ActionResultSchema,
  ActionSchema,
  CommandSchema,
  DirectorySchema,
  TreeSchema,
  canonicalDirectory,
  compareNames,
  digestMessage,
  digestOf,
} from '../../src/reapi/index.js';
import { sharedVectors } from '../helpers/paths.js';

interface Vector {
  name: string;
  type: string;
  json: JsonValue | null;
  bytes_hex: string;
  digest: { hash: string; size_bytes: number };
}

const file = join(sharedVectors, 'reapi-canonical.json');
const vectors = (JSON.parse(readFileSync(file, 'utf8')) as { vectors: Vector[] }).vectors;

const schemas: Record<string, DescMessage> = {
  'build.bazel.remote.execution.v2.Directory': DirectorySchema,
  'build.bazel.remote.execution.v2.Command': CommandSchema,
  'build.bazel.remote.execution.v2.Action': ActionSchema,
  'build.bazel.remote.execution.v2.Tree': TreeSchema,
  'build.bazel.remote.execution.v2.ActionResult': ActionResultSchema,
};

test('the vector file covers every message type we encode', () => {
  assert.ok(vectors.length >= 10);
  for (const t of Object.keys(schemas))
    assert.ok(
      vectors.some((v) => v.type === t),
      t,
    );
});

for (const v of vectors) {
  test(`vector ${v.name}`, () => {
    if (v.type === 'blob') {
      const d = digestOf(Buffer.from(v.bytes_hex, 'hex'));
      assert.equal(d.hash, v.digest.hash);
      assert.equal(d.size, v.digest.size_bytes);
      return;
    }
    const schema = schemas[v.type];
    assert.ok(schema, `no schema for ${v.type}`);
    assert.ok(v.json !== null);
    const msg = fromJson(schema, v.json);
    const { bytes, digest } = digestMessage(schema, msg);
    assert.equal(Buffer.from(bytes).toString('hex'), v.bytes_hex);
    assert.equal(digest.hash, v.digest.hash);
    assert.equal(digest.size, v.digest.size_bytes);
  });
}

test('canonicalDirectory sorts entries so that any input order gives the vector digest', () => {
  const v = vectors.find((x) => x.name === 'directory-root');
  assert.ok(v?.json);
  const msg = fromJson(DirectorySchema, v.json);
  msg.files.reverse();
  const unsorted = digestMessage(DirectorySchema, msg).digest;
  assert.notEqual(unsorted.hash, v.digest.hash);
  assert.equal(digestMessage(DirectorySchema, canonicalDirectory(msg)).digest.hash, v.digest.hash);
});

test('compareNames orders names as their UTF-8 bytes, surrogates and lone surrogates included', () => {
  // Code units chosen where UTF-16 and UTF-8 orders part: around the
  // surrogates (astral characters sort above U+E000-U+FFFF in UTF-8, below
  // them in UTF-16), plus ASCII and lone surrogates.
  const units = [
    0x41, 0x61, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd,
    0xffff,
  ];
  let seed = 12345;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const word = (): string => {
    const len = next(5);
    let s = '';
    for (let i = 0; i < len; i++) {
      const u = units[next(units.length)] ?? 0x41;
      // A high surrogate is usually followed by its low half (a real astral character).
      s += String.fromCharCode(u) + (u >= 0xd800 && u <= 0xdbff && next(4) > 0 ? '\udc00' : '');
    }
    return s;
  };
  const sign = (n: number): number => (n < 0 ? -1 : n > 0 ? 1 : 0);
  let checked = 0;
  for (let i = 0; i < 20_000; i++) {
    const a = word();
    const b = next(4) === 0 ? a + word() : word();
    const bytes = Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
    assert.equal(sign(compareNames(a, b)), bytes, JSON.stringify([a, b]));
    assert.equal(sign(compareNames(b, a)), sign(-bytes), JSON.stringify([b, a]));
    checked++;
  }
  assert.equal(checked, 20_000);
  // The case the code units alone get wrong: U+10000 sorts after U+FFFD in UTF-8.
  assert.equal(sign(compareNames('\ud800\udc00', '\ufffd')), 1);
});
