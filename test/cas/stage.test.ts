// Trees round-trip between disk and CAS, and a hostile Directory received from
// the network can never make staging write outside the staging directory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  writeFile,
  chmod,
} from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { LocalCas, mkdirWritable, stageTree, type Cas } from '../../src/cas/index.js';
import {
  DirectorySchema,
  digestMessage,
  toPb,
  treeFromDirectory,
  type Digest,
  type Directory,
} from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';
import { uploadTree } from '../helpers/actions.js';
import { startFixture } from '../helpers/server-fixture.js';

/** Stores a Directory exactly as given (unsorted, invalid...) and returns its digest. */
async function rawDir(cas: Cas, dir: Directory): Promise<Digest> {
  const { bytes } = digestMessage(DirectorySchema, dir);
  return cas.writeBlob(bytes);
}

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const n of (await readdir(d)).sort()) {
      out.push(rel + n);
      if ((await lstat(join(d, n))).isDirectory()) await walk(join(d, n), `${rel}${n}/`);
    }
  };
  await walk(dir, '');
  return out;
}

describe('Merkle trees and staging', () => {
  it('builds a tree from disk and stages an identical copy (files, exec bit, symlinks, empty dirs)', async () => {
    await using tmp = await tempDir();
    const src = join(tmp.path, 'src');
    await mkdir(join(src, 'include', 'sub'), { recursive: true });
    await mkdir(join(src, 'empty'));
    await writeFile(join(src, 'a.c'), 'int a(void) { return 1; }\n');
    await writeFile(join(src, 'run.sh'), '#!/bin/sh\necho run\n');
    await chmod(join(src, 'run.sh'), 0o755);
    await writeFile(join(src, 'include', 'dep.h'), '#define DEP 2\n');
    await writeFile(join(src, 'include', 'sub', 'same.h'), '#define DEP 2\n');
    await symlink('a.c', join(src, 'link.c'));
    const tree = await treeFromDirectory(src);
    assert.equal(tree.directories.size, 4);
    assert.equal(tree.files.size, 3, 'identical contents are one blob');

    const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
    await uploadTree(cas, tree);
    const dest = join(tmp.path, 'dest');
    await mkdir(dest);
    const stats = await stageTree(cas, tree.root, dest, { localPath: (d) => cas.pathOf(d) });
    assert.deepEqual(await listAll(dest), await listAll(src));
    assert.equal(await readFile(join(dest, 'include', 'sub', 'same.h'), 'utf8'), '#define DEP 2\n');
    assert.equal((await stat(join(dest, 'run.sh'))).mode & 0o111, 0o111);
    assert.equal((await stat(join(dest, 'a.c'))).mode & 0o111, 0);
    assert.equal(await readlink(join(dest, 'link.c')), 'a.c');
    assert.equal(stats.linked, 3, 'every non-executable file is hard-linked from the CAS');
    // The staged copy hashes to the same root.
    assert.equal((await treeFromDirectory(dest)).root.hash, tree.root.hash);
  });

  it('stages a tree too big for the synchronous path identically (links, copies, symlinks)', async () => {
    await using tmp = await tempDir();
    const src = join(tmp.path, 'src');
    // 2,600 entries: over the 2,000 that are laid out synchronously.
    for (let d = 0; d < 26; d++) {
      const dir = join(src, `d${String(d)}`);
      await mkdir(dir, { recursive: true });
      for (let f = 0; f < 98; f++)
        await writeFile(join(dir, `f${String(f)}.h`), `#define F${String(d)}_${String(f)}\n`);
      await writeFile(join(dir, 'tool'), `#!/bin/sh\necho ${String(d)}\n`);
      await chmod(join(dir, 'tool'), 0o755);
      await symlink('f0.h', join(dir, 'first.h'));
    }
    const tree = await treeFromDirectory(src);
    const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
    await uploadTree(cas, tree);
    const dest = join(tmp.path, 'dest');
    await mkdir(dest);
    const stats = await stageTree(cas, tree.root, dest, { localPath: (d) => cas.pathOf(d) });
    assert.equal(stats.files, 26 * 99);
    assert.equal(stats.linked, 26 * 98, 'executables are copied, never linked');
    assert.equal(stats.symlinks, 26);
    assert.deepEqual(await listAll(dest), await listAll(src));
    assert.equal((await stat(join(dest, 'd7', 'tool'))).mode & 0o111, 0o111);
    assert.equal((await treeFromDirectory(dest)).root.hash, tree.root.hash);
  });

  it('makes every staged directory 0777 with writableDirectories, whatever the umask, and leaves files alone', async () => {
    await using tmp = await tempDir();
    const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
    // A small tree (synchronous path) and one over 2,000 entries (asynchronous path).
    for (const files of [1, 2100]) {
      const src = join(tmp.path, `src-${String(files)}`);
      await mkdir(join(src, 'a', 'b'), { recursive: true });
      for (let f = 0; f < files; f++) await writeFile(join(src, 'a', 'b', `f${String(f)}`), 'x');
      const tree = await treeFromDirectory(src);
      await uploadTree(cas, tree);
      const dest = join(tmp.path, `dest-${String(files)}`);
      await mkdir(dest);
      await stageTree(cas, tree.root, dest, {
        localPath: (d) => cas.pathOf(d),
        writableDirectories: true,
      });
      for (const d of [dest, join(dest, 'a'), join(dest, 'a', 'b')]) {
        assert.equal((await stat(d)).mode & 0o777, 0o777, d);
      }
      assert.equal((await stat(join(dest, 'a', 'b', 'f0'))).mode & 0o777, 0o444);
    }
  });

  it('mkdirWritable makes missing directories 0777 but never follows a symlink of the tree', async () => {
    await using tmp = await tempDir();
    const dest = join(tmp.path, 'dest');
    const outside = join(tmp.path, 'outside');
    await mkdir(join(dest, 'have'), { recursive: true });
    await chmod(join(dest, 'have'), 0o750);
    await mkdir(outside);
    await symlink(outside, join(dest, 'esc'));
    await mkdirWritable(dest, 'have/x/y');
    assert.equal((await stat(join(dest, 'have', 'x'))).mode & 0o777, 0o777);
    assert.equal((await stat(join(dest, 'have', 'x', 'y'))).mode & 0o777, 0o777);
    assert.equal((await stat(join(dest, 'have'))).mode & 0o777, 0o750, 'existing ones are left');
    await mkdirWritable(dest, 'esc/made');
    assert.deepEqual(await readdir(outside), []);
  });

  it('gives the same root digest whatever the order files were created in', async () => {
    await using tmp = await tempDir();
    for (const [name, order] of [
      ['x', ['b', 'a', 'c']],
      ['y', ['c', 'b', 'a']],
    ] as const) {
      await mkdir(join(tmp.path, name));
      for (const f of order) await writeFile(join(tmp.path, name, f), f);
    }
    const x = await treeFromDirectory(join(tmp.path, 'x'));
    const y = await treeFromDirectory(join(tmp.path, 'y'));
    assert.equal(x.root.hash, y.root.hash);
  });

  it('stages a tree fetched through the remote client', async () => {
    await using f = await startFixture('unix');
    await using tmp = await tempDir();
    await mkdir(join(tmp.path, 'src', 'd'), { recursive: true });
    await writeFile(join(tmp.path, 'src', 'd', 'f'), 'remote file');
    const tree = await treeFromDirectory(join(tmp.path, 'src'));
    await uploadTree(f.endpoint.cas, tree);
    await mkdir(join(tmp.path, 'out'));
    await stageTree(f.endpoint.cas, tree.root, join(tmp.path, 'out'));
    assert.equal(await readFile(join(tmp.path, 'out', 'd', 'f'), 'utf8'), 'remote file');
  });

  describe('hostile directories', () => {
    const cases: [string, (file: ReturnType<typeof fileNode>) => Directory][] = [
      ['a ".." file', (f) => create(DirectorySchema, { files: [{ ...f, name: '..' }] })],
      [
        'a "." directory',
        (f) =>
          create(DirectorySchema, { files: [f], directories: [{ name: '.', digest: f.digest }] }),
      ],
      ['a name with a slash', (f) => create(DirectorySchema, { files: [{ ...f, name: 'a/b' }] })],
      [
        'an absolute name',
        (f) => create(DirectorySchema, { files: [{ ...f, name: '/etc/passwd' }] }),
      ],
      ['an empty name', (f) => create(DirectorySchema, { files: [{ ...f, name: '' }] })],
      ['a NUL in a name', (f) => create(DirectorySchema, { files: [{ ...f, name: 'a\0b' }] })],
      ['a duplicated file', (f) => create(DirectorySchema, { files: [f, f] })],
      [
        'a symlink and a file of one name',
        (f) =>
          create(DirectorySchema, { files: [f], symlinks: [{ name: f.name, target: '/etc' }] }),
      ],
      [
        'unsorted files',
        (f) =>
          create(DirectorySchema, {
            files: [
              { ...f, name: 'z' },
              { ...f, name: 'a' },
            ],
          }),
      ],
      [
        'a bad file digest',
        (f) =>
          create(DirectorySchema, { files: [{ ...f, digest: { hash: 'nope', sizeBytes: 1n } }] }),
      ],
      [
        'an empty symlink target',
        () => create(DirectorySchema, { symlinks: [{ name: 'l', target: '' }] }),
      ],
    ];
    let fileDigest: Digest;
    const fileNode = () => ({ name: 'evil', digest: toPb(fileDigest), isExecutable: false });
    for (const [what, make] of cases) {
      it(`rejects ${what} and writes nothing outside`, async () => {
        await using tmp = await tempDir();
        const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
        fileDigest = await cas.writeBlob(Buffer.from('pwned'));
        const inner = await rawDir(cas, make(fileNode()));
        // Nest the hostile directory one level down, as a network peer might.
        const root = await rawDir(
          cas,
          create(DirectorySchema, { directories: [{ name: 'sub', digest: toPb(inner) }] }),
        );
        const stage = join(tmp.path, 'stage', 'root');
        await mkdir(stage, { recursive: true });
        await assert.rejects(stageTree(cas, root, stage), (e: { code?: string }) =>
          ['reapi/invalid-name', 'reapi/invalid-directory', 'reapi/invalid-digest'].includes(
            e.code ?? '',
          ),
        );
        assert.deepEqual(await readdir(join(tmp.path, 'stage')), ['root']);
        assert.deepEqual(await readdir(stage), [], 'validation happens before anything is written');
      });
    }

    it('refuses a tree that expands exponentially', async () => {
      await using tmp = await tempDir();
      const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
      const f = await cas.writeBlob(Buffer.from('x'));
      let d = await rawDir(
        cas,
        create(DirectorySchema, { files: [{ name: 'f', digest: toPb(f) }] }),
      );
      for (let i = 0; i < 40; i++) {
        d = await rawDir(
          cas,
          create(DirectorySchema, {
            directories: [
              { name: 'a', digest: toPb(d) },
              { name: 'b', digest: toPb(d) },
            ],
          }),
        );
      }
      await mkdir(join(tmp.path, 'stage'));
      await assert.rejects(stageTree(cas, d, join(tmp.path, 'stage'), { maxEntries: 10_000 }), {
        code: 'reapi/invalid-directory',
      });
    });

    it('refuses to stage into a non-empty directory', async () => {
      await using tmp = await tempDir();
      const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
      const root = await rawDir(cas, create(DirectorySchema));
      await writeFile(join(tmp.path, 'already'), '');
      await assert.rejects(stageTree(cas, root, tmp.path), { code: 'cas/stage-conflict' });
    });
  });
});
