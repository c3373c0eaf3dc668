// The expanded size of a tree comes from its unique Directories alone: a
// subtree named twice counts twice, however large the expansion.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary } from '@bufbuild/protobuf';
import { expandedSize, SIZE_SATURATED } from '../../src/cas/index.js';
import {
  DirectorySchema,
  digestKey,
  digestMessage,
  digestOf,
  toPb,
} from '../../src/reapi/index.js';
import { doublingTree } from '../helpers/trees.js';

describe('expandedSize', () => {
  it('counts a shared subtree once per place it appears', () => {
    const file = toPb(digestOf(Buffer.from('x')));
    const sub = digestMessage(
      DirectorySchema,
      create(DirectorySchema, {
        files: [
          { name: 'f', digest: file },
          { name: 'g', digest: file },
        ],
        symlinks: [{ name: 'l', target: 'f' }],
      }),
    );
    const root = digestMessage(
      DirectorySchema,
      create(DirectorySchema, {
        files: [{ name: 'top', digest: file }],
        directories: [
          { name: 'a', digest: toPb(sub.digest) },
          { name: 'b', digest: toPb(sub.digest) },
          { name: 'c', digest: toPb(sub.digest) },
        ],
      }),
    );
    const dirs = new Map([
      [digestKey(sub.digest), fromBinary(DirectorySchema, sub.bytes)],
      [digestKey(root.digest), fromBinary(DirectorySchema, root.bytes)],
    ]);
    // top, a, b, c, and 3 entries in each of a, b, c.
    assert.equal(expandedSize(root.digest, dirs), 4 + 3 * 3);
    assert.equal(expandedSize(sub.digest, dirs), 3);
  });

  it('sizes 31 doubling levels (2^31 - 2 entries) exactly from 31 Directories', () => {
    const { root, directories } = doublingTree(30);
    assert.equal(directories.size, 31);
    assert.equal(expandedSize(root, directories), 2 ** 31 - 2);
  });

  it('saturates instead of overflowing, on a chain too deep for recursion', () => {
    const { root, directories } = doublingTree(20_000);
    assert.equal(expandedSize(root, directories), SIZE_SATURATED);
  });

  it('counts a Directory it does not have as empty', () => {
    const { root, directories } = doublingTree(3);
    const leaf = [...directories.entries()].find(([, d]) => d.directories.length === 0);
    assert.ok(leaf);
    directories.delete(leaf[0]);
    assert.equal(expandedSize(root, directories), 2 + 4 + 8);
  });

  it('refuses a Directory that contains itself (only a corrupt store can hold one)', () => {
    const self = digestOf(Buffer.from('pretend this is a Directory'));
    const loop = create(DirectorySchema, { directories: [{ name: 'again', digest: toPb(self) }] });
    assert.throws(() => expandedSize(self, new Map([[digestKey(self), loop]])), {
      code: 'reapi/invalid-directory',
    });
  });
});
