// The executor contracts on the in-process local executor.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import type { Digest } from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';
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

executorContract('local executor', localRig);
specbuildExecutorContract('local executor', localRig);
