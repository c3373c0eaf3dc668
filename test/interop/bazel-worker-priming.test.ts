// Element subactions and priming on an Execution service not written here:
// Bazel's own remote worker. Its actions run in a plain directory (no
// sandbox root, no chrootRootDigest), so the fixture reaches its
// dependency's headers by a path relative to the build directory, as every
// input must be for such a worker. The first build and the rebuild after a
// dependency's header changes run every action there, none here, and get
// exactly the counts of the same two builds with the embedded executor.
// Outputs evicted from the worker's CAS while its action cache still names
// them make the actions run again, never a failed build.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { startBazelWorker, type BazelWorker } from '../helpers/bazel-worker.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { counts, multifileApp } from '../helpers/scenario.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';

let dir: TempDir;
let worker: BazelWorker;

before(
  async () => {
    dir = await tempDir('specbuild-worker-');
    worker = await startBazelWorker(dir.path);
  },
  { timeout: 240_000 },
);

after(async () => {
  await worker.stop();
  await dir[Symbol.asyncDispose]();
});

// The build directory is buildstream/test/app.bst in the input root.
const files = multifileApp('-I../../../usr/include');

describe("speculative actions on Bazel's remote worker", () => {
  it('the build and the rebuild run every action there and get the counts of the embedded executor', async () => {
    const twice = async (onWorker: boolean): Promise<[RigBuild, RigBuild]> => {
      await using rig = await ProjectRig.create(files);
      const cacheDir = join(rig.scratch, 'cache');
      const build = async (): Promise<RigBuild> => {
        if (!onWorker) return buildRig(rig, ['app.bst'], { mode: 'full', cacheDir });
        const ep = await RemoteEndpoint.connect({ target: worker.target });
        try {
          return await buildRig(rig, ['app.bst'], { mode: 'full', cacheDir, cluster: ep });
        } finally {
          ep.close();
        }
      };
      const first = await build();
      await rig.write({ 'dep/dep.h': '#define DEP 2\n' });
      return [first, await build()];
    };
    const [localFirst, localSecond] = await twice(false);
    const [first, second] = await twice(true);
    assert.deepEqual(counts(localFirst, 'app.bst'), { 'build-action:miss': 3 });
    assert.deepEqual(counts(localSecond, 'app.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 2,
      'prime:submitted': 2,
      'prime:completed': 2,
      'build-action:hit-primed': 2,
      'build-action:hit-cached': 1,
    });
    assert.deepEqual(counts(first, 'app.bst'), counts(localFirst, 'app.bst'));
    assert.deepEqual(counts(second, 'app.bst'), counts(localSecond, 'app.bst'));
    for (const r of [first, second]) {
      assert.deepEqual(r.states, { 'dep.bst': 'built', 'app.bst': 'built' });
      assert.equal(r.localExecutions, 0, 'nothing ran here');
      assert.equal(r.cluster?.counts.fallback, 0);
    }
    // The first build's three actions, then the two primed ones.
    assert.equal(first.cluster?.counts.executed, 3);
    assert.equal(second.cluster?.counts.executed, 2);
  });

  it("outputs evicted from the worker's CAS behind its action cache: the actions run again, nothing fails", async () => {
    // The worker answers from its action cache without checking the outputs
    // are still there (REAPI lets a server do that): its CAS emptied, as a
    // cache cleaner would, every hit names blobs that are gone.
    await using rig = await ProjectRig.create(files);
    const build = async (cacheDir: string): Promise<RigBuild> => {
      const ep = await RemoteEndpoint.connect({ target: worker.target });
      try {
        return await buildRig(rig, ['app.bst'], { mode: 'full', cacheDir, cluster: ep });
      } finally {
        ep.close();
      }
    };
    await build(join(rig.scratch, 'a'));
    await rm(join(worker.casPath, 'cas'), { recursive: true, force: true });
    await mkdir(join(worker.casPath, 'cas'), { recursive: true });
    const again = await build(join(rig.scratch, 'b'));
    assert.deepEqual(again.states, { 'dep.bst': 'built', 'app.bst': 'built' });
    assert.deepEqual(counts(again, 'app.bst'), { 'build-action:miss': 3 });
    assert.equal(again.localExecutions, 0);
    assert.deepEqual(again.cluster?.counts, { executed: 3, cached: 0, fallback: 0 });
  });
});
