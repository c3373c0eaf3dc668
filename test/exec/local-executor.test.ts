// The executor contracts on the in-process local executor.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import type { Digest } from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LentSlot, SlotPool } from '../../src/core/index.js';
import { uploadAction } from '../helpers/actions.js';
import { executorContract, specbuildExecutorContract, type ExecRig } from './executor-contract.js';

async function localRig(): Promise<ExecRig> {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const executor = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 2 });
  return {
    cas,
    ac,
    executor,
    runs: () => executor.runs,
    evict: (d: Digest) => unlink(cas.pathOf(d)),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

async function localRigWithSlots(n: number) {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const slots = new SlotPool(n);
  const executor = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), slots });
  return { cas, executor, slots, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}

executorContract('local executor', localRig);
specbuildExecutorContract('local executor', localRig);

describe('local executor: slots of shared runs', () => {
  it('a caller joining a run still queued at a low priority brings its own slot (no deadlock behind builds holding the pool)', async () => {
    await using rig = await localRigWithSlots(1);
    const { executor, slots } = rig;
    const build = await slots.acquire(); // a build holds the only slot
    const lent = new LentSlot(slots);
    const a = await uploadAction(rig.cas, {
      argv: ['sh', '-c', 'echo primed > o'],
      outputPaths: ['o'],
    });
    const primed = executor.execute(a, { priority: -1 }); // queued: no slot free
    await new Promise((r) => setTimeout(r, 50));
    // The build's own request for the same action joins it, with the build's lent slot.
    const joined = await executor.execute(a, { acquireSlot: (s) => lent.acquire(s) });
    assert.equal(joined.result.exitCode, 0);
    assert.equal(joined.joined, true, "the second request joined the first one's run");
    const first = await primed;
    assert.equal(first.result.exitCode, 0);
    assert.equal(first.joined, undefined, 'the first request started the run');
    assert.equal(first.cached, false);
    assert.equal(executor.runs, 1);
    build();
    assert.equal(slots.busy, 0);
  });
});
