// A run of an action that ends while another request for it reads the action
// cache: that request must answer from the cache, not run the action again
// (priming counted such a second run as its own primed action). The window
// is a few microseconds wide in real use; the action cache below holds its
// answer until the first run has ended, to open it every time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import type { ActionResult, Digest } from '../../src/reapi/index.js';
import { uploadAction } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';

test('a request whose cache read spans the end of a run of the same action answers from the cache', async () => {
  await using dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const executor = new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 2 });
  const action = await uploadAction(cas, {
    argv: ['sh', '-c', 'sleep 0.3; echo ran > out'],
    outputPaths: ['out'],
  });

  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const first = executor.execute(action, {
    events: (e) => {
      if (e.stage === 'executing') started();
    },
  });
  await running;
  // The second request's cache read: a miss when it starts (the first run
  // is going), answered only after that run has ended.
  const read = ac.getActionResult.bind(ac);
  let holds = 0;
  ac.getActionResult = async (d: Digest): Promise<ActionResult | undefined> => {
    const got = await read(d);
    if (holds++ === 0) await first;
    return got;
  };
  const second = await executor.execute(action);
  const one = await first;

  assert.equal(one.cached, false);
  assert.equal(second.cached, true, 'answered from the cache');
  assert.equal(second.joined, undefined);
  assert.equal(executor.runs, 1, 'the action ran once');
  assert.deepEqual(second.result.outputFiles, one.result.outputFiles);
  assert.equal(holds, 2, 'the cache was read again after the run ended');
});
