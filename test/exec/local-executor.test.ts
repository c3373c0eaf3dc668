// The executor contract on the in-process local executor.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor, MissingBlobsError } from '../../src/exec/index.js';
import type { Digest } from '../../src/reapi/index.js';
import { tempDir } from '../helpers/tmp.js';
import { executorContract } from './executor-contract.js';

executorContract('local executor', async () => {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const ex = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 2 });
  return {
    cas,
    ac,
    async execute(action: Digest, opts = {}) {
      const o = await ex.execute(action, opts).catch((e: unknown) => {
        // The same shape as the server's PreconditionFailure violations.
        if (e instanceof MissingBlobsError)
          Object.assign(e, { missing: e.digests.map((d) => `blobs/${d.hash}/${String(d.size)}`) });
        throw e;
      });
      return { result: o.result, cached: o.cached, errorCode: o.error?.code };
    },
    runs: () => ex.runs,
    evict: (d: Digest) => unlink(cas.pathOf(d)),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
});
