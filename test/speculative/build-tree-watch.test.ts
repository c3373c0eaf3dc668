// The watch on an element's live build tree (BUILD_TREE overlays): a file is
// read once it exists and two looks agree, into CAS with its digest; a path
// leading out of the tree (`..`, an absolute path, a symbolic link to a host
// file) and a file over the limit are never read. Real files, a real CAS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalCas } from '../../src/cas/index.js';
import { digestOf, digestKey, type Digest } from '../../src/reapi/index.js';
import { BuildTreeWatch } from '../../src/speculative/build-tree.js';
import { tempDir } from '../helpers/tmp.js';

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('build-tree watch', () => {
  it('reads a file once it appears and holds still, and nothing outside the tree', async () => {
    await using tmp = await tempDir();
    const cas = await LocalCas.open({ dir: join(tmp.path, 'cas') });
    const root = join(tmp.path, 'root');
    await mkdir(join(root, 'sub'), { recursive: true });
    const outside = join(tmp.path, 'secret.h');
    await writeFile(outside, '#define SECRET 1\n');
    await symlink(outside, join(root, 'link.h'));
    await symlink('../secret.h', join(root, 'sub', 'rel.h'));
    // A directory of the tree that leads out of it.
    await symlink(tmp.path, join(root, 'hostdir'));
    const found: [string, string][] = [];
    const watch = new BuildTreeWatch(root, cas, (path, d: Digest) => {
      found.push([path, digestKey(d)]);
    });
    try {
      for (const p of [
        'gen.h',
        'link.h',
        'sub/rel.h',
        'hostdir/secret.h',
        '../secret.h',
        '/etc/passwd',
        'a//b',
        './x',
      ])
        watch.watch(p);
      await settle(150);
      assert.equal(found.length, 0, 'nothing there yet, and nothing outside read');
      // Written later, while the build runs: read once two looks agree.
      await writeFile(join(root, 'gen.h'), '#define GEN 2\n');
      await settle(250);
      const gen = digestOf(Buffer.from('#define GEN 2\n'));
      assert.deepEqual(found, [['gen.h', digestKey(gen)]]);
      assert.equal((await cas.readBlob(gen)).toString(), '#define GEN 2\n');
    } finally {
      watch.stop();
    }
    // A stopped watch reads nothing more.
    const late = new BuildTreeWatch(root, cas, (path) => {
      found.push([path, 'late']);
    });
    late.stop();
    late.watch('gen.h');
    await settle(120);
    assert.equal(found.length, 1);
  });
});
