// buildTree remembers the Directory messages it encoded lately, by their
// entries: on random trees, built once and then again (from that memory),
// it returns exactly the messages an independent encoding gives, and trees
// that differ in one field get different digests.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  buildTree,
  compareNames,
  digestKey,
  digestOf,
  DirectorySchema,
  toPb,
  type Digest,
  type TreeEntry,
} from '../../src/reapi/index.js';
import { rng } from '../helpers/random-directories.js';

interface Dir {
  files: Map<string, { digest: Digest; executable: boolean }>;
  dirs: Map<string, Dir>;
  links: Map<string, string>;
}

// Names that look like the memory's own key syntax, and other odd ones.
const NAMES = ['a', 'b', 'f1:a', '1:', 'd', 'x;', 'é', 'a\nb', 'l2:ab', '0', 'aa', 'A'];
const BLOBS = ['', 'x', 'int main;', 'y'.repeat(300)].map((s) => digestOf(Buffer.from(s)));

function randomDir(next: () => number, depth: number): Dir {
  const d: Dir = { files: new Map(), dirs: new Map(), links: new Map() };
  const n = Math.floor(next() * 5);
  for (let i = 0; i < n; i++) {
    const name = NAMES[Math.floor(next() * NAMES.length)] ?? 'a';
    if (d.files.has(name) || d.dirs.has(name) || d.links.has(name)) continue;
    const kind = next();
    if (kind < 0.5) {
      const digest = BLOBS[Math.floor(next() * BLOBS.length)] ?? BLOBS[0];
      if (digest === undefined) throw new Error('bug');
      d.files.set(name, { digest, executable: next() < 0.3 });
    } else if (kind < 0.8 && depth > 0) d.dirs.set(name, randomDir(next, depth - 1));
    else d.links.set(name, NAMES[Math.floor(next() * NAMES.length)] ?? '');
  }
  return d;
}

function entriesOf(d: Dir, prefix = ''): TreeEntry[] {
  const at = (name: string): string => (prefix === '' ? name : `${prefix}/${name}`);
  const out: TreeEntry[] = [{ kind: 'dir', path: prefix }];
  for (const [name, f] of d.files) out.push({ kind: 'file', path: at(name), ...f });
  for (const [name, target] of d.links) out.push({ kind: 'symlink', path: at(name), target });
  for (const [name, sub] of d.dirs) out.push(...entriesOf(sub, at(name)));
  return out;
}

/** The tree's messages by the plain route: protobuf-es builds and encodes every one. */
function reference(d: Dir, into: Map<string, Uint8Array>): Digest {
  const sorted = <T>(m: Map<string, T>): [string, T][] =>
    [...m].sort(([a], [b]) => compareNames(a, b));
  const bytes = toBinary(
    DirectorySchema,
    create(DirectorySchema, {
      files: sorted(d.files).map(([name, f]) => ({
        name,
        digest: toPb(f.digest),
        isExecutable: f.executable,
      })),
      directories: sorted(d.dirs).map(([name, sub]) => ({
        name,
        digest: toPb(reference(sub, into)),
      })),
      symlinks: sorted(d.links).map(([name, target]) => ({ name, target })),
    }),
  );
  const digest = digestOf(bytes);
  into.set(digestKey(digest), bytes);
  return digest;
}

function built(entries: TreeEntry[]): { root: string; dirs: Map<string, Uint8Array> } {
  const t = buildTree(entries);
  const dirs = new Map<string, Uint8Array>();
  for (const [k, v] of t.directories) {
    assert.equal(digestKey(digestOf(v.bytes)), k);
    assert.equal(digestKey(v.digest), k);
    dirs.set(k, Buffer.from(v.bytes));
  }
  return { root: digestKey(t.root), dirs };
}

describe('buildTree', () => {
  it('gives the messages an independent encoding gives, built anew and from its memory', () => {
    const next = rng(20261129);
    for (let i = 0; i < 400; i++) {
      const tree = randomDir(next, 3);
      const want = new Map<string, Uint8Array>();
      const root = digestKey(reference(tree, want));
      const wanted = new Map([...want].map(([k, v]) => [k, Buffer.from(v)]));
      // The first build may or may not meet remembered directories; the second meets all of them.
      for (let round = 0; round < 2; round++) {
        const got = built(entriesOf(tree));
        assert.equal(got.root, root, `tree ${String(i)} round ${String(round)}`);
        assert.deepEqual(got.dirs, wanted);
      }
    }
  });

  it('tells apart directories that differ in one field', () => {
    const a = BLOBS[1];
    const b = BLOBS[2];
    if (a === undefined || b === undefined) throw new Error('bug');
    const variants: TreeEntry[][] = [
      [{ kind: 'file', path: 'x/f', digest: a, executable: false }],
      [{ kind: 'file', path: 'x/f', digest: a, executable: true }],
      [{ kind: 'file', path: 'x/f', digest: b, executable: false }],
      [{ kind: 'file', path: 'x/g', digest: a, executable: false }],
      [{ kind: 'symlink', path: 'x/f', target: 'a' }],
      [{ kind: 'symlink', path: 'x/f', target: 'b' }],
      // A name and a target that spell the other's key if lengths were not counted.
      [{ kind: 'symlink', path: 'x/f1:a', target: '1:b' }],
      [{ kind: 'symlink', path: 'x/f1:a1', target: ':b' }],
      // A link name's length, and two links against one whose target spells the second.
      [{ kind: 'symlink', path: 'x/x', target: '2:ab' }],
      [{ kind: 'symlink', path: 'x/x4:', target: 'ab' }],
      [{ kind: 'symlink', path: 'x/a', target: 'bl1:c1:d' }],
      [
        { kind: 'symlink', path: 'x/a', target: 'b' },
        { kind: 'symlink', path: 'x/c', target: 'd' },
      ],
      [{ kind: 'dir', path: 'x/f' }],
      [{ kind: 'dir', path: 'x/f/e' }],
      [
        { kind: 'file', path: 'x/f', digest: a, executable: false },
        { kind: 'file', path: 'x/g', digest: a, executable: false },
      ],
    ];
    const roots = variants.map((v) => built(v).root);
    assert.equal(new Set(roots).size, variants.length);
    // And each again, from memory, the same.
    assert.deepEqual(
      variants.map((v) => built(v).root),
      roots,
    );
  });
});
