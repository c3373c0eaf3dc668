// An input root that expands past the executor's cap is refused through the
// real server with INVALID_ARGUMENT, from its unique Directories alone,
// before anything is staged.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { DEFAULT_MAX_INPUT_ENTRIES, LocalExecutor } from '../../src/exec/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { startServer } from '../../src/server/index.js';
import { uploadAction } from '../helpers/actions.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { tempDir } from '../helpers/tmp.js';
import { doublingTree } from '../helpers/trees.js';

/**
 * A server that executes, its cache on a small tmpfs: should the cap ever
 * stop working, staging fails on a full tmpfs instead of filling the
 * machine's disk.
 */
async function execServer(maxInputEntries?: number) {
  const dir = await tempDir();
  const cacheDir = join(dir.path, 'cache');
  const fs = await mountTmpfs(cacheDir, { size: '64m', inodes: 20_000 });
  const cas = await LocalCas.open({ dir: cacheDir });
  const ac = await LocalActionCache.open(cacheDir, cas);
  const workDir = join(cacheDir, 'exec');
  const executor = new LocalExecutor({ cas, ac, workDir, jobs: 2, maxInputEntries });
  const server = await startServer({
    listen: `unix:${join(dir.path, 's.sock')}`,
    instances: new Map([['', { cas, ac, executor }]]),
  });
  const ep = await RemoteEndpoint.connect({ target: server.address });
  return {
    ep,
    /** What is left in the executor's work directory. */
    staged: async () => (existsSync(workDir) ? await readdir(workDir) : []),
    async [Symbol.asyncDispose]() {
      ep.close();
      await server.close();
      await fs[Symbol.asyncDispose]();
      await dir[Symbol.asyncDispose]();
    },
  };
}

describe('input root size cap', () => {
  it('refuses a root of 31 doubling levels (2^31 - 2 entries) at once, staging nothing', async () => {
    await using s = await execServer();
    const tree = doublingTree(30);
    await s.ep.cas.writeBlobs(tree.blobs);
    const a = await uploadAction(s.ep.cas, { argv: ['true'], inputRoot: tree.root });
    const res = await s.ep.execution.execute(a);
    assert.equal(res.status?.code, Status.INVALID_ARGUMENT, res.status?.message);
    const message = res.status.message;
    assert.match(message, new RegExp(`\\b${2 ** 31 - 2}\\b`), 'names the size');
    assert.match(message, new RegExp(`\\b${DEFAULT_MAX_INPUT_ENTRIES}\\b`), 'names the cap');
    assert.deepEqual(await s.staged(), [], 'nothing staged');
  });

  it('runs a root at a configured cap and refuses one entry more', async () => {
    await using s = await execServer(10);
    // a/ and b/ are the same Directory: 4 entries at the top, 3 in each.
    const shared = { 'a/x': 'x', 'a/y': 'y', 'a/z': 'z', 'b/x': 'x', 'b/y': 'y', 'b/z': 'z' };
    const at = await uploadAction(s.ep.cas, {
      argv: ['sh', '-c', 'cat a/x b/z r1 r2'],
      inputs: { ...shared, r1: '1', r2: '2' },
    });
    const ok = await s.ep.execution.execute(at);
    assert.equal(ok.status?.code ?? Status.OK, Status.OK, ok.status?.message);
    assert.equal(ok.result?.exitCode, 0);

    const over = await uploadAction(s.ep.cas, {
      argv: ['sh', '-c', 'cat a/x b/z r1 r2 r3'],
      inputs: { ...shared, r1: '1', r2: '2', r3: '3' },
    });
    const refused = await s.ep.execution.execute(over);
    assert.equal(refused.status?.code, Status.INVALID_ARGUMENT, refused.status?.message);
    assert.match(refused.status.message, /\b11 entries\b/);
    assert.match(refused.status.message, /limit of 10\b/);
    assert.deepEqual(await s.staged(), []);
  });
});
