// The local executor with a file-system pool (as `specbuild server` runs
// it): the executor contracts, outputs hashed as digestOfFile hashes them,
// cancellation that leaves neither staging directory nor temporary file, and
// a worker that dies failing its action only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { FsPool, LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { isSpecbuildError } from '../../src/core/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import {
  digestOfFile,
  fromPb,
  TreeSchema,
  treeFromDirectory,
  type Digest,
} from '../../src/reapi/index.js';
import { uploadAction } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';
import { executorContract, specbuildExecutorContract, type ExecRig } from './executor-contract.js';

// The workers' test hooks (see src/cas/fs-worker.ts); set before any pool starts.
process.env.SPECBUILD_TEST_FS_WORKER = '1';

async function rig() {
  const dir = await tempDir();
  const pool = new FsPool(2);
  const cas = await LocalCas.open({ dir: dir.path, pool });
  const ac = await LocalActionCache.open(dir.path, cas);
  const workDir = join(dir.path, 'exec');
  const executor = new LocalExecutor({ cas, ac, workDir, jobs: 2, fsPool: pool });
  return {
    cas,
    ac,
    pool,
    executor,
    dir: dir.path,
    workDir,
    runs: () => executor.runs,
    evict: (d: Digest) => unlink(cas.pathOf(d)),
    /** Entries in the work directory (one per action staged or running). */
    staged: async () => (existsSync(workDir) ? await readdir(workDir) : []),
    /** Temporary files anywhere in the CAS (its tmp directory and every shard). */
    temps: () => {
      const cas = join(dir.path, 'cas');
      const dirs = [
        join(cas, 'tmp'),
        ...readdirSync(join(cas, 'objects')).map((s) => join(cas, 'objects', s)),
      ];
      return dirs.flatMap((d) => readdirSync(d).filter((n) => n.startsWith('.tmp-')));
    },
    async [Symbol.asyncDispose]() {
      await pool.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

const contractRig = (): Promise<ExecRig> => rig();
executorContract('local executor with a file-system pool', contractRig);
specbuildExecutorContract('local executor with a file-system pool', contractRig);

/** Resolves once `check` is true, looking every 20 ms (a wait, not a timed assertion). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting until ${what}`);
}

describe('local executor with a file-system pool', () => {
  it('captures outputs with the digests digestOfFile gives the same files', async () => {
    await using r = await rig();
    const script = [
      'mkdir -p out/sub',
      "printf 'hello\\n' > out/small",
      ': > out/empty',
      "head -c 2000000 /dev/zero | tr '\\0' a > out/big", // over 1 MiB: streamed
      "printf '#!/bin/sh\\n' > out/tool && chmod 755 out/tool",
      "printf 'x' > out/sub/x",
      "printf 'warning\\n' >&2",
    ].join('; ');
    const a = await uploadAction(r.cas, {
      argv: ['sh', '-c', script],
      outputPaths: ['out/small', 'out/empty', 'out/big', 'out/tool', 'out/sub'],
    });
    const { result } = await r.executor.execute(a);
    assert.equal(result.exitCode, 0);
    // The same files, written here.
    const here = join(r.dir, 'expected');
    await mkdir(join(here, 'sub'), { recursive: true });
    await writeFile(join(here, 'small'), 'hello\n');
    await writeFile(join(here, 'empty'), '');
    await writeFile(join(here, 'big'), 'a'.repeat(2_000_000));
    await writeFile(join(here, 'tool'), '#!/bin/sh\n');
    await chmod(join(here, 'tool'), 0o755);
    await writeFile(join(here, 'sub', 'x'), 'x');
    await writeFile(join(here, 'stderr'), 'warning\n');
    for (const f of result.outputFiles) {
      const d = fromPb(f.digest);
      assert.deepEqual(d, await digestOfFile(join(here, f.path.slice('out/'.length))), f.path);
      assert.equal(r.cas.has(d), true, f.path);
      assert.equal(f.isExecutable, f.path === 'out/tool', f.path);
    }
    assert.equal(result.outputFiles.length, 4);
    assert.deepEqual(fromPb(result.stderrDigest), await digestOfFile(join(here, 'stderr')));
    const tree = fromBinary(
      TreeSchema,
      await r.cas.readBlob(fromPb(result.outputDirectories[0]?.treeDigest)),
    );
    const sub = await treeFromDirectory(join(here, 'sub'));
    assert.deepEqual(fromPb(tree.root?.files[0]?.digest), sub.files.values().next().value?.digest);
    assert.deepEqual(r.temps(), [], 'no temporary file is left in the CAS');
  });

  it('leaves no staging directory and no temporary file when cancelled while staging', async () => {
    await using r = await rig();
    const a = await uploadAction(r.cas, {
      argv: ['true'],
      inputs: { 'include/a.h': 'a', 'include/deep/b.h': 'b', 'specbuild-test-hold': 'held' },
    });
    const abort = new AbortController();
    const call = r.executor.execute(a, { signal: abort.signal });
    call.catch(() => undefined); // awaited below
    // The worker makes the staging directories, then holds until cancelled.
    await until('the action is being staged', async () => (await r.staged()).length === 1);
    abort.abort(new Error('caller left'));
    await assert.rejects(call, /caller left/);
    assert.deepEqual(await r.staged(), [], 'no staging directory outlives the call');
    assert.deepEqual(r.temps(), [], 'no temporary file is left in the CAS');
    assert.equal(r.pool.lost, 0);
  });

  it('leaves no staging directory and no temporary file when cancelled while the command runs', async () => {
    await using r = await rig();
    const a = await uploadAction(r.cas, {
      argv: ['sh', '-c', 'echo started; exec sleep 60'],
      inputs: { 'in.txt': 'input' },
    });
    const abort = new AbortController();
    const call = r.executor.execute(a, { signal: abort.signal });
    call.catch(() => undefined); // awaited below
    await until('the command runs', async () => {
      for (const d of await r.staged()) {
        const out = await readFile(join(r.workDir, d, 'stdout'), 'utf8').catch(() => '');
        if (out.includes('started')) return true;
      }
      return false;
    });
    abort.abort(new Error('caller left'));
    await assert.rejects(call, /caller left/);
    assert.deepEqual(await r.staged(), [], 'no staging directory outlives the call');
    assert.deepEqual(r.temps(), []);
  });

  it('fails the action whose worker dies with cas/worker-lost, and runs the next one', async () => {
    await using r = await rig();
    const doomed = await uploadAction(r.cas, {
      argv: ['true'],
      inputs: { 'sub/specbuild-test-crash': 'boom', 'sub/other.h': 'x' },
    });
    await assert.rejects(r.executor.execute(doomed), (e) => {
      assert.ok(isSpecbuildError(e));
      assert.equal(e.code, 'cas/worker-lost');
      assert.match(e.message, /a file system worker thread staging an input tree was lost/);
      return true;
    });
    assert.deepEqual(await r.staged(), [], 'its staging directory is removed');
    const next = await uploadAction(r.cas, {
      argv: ['sh', '-c', 'cat sub/a.h > o'],
      inputs: { 'sub/a.h': 'fine\n' },
      outputPaths: ['o'],
    });
    const { result } = await r.executor.execute(next);
    assert.equal(result.exitCode, 0);
    const o = result.outputFiles[0];
    assert.equal(Buffer.from(await r.cas.readBlob(fromPb(o?.digest))).toString(), 'fine\n');
    assert.equal(r.pool.lost, 1);
  });
});
