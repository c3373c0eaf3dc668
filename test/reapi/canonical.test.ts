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
