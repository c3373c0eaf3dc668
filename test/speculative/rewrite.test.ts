// Rewriting input trees: edited on their bytes or as decoded messages, the
// result is the tree buildTree makes from the same files with their new
// digests (the tree a wrapper would build), and refusals are the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { DirectoryReader, LocalCas, type Cas } from '../../src/cas/index.js';
import {
  buildTree,
  DirectorySchema,
  digestOf,
  toPb,
  type Digest,
  type EncodedDirectory,
  type TreeEntry,
} from '../../src/reapi/index.js';
import { rewriteTree } from '../../src/speculative/rewrite.js';
import { isSpecbuildError } from '../../src/core/index.js';
import { rng } from '../helpers/random-directories.js';
import { tempDir } from '../helpers/tmp.js';

/** A reader that never takes the bytes path: the reference. */
class DecodingReader extends DirectoryReader {
  override encoded(): Promise<EncodedDirectory | undefined> {
    return Promise.resolve(undefined);
  }
}

/** Random files (with some executables and symlinks) under a few levels of directories. */
function randomEntries(r: () => number, n: number): TreeEntry[] {
  const names = ['a', 'b', 'c.h', 'd.c', 'include', 'Z', 'z-1', '_x'];
  const pick = (): string => names[Math.floor(r() * names.length)] as string;
  const entries = new Map<string, TreeEntry>();
  const dirs = new Set<string>();
  for (let i = 0; i < n; i++) {
    const depth = Math.floor(r() * 4);
    const parts = Array.from({ length: depth }, pick);
    // A file name never also a directory: directories get a suffix.
    const dir = parts.map((p) => `${p}.d`).join('/');
    const path = dir === '' ? `${pick()}${i}` : `${dir}/${pick()}${i}`;
    dirs.add(dir);
    entries.set(
      path,
      r() < 0.1
        ? { kind: 'symlink', path, target: `../${pick()}` }
        : {
            kind: 'file',
            path,
            digest: digestOf(Buffer.from(`${path} ${r()}`)),
            executable: r() < 0.2,
          },
    );
  }
  return [...entries.values()];
}

async function store(cas: Cas, entries: TreeEntry[]): Promise<Digest> {
  const t = buildTree(entries);
  await cas.writeBlobs([...t.directories.values()].map((d) => d.bytes));
  return t.root;
}

test('rewritten trees are the trees built from the new files, on bytes and decoded alike', async () => {
  await using tmp = await tempDir();
  const cas = await LocalCas.open({ dir: join(tmp.path, 'cas') });
  const r = rng(6);
  for (let i = 0; i < 60; i++) {
    const entries = randomEntries(r, 5 + Math.floor(r() * 200));
    const root = await store(cas, entries);
    const replace = new Map<string, Digest>();
    for (const e of entries)
      if (e.kind === 'file' && r() < 0.3)
        replace.set(
          e.path,
          r() < 0.1 ? digestOf(new Uint8Array(0)) : digestOf(Buffer.from(`new ${r()}`)),
        );
    const want = buildTree(
      entries.map((e) => {
        const d = replace.get(e.path);
        return d === undefined || e.kind !== 'file' ? e : { ...e, digest: d };
      }),
    );
    const onBytes = await rewriteTree(new DirectoryReader(cas), root, replace);
    const decoded = await rewriteTree(new DecodingReader(cas), root, replace);
    assert.equal(onBytes.root.hash, want.root.hash, `case ${i}`);
    assert.equal(decoded.root.hash, want.root.hash, `case ${i}`);
    const hex = (bs: Uint8Array[]): string[] => bs.map((b) => Buffer.from(b).toString('hex'));
    assert.deepEqual(hex(onBytes.blobs), hex(decoded.blobs), `case ${i}`);
    for (const b of onBytes.blobs)
      assert.ok(want.directories.has(`${digestOf(b).hash}/${b.length}`));
  }
});

test('a Directory stored in another encoding is rewritten canonically', async () => {
  await using tmp = await tempDir();
  const cas = await LocalCas.open({ dir: join(tmp.path, 'cas') });
  const old = digestOf(Buffer.from('old'));
  const nu = digestOf(Buffer.from('new'));
  // is_executable false written out: valid, not what encodeDirectory writes.
  const leaf = Buffer.from(
    toBinary(
      DirectorySchema,
      create(DirectorySchema, { files: [{ name: 'x.h', digest: toPb(old) }] }),
    ),
  );
  // The one FileNode runs to the end: its length byte grows by the 2 added.
  const explicit = Buffer.concat([leaf, Buffer.from([0x20, 0x00])]);
  explicit[1] = (leaf[1] as number) + 2;
  const leafDigest = await cas.writeBlob(explicit);
  const root = await cas.writeBlob(
    toBinary(
      DirectorySchema,
      create(DirectorySchema, { directories: [{ name: 'inc', digest: toPb(leafDigest) }] }),
    ),
  );
  const out = await rewriteTree(new DirectoryReader(cas), root, new Map([['inc/x.h', nu]]));
  const want = buildTree([{ kind: 'file', path: 'inc/x.h', digest: nu, executable: false }]);
  assert.equal(out.root.hash, want.root.hash);
});

test('a path not in the tree is refused as before', async () => {
  await using tmp = await tempDir();
  const cas = await LocalCas.open({ dir: join(tmp.path, 'cas') });
  const d = digestOf(Buffer.from('x'));
  const root = await store(cas, [
    { kind: 'file', path: 'a/b/x.h', digest: d, executable: false },
    { kind: 'file', path: 'a/y.h', digest: d, executable: true },
  ]);
  for (const path of ['a/b/nope.h', 'a/nope/x.h', 'nope.h', 'a/b', 'a/y.h/z']) {
    const refusal = async (reader: DirectoryReader): Promise<string> => {
      try {
        await rewriteTree(
          reader,
          root,
          new Map([
            [path, d],
            ['a/y.h', d],
          ]),
        );
        return 'accepted';
      } catch (e) {
        assert.ok(isSpecbuildError(e), String(e));
        return `${e.code}: ${e.message}`;
      }
    };
    const got = await refusal(new DirectoryReader(cas));
    assert.match(got, /^reapi\/invalid-path: /, path);
    assert.equal(got, await refusal(new DecodingReader(cas)), path);
  }
});
