// The file-system worker pool: trees it stages are the same as stageTree's,
// files it imports hash as digestOfFile says and are accounted for by the
// store, a cancelled staging answers once the worker has stopped, and a
// worker that dies fails its task only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fetchTree,
  FsPool,
  LocalActionCache,
  LocalCas,
  planStage,
  stageTree,
  type StageOptions,
} from '../../src/cas/index.js';
import { isSpecbuildError } from '../../src/core/index.js';
import { digestOf, digestOfFile, treeFromDirectory } from '../../src/reapi/index.js';
import { uploadTree } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';
import { acContract } from './ac-contract.js';
import { casContract } from './cas-contract.js';

// The workers' test hooks (see src/cas/fs-worker.ts); set before any pool starts.
process.env.SPECBUILD_TEST_FS_WORKER = '1';

async function poolRig() {
  const dir = await tempDir();
  const pool = new FsPool(2);
  const cas = await LocalCas.open({ dir: dir.path, pool });
  const ac = await LocalActionCache.open(dir.path, cas);
  return {
    cas,
    ac,
    pool,
    dir: dir.path,
    evict: (d: Parameters<LocalCas['pathOf']>[0]) => unlink(cas.pathOf(d)),
    async [Symbol.asyncDispose]() {
      await pool.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

casContract('local store with a file-system pool', poolRig);
acContract('local store with a file-system pool', poolRig);

/** Every entry under `root`: type, permission bits, content or target, and whether it is the CAS's file. */
function snapshot(root: string, cas: LocalCas): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${rel}${name} symlink -> ${readlinkSync(path)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}${name}/ dir ${mode}`);
        walk(path, `${rel}${name}/`);
      } else {
        const data = readFileSync(path);
        const linked = statSync(cas.pathOf(digestOf(data))).ino === st.ino;
        out.push(
          `${rel}${name} file ${mode} ${linked ? 'linked' : 'copy'} ${data.toString('hex')}`,
        );
      }
    }
  };
  walk(root, '');
  return out;
}

/** A tree with nested and empty directories, executables, shared contents and symlinks. */
async function writeSource(src: string): Promise<void> {
  await mkdir(join(src, 'usr', 'include', 'sys'), { recursive: true });
  await mkdir(join(src, 'usr', 'include', 'bits', 'types'), { recursive: true });
  await mkdir(join(src, 'empty', 'deeper-empty'), { recursive: true });
  await mkdir(join(src, 'project', 'src'), { recursive: true });
  await writeFile(join(src, 'usr', 'include', 'stdio.h'), '#pragma once\nint printf();\n');
  await writeFile(join(src, 'usr', 'include', 'sys', 'types.h'), '#pragma once\n');
  await writeFile(join(src, 'usr', 'include', 'bits', 'types', 'same.h'), '#pragma once\n');
  await writeFile(join(src, 'project', 'src', 'main.c'), 'int main(void) { return 0; }\n');
  await writeFile(join(src, 'project', 'empty.txt'), '');
  await writeFile(join(src, 'project', 'run.sh'), '#!/bin/sh\necho run\n');
  await chmod(join(src, 'project', 'run.sh'), 0o755);
  await writeFile(join(src, 'project', 'big.bin'), randomBytes(3 * 1024 * 1024 + 17));
  await chmod(join(src, 'project', 'big.bin'), 0o755); // copied in chunks
  await symlink('src/main.c', join(src, 'project', 'main.c'));
  await symlink('/etc/passwd', join(src, 'project', 'absolute'));
  await symlink('nowhere/at/all', join(src, 'project', 'dangling'));
  await symlink('../usr/include', join(src, 'project', 'include'));
}

describe('file-system pool: staging', () => {
  const variants: [string, Partial<StageOptions>][] = [
    ['plain', {}],
    ['writable directories (an action)', { writableDirectories: true }],
    [
      'writable files and directories (a build)',
      { writableDirectories: true, writableFiles: true },
    ],
  ];
  for (const [what, opts] of variants) {
    it(`lays out the same tree as stageTree: ${what}`, async () => {
      await using rig = await poolRig();
      const src = join(rig.dir, 'src');
      await writeSource(src);
      const t = await treeFromDirectory(src);
      await uploadTree(rig.cas, t);
      const tree = await fetchTree(rig.cas, t.root);
      const inline = join(rig.dir, 'inline');
      await mkdir(inline);
      await stageTree(rig.cas, t.root, inline, {
        ...opts,
        tree,
        localPath: (d) => rig.cas.pathOf(d),
      });
      const offloaded = join(rig.dir, 'private', 'offloaded');
      const counts = await rig.pool.stage(
        planStage(tree, offloaded, {
          ...opts,
          localPath: (d) => rig.cas.pathOf(d),
          before: [
            { path: join(rig.dir, 'private'), mode: 0o700 },
            { path: offloaded, mode: 0o777 },
          ],
        }),
      );
      assert.deepEqual(snapshot(offloaded, rig.cas), snapshot(inline, rig.cas));
      assert.equal(statSync(offloaded).mode & 0o777, statSync(inline).mode & 0o777);
      assert.equal(statSync(join(rig.dir, 'private')).mode & 0o777, 0o700);
      assert.deepEqual(counts, {
        files: 7,
        linked: opts.writableFiles === true ? 0 : 5,
        directories: 9,
        symlinks: 4,
      });
    });
  }

  it('makes the writable parents afterwards, never through a symlink of the tree', async () => {
    await using rig = await poolRig();
    const src = join(rig.dir, 'src');
    await mkdir(join(src, 'work'), { recursive: true });
    await symlink('/etc', join(src, 'work', 'out'));
    const t = await treeFromDirectory(src);
    await uploadTree(rig.cas, t);
    const dest = join(rig.dir, 'dest');
    await rig.pool.stage(
      planStage(await fetchTree(rig.cas, t.root), dest, {
        localPath: (d) => rig.cas.pathOf(d),
        before: [{ path: dest, mode: 0o777 }],
        writableParents: ['work/obj/x', 'work/out/x', '.'],
      }),
    );
    assert.equal(statSync(join(dest, 'work', 'obj', 'x')).mode & 0o777, 0o777);
    assert.ok(lstatSync(join(dest, 'work', 'out')).isSymbolicLink());
  });

  it('refuses a destination that is not empty, and a blob missing from the store, with their codes', async () => {
    await using rig = await poolRig();
    const src = join(rig.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'tool'), 'x');
    await chmod(join(src, 'tool'), 0o755);
    const t = await treeFromDirectory(src);
    await uploadTree(rig.cas, t);
    const tree = await fetchTree(rig.cas, t.root);
    const full = join(rig.dir, 'full');
    await mkdir(full);
    await writeFile(join(full, 'x'), '');
    const plan = (dest: string) => planStage(tree, dest, { localPath: (d) => rig.cas.pathOf(d) });
    await assert.rejects(
      rig.pool.stage(plan(full)),
      (e) => isSpecbuildError(e) && e.code === 'cas/stage-conflict',
    );
    const [file] = t.files.values();
    assert.ok(file);
    await unlink(rig.cas.pathOf(file.digest));
    const empty = join(rig.dir, 'empty');
    await mkdir(empty);
    await assert.rejects(
      rig.pool.stage(plan(empty)),
      (e) => isSpecbuildError(e) && e.code === 'cas/not-found',
    );
  });

  it('answers a cancelled staging once its worker has stopped, and runs the next task', async () => {
    await using rig = await poolRig();
    const src = join(rig.dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'sub', 'specbuild-test-hold'), 'held');
    const t = await treeFromDirectory(src);
    await uploadTree(rig.cas, t);
    const tree = await fetchTree(rig.cas, t.root);
    const dest = join(rig.dir, 'dest');
    const abort = new AbortController();
    const staged = rig.pool.stage(
      planStage(tree, dest, {
        localPath: (d) => rig.cas.pathOf(d),
        before: [{ path: dest, mode: 0o777 }],
      }),
      abort.signal,
    );
    // The worker makes `dest`, then holds until cancelled.
    for (let i = 0; i < 1500 && !(await readdir(rig.dir)).includes('dest'); i++)
      await new Promise((r) => setTimeout(r, 20));
    abort.abort(new Error('caller left'));
    await assert.rejects(staged, /caller left/);
    assert.deepEqual(await readdir(dest), [], 'the worker stopped before staging anything');
    const other = join(rig.dir, 'other');
    await mkdir(other);
    await writeFile(join(other, 'f'), 'next');
    assert.equal(
      (await rig.cas.writeFile(join(other, 'f'))).hash,
      digestOf(Buffer.from('next')).hash,
    );
  });

  it('fails the task of a worker that dies with cas/worker-lost, and runs the next on a new worker', async () => {
    await using rig = await poolRig();
    const src = join(rig.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'specbuild-test-crash'), 'boom');
    const t = await treeFromDirectory(src);
    await uploadTree(rig.cas, t);
    const tree = await fetchTree(rig.cas, t.root);
    const plan = (dest: string) =>
      planStage(tree, dest, {
        localPath: (d) => rig.cas.pathOf(d),
        before: [{ path: dest, mode: 0o777 }],
      });
    await assert.rejects(rig.pool.stage(plan(join(rig.dir, 'a'))), (e) => {
      assert.ok(isSpecbuildError(e));
      assert.equal(e.code, 'cas/worker-lost');
      assert.match(e.message, /staging an input tree was lost: it exited with code 70/);
      return true;
    });
    assert.equal(rig.pool.lost, 1);
    const d = await rig.cas.writeBlob(Buffer.from('after the crash'));
    assert.equal(rig.cas.has(d), true);
  });
});

describe('file-system pool: importing and writing blobs', () => {
  it('imports files with the digests digestOfFile gives, each readable back', async () => {
    await using rig = await poolRig();
    const files: [string, Buffer][] = [
      ['empty', Buffer.alloc(0)],
      ['small', Buffer.from('int x;\n')],
      ['64k', randomBytes(64 * 1024)],
      ['1m', randomBytes(1 << 20)],
      ['1m+1', randomBytes((1 << 20) + 1)],
      ['large', randomBytes(5 * 1024 * 1024 + 3)],
    ];
    const before = rig.cas.sizeBytes;
    let added = 0;
    for (const [name, data] of files) {
      const path = join(rig.dir, name);
      await writeFile(path, data);
      const d = await rig.cas.writeFile(path);
      assert.deepEqual(d, await digestOfFile(path), name);
      assert.ok(Buffer.from(await rig.cas.readBlob(d)).equals(data), name);
      assert.equal(statSync(rig.cas.pathOf(d)).mode & 0o777, 0o444, name);
      added += data.byteLength;
      // The same file again: found stored, nothing counted twice.
      assert.deepEqual(await rig.cas.writeFile(path), d);
    }
    assert.equal(rig.cas.sizeBytes - before, added, 'the store counts what its workers wrote');
    assert.deepEqual(await readdir(join(rig.dir, 'cas', 'tmp')), [], 'no temporary file is left');
  });

  it('fails to import a file that is not there with cas/io', async () => {
    await using rig = await poolRig();
    await assert.rejects(
      rig.cas.writeFile(join(rig.dir, 'absent')),
      (e) => isSpecbuildError(e) && e.code === 'cas/io',
    );
  });

  it("writes blobs that are views of a larger buffer, leaving the caller's buffer as it was", async () => {
    await using rig = await poolRig();
    const batch = randomBytes(4096);
    const copy = Buffer.from(batch);
    const views = [batch.subarray(0, 100), batch.subarray(100, 1000), batch.subarray(1000)];
    const digests = await rig.cas.writeBlobs(views);
    assert.ok(batch.equals(copy), 'the buffer is intact');
    for (const [i, v] of views.entries()) {
      assert.deepEqual(digests[i], digestOf(v));
      assert.ok(Buffer.from(await rig.cas.readBlob(digestOf(v))).equals(v));
    }
  });

  it('keeps the quota with blobs its workers wrote', async () => {
    await using dir = await tempDir();
    await using pool = new FsPool(2);
    const cas = await LocalCas.open({ dir: dir.path, quotaBytes: 10 * 1024, pool });
    const digests = [];
    for (let i = 0; i < 12; i++) digests.push(await cas.writeBlob(randomBytes(1024)));
    assert.ok(cas.sizeBytes <= 10 * 1024, `size ${cas.sizeBytes} over quota`);
    const missing = await cas.findMissingBlobs(digests);
    assert.ok(missing.length >= 2, 'the oldest were evicted');
    assert.equal(cas.has(digests[digests.length - 1] ?? digestOf(Buffer.alloc(0))), true);
  });
});

describe('file-system pool: closing', () => {
  it('holds the process until close() ends, even when a reply crosses the close', async () => {
    // A child whose last work is close(): its worker answers a task while the
    // child's thread is busy, so the answer is delivered after close() asked
    // the worker to stop. Answers used to unref the worker again, and the
    // child could end with close() pending (exit code 13, "unsettled
    // top-level await"): 2 runs of 5 did before the fix.
    const pool = new URL('../../src/cas/index.js', import.meta.url).href;
    const script = `
      import { FsPool } from ${JSON.stringify(pool)};
      import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
      import { join } from 'node:path';
      const root = mkdtempSync(join(process.argv[2], 'run-'));
      const pool = new FsPool(1);
      await pool.remove(join(root, 'none'));
      const d = join(root, 'd');
      mkdirSync(d);
      pool.remove(d, { background: true }).catch(() => undefined);
      const until = Date.now() + 5000;
      while (existsSync(d) && Date.now() < until);
      const t = Date.now() + 50;
      while (Date.now() < t);
      await pool.close();
      rmSync(root, { recursive: true, force: true });
      console.log('closed');
    `;
    await using dir = await tempDir();
    const file = join(dir.path, 'close.mjs');
    await writeFile(file, script);
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(process.execPath, [file, dir.path], { encoding: 'utf8' });
      assert.deepEqual([r.status, r.stdout, r.stderr], [0, 'closed\n', ''], `run ${i + 1}`);
    }
  });
});
