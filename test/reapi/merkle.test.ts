// The Merkle tree of a directory on disk: what each entry becomes, whichever
// way its file is hashed (small files read at once, large ones streamed, or
// every file through the caller's hashFile).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  DirectorySchema,
  digestKey,
  digestOf,
  digestOfFile,
  fromPb,
  treeFromDirectory,
  type Digest,
  type MerkleTree,
} from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';

/** The Directory message of `d` in `tree`, decoded. */
function dirOf(tree: MerkleTree, d: Digest): ReturnType<typeof fromBinary<typeof DirectorySchema>> {
  const entry = tree.directories.get(digestKey(d));
  assert.ok(entry, `directory ${d.hash} is in the tree`);
  return fromBinary(DirectorySchema, entry.bytes);
}

/** Sizes around the small-file limit (64 KiB) and the streaming chunk (1 MiB). */
const SIZES = [0, 5, 64 * 1024, 64 * 1024 + 1, 1024 * 1024 + 3];

function content(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + size) & 0xff;
  return b;
}

async function fixture(root: string): Promise<void> {
  await mkdir(join(root, 'sub', 'empty'), { recursive: true });
  for (const size of SIZES) await writeFile(join(root, `f${String(size)}`), content(size));
  await writeFile(join(root, 'sub', 'tool'), '#!/bin/sh\n');
  await chmod(join(root, 'sub', 'tool'), 0o755);
  await symlink('../f5', join(root, 'sub', 'link'));
  await symlink('missing/target', join(root, 'dangling'));
}

describe('treeFromDirectory', () => {
  it('hashes small and large files alike, with the executable bit, symlinks and empty directories', async () => {
    await using tmp = await tempDir();
    await fixture(tmp.path);
    const tree = await treeFromDirectory(tmp.path);

    const root = dirOf(tree, tree.root);
    assert.deepEqual(
      root.files.map((f) => [f.name, f.digest?.hash, Number(f.digest?.sizeBytes), f.isExecutable]),
      SIZES.map((s) => `f${String(s)}`)
        .sort()
        .map((name) => {
          const d = digestOf(content(Number(name.slice(1))));
          return [name, d.hash, d.size, false];
        }),
    );
    assert.deepEqual(
      root.symlinks.map((l) => [l.name, l.target]),
      [['dangling', 'missing/target']],
    );
    assert.deepEqual(
      root.directories.map((d) => d.name),
      ['sub'],
    );
    const subDigest = root.directories[0]?.digest;
    assert.ok(subDigest);
    const sub = dirOf(tree, fromPb(subDigest));
    assert.deepEqual(
      sub.files.map((f) => [f.name, f.digest?.hash, f.isExecutable]),
      [['tool', digestOf(Buffer.from('#!/bin/sh\n')).hash, true]],
    );
    assert.deepEqual(
      sub.symlinks.map((l) => [l.name, l.target]),
      [['link', '../f5']],
    );
    assert.deepEqual(
      sub.directories.map((d) => d.name),
      ['empty'],
    );
    const emptyDigest = sub.directories[0]?.digest;
    assert.ok(emptyDigest);
    const empty = dirOf(tree, fromPb(emptyDigest));
    assert.equal(empty.files.length + empty.directories.length + empty.symlinks.length, 0);

    // Every file's digest is in `files`, with a path to read it from.
    for (const size of SIZES) {
      const path = join(tmp.path, `f${String(size)}`);
      const d = await digestOfFile(path);
      assert.equal(tree.files.get(digestKey(d))?.path, path);
    }
  });

  it('hashes every file through hashFile when one is given, small ones too', async () => {
    await using tmp = await tempDir();
    await fixture(tmp.path);
    const hashed: string[] = [];
    const tree = await treeFromDirectory(tmp.path, {
      hashFile: async (path) => {
        hashed.push(path.slice(tmp.path.length + 1));
        return digestOfFile(path);
      },
    });
    assert.deepEqual(hashed.sort(), [...SIZES.map((s) => `f${String(s)}`), 'sub/tool'].sort());
    assert.equal(tree.root.hash, (await treeFromDirectory(tmp.path)).root.hash);
  });
});
