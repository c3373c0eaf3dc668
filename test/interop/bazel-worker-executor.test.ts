// The executor contract on an Execution service not written here: our remote
// executor against Bazel's own remote worker (REAPI 2.0), one worker for the
// file, each test with a salt of its own.
//
// Conformance gaps of the worker (what our remote executor makes up for, or
// what only specbuildExecutorContract asks of our own executor):
// - Execute never looks in the action cache: RemoteExecutor asks it first;
// - a missing input is NOT_FOUND with a message, not FAILED_PRECONDITION with
//   MISSING violations: RemoteExecutor finds the missing blobs itself;
// - Action.timeout is checked after the command ends, never enforced;
// - no ExecutedActionMetadata, no output symlinks (REAPI 2.0), no platform
//   checks, and identical actions in flight each run.
import { after, before } from 'node:test';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteEndpoint } from '../../src/remote/index.js';
import type { Digest } from '../../src/reapi/index.js';
import { startBazelWorker, type BazelWorker } from '../helpers/bazel-worker.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';
import { executorContract, salted } from '../exec/executor-contract.js';

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

executorContract("remote executor, Bazel's remote worker", async () => {
  const ep = await RemoteEndpoint.connect({ target: worker.target });
  return salted({
    cas: ep.cas,
    ac: ep.actionCache,
    executor: ep.executor,
    // The worker keeps blobs as files named by their hash, in folders by its first two digits.
    evict: (d: Digest) => rm(join(worker.casPath, 'cas', d.hash.slice(0, 2), d.hash)),
    [Symbol.asyncDispose]: () => {
      ep.close();
      return Promise.resolve();
    },
  });
});
