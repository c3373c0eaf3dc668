// Execution benchmark: the local executor's own overhead per trivial action
// (stage + sandbox + capture, beyond spawning the command directly), and how
// many Execute calls per second a real server answers from its action cache,
// each on a quiet machine and under a parallel `make -j4` load. Also the
// event loop's longest stall while actions run (synchronous work of ours).
// Prints one JSON line: overhead medians and p10/p90 spread, Executes per
// second, event-loop stall p99/max, quiet and loaded.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../src/cas/index.js';
import { LocalExecutor } from '../src/exec/index.js';
import type { Digest } from '../src/reapi/index.js';
import { RemoteEndpoint } from '../src/remote/index.js';
import { uploadAction } from '../test/helpers/actions.js';
import { startCliServer } from '../test/helpers/cli-server.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { logger, median, percentile, round2 } from './common.js';
import { startLoad } from './load.js';

const RUNS = 200;
const log = logger('exec-bench');

function spawnOnce(argv: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? '', args, { cwd, stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    child.once('error', reject);
    child.once('exit', () => {
      resolve();
    });
  });
}

interface Overhead {
  median: number;
  p10: number;
  p90: number;
  /** Event-loop delay while the executor ran, ms. */
  loopP99: number;
  loopMax: number;
}

async function overhead(dir: string): Promise<Overhead> {
  const cas = await LocalCas.open({ dir: join(dir, 'cache') });
  const ac = await LocalActionCache.open(join(dir, 'cache'), cas);
  const ex = new LocalExecutor({ cas, ac, workDir: join(dir, 'cache', 'exec'), jobs: 1 });
  const argv = ['sh', '-c', 'cat in.txt > out.txt'];
  const action = await uploadAction(cas, {
    argv,
    inputs: { 'in.txt': 'input\n' },
    outputPaths: ['out.txt'],
  });
  for (let i = 0; i < 10; i++) await ex.execute(action, { skipCacheLookup: true }); // warm-up
  const viaExecutor: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const o = await ex.execute(action, { skipCacheLookup: true });
    viaExecutor.push(performance.now() - t);
    if (o.result.exitCode !== 0) throw new Error('the benchmark action failed');
  }
  loop.disable();
  const direct: number[] = [];
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'in.txt'), 'input\n');
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await spawnOnce(argv, dir);
    direct.push(performance.now() - t);
  }
  const d = median(direct);
  log(
    `executor median ${median(viaExecutor).toFixed(2)} ms, direct spawn median ${d.toFixed(2)} ms`,
  );
  return {
    median: median(viaExecutor) - d,
    p10: percentile(viaExecutor, 10) - d,
    p90: percentile(viaExecutor, 90) - d,
    loopP99: loop.percentile(99) / 1e6,
    loopMax: loop.max / 1e6,
  };
}

async function cachedExecutes(dir: string): Promise<number> {
  const server = await startCliServer(join(dir, 'srv'));
  const address = server.address;
  const ep = await RemoteEndpoint.connect({ target: address });
  try {
    const actions: Digest[] = [];
    for (let i = 0; i < 50; i++) {
      const a = await uploadAction(ep.cas, {
        argv: ['sh', '-c', `echo ${i} > o`],
        outputPaths: ['o'],
      });
      const res = await ep.execution.execute(a);
      if (res.result?.exitCode !== 0) throw new Error('priming the cache failed');
      actions.push(a);
    }
    let calls = 0;
    const until = performance.now() + 3000;
    const worker = async (w: number): Promise<void> => {
      for (let i = w; performance.now() < until; i++) {
        const res = await ep.execution.execute(actions[i % actions.length] as Digest);
        if (!res.cachedResult) throw new Error('expected a cached result');
        calls++;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: 32 }, (_, w) => worker(w)));
    return calls / ((performance.now() - start) / 1000);
  } finally {
    ep.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-exec-bench-'));
  try {
    log(`quiet: executor overhead, ${RUNS} runs`);
    const quiet = await overhead(join(dir, 'quiet'));
    log('quiet: cached Execute calls over loopback, 32 in flight, 3 s');
    const quietPerS = await cachedExecutes(join(dir, 'quiet'));
    log('loaded: make -j4 running alongside');
    const load = await startLoad(join(dir, 'load'));
    let loaded: Overhead;
    let loadedPerS: number;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      loaded = await overhead(join(dir, 'loaded'));
      loadedPerS = await cachedExecutes(join(dir, 'loaded'));
    } finally {
      await load.stop();
    }
    log(`the load ran ${load.rounds} full make rounds`);
    console.log(
      JSON.stringify({
        overhead_ms_median: round2(quiet.median),
        overhead_ms_p10: round2(quiet.p10),
        overhead_ms_p90: round2(quiet.p90),
        cached_execute_per_s: Math.round(quietPerS),
        event_loop_p99_ms: round2(quiet.loopP99),
        event_loop_max_ms: round2(quiet.loopMax),
        loaded_overhead_ms_median: round2(loaded.median),
        loaded_overhead_ms_p10: round2(loaded.p10),
        loaded_overhead_ms_p90: round2(loaded.p90),
        loaded_cached_execute_per_s: Math.round(loadedPerS),
        loaded_event_loop_p99_ms: round2(loaded.loopP99),
        loaded_event_loop_max_ms: round2(loaded.loopMax),
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
