// The binds that put specbuild's wrappers into element sandboxes must also
// show the node_modules the daemon imports from when it lies outside the
// package: a worktree's symlink to another checkout's, or a hoisted one.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { moduleDirs, wrapperBinds } from '../../src/build/index.js';
import { tempDir } from '../helpers/tmp.js';

async function fakePackage(root: string): Promise<void> {
  await mkdir(join(root, 'dist', 'native'), { recursive: true });
  for (const w of ['specbuild-cc', 'specbuild-exec'])
    await writeFile(join(root, 'dist', 'native', w), '');
}

describe('wrapper binds', () => {
  it('bind a node_modules symlinked from another checkout at its real path', async () => {
    await using tmp = await tempDir('specbuild-tools-');
    const pkg = join(tmp.path, 'wt', 'pkg');
    const other = join(tmp.path, 'main', 'node_modules');
    await fakePackage(pkg);
    await mkdir(other, { recursive: true });
    await symlink(other, join(pkg, 'node_modules'));
    assert.deepEqual(moduleDirs(pkg), [other]);
    assert.deepEqual(
      wrapperBinds(pkg).map((b) => [b.src, b.dst]),
      [
        [other, other],
        [pkg, pkg],
        [join(pkg, 'dist', 'native', 'specbuild-cc'), '/usr/bin/specbuild-cc'],
        [join(pkg, 'dist', 'native', 'specbuild-exec'), '/usr/bin/specbuild-exec'],
      ],
    );
  });

  it('bind a hoisted node_modules above an installed package, and nothing for its own', async () => {
    await using tmp = await tempDir('specbuild-tools-');
    const hoisted = join(tmp.path, 'proj', 'node_modules');
    const pkg = join(hoisted, 'specbuild');
    await fakePackage(pkg);
    await mkdir(join(pkg, 'node_modules'));
    assert.deepEqual(moduleDirs(pkg), [hoisted]);
    assert.deepEqual(moduleDirs(join(tmp.path, 'proj')), []);
  });
});
