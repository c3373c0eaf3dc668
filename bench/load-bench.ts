// Load benchmark: what a large project costs before anything builds. A
// generated project of 1,000 elements (bench/gen-project.ts: random DAG,
// fixed seed, depth ~20, 3 dependencies each) is built once through the CLI
// (cheap commands; this caches everything), then loaded, resolved and keyed
// as `specbuild show` does it, in a fresh Node process each time (cold, as a
// user's command is, with the cache it opens full), and the top element's
// null build runs through the real CLI, timed as a whole process with its
// peak RSS. Prints one JSON line: medians and min/max of each, over
// BENCH_RUNS repetitions (BENCH_ELEMENTS, BENCH_LEVELS, BENCH_SEED: the
// project), and the targets: load+keys ≤ 0.5 s, null build ≤ 1.5 s, peak
// RSS ≤ 300 MB.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGraph, loadProject } from '../src/project/index.js';
import { resolveKeys } from '../src/scheduler/index.js';
import { openCache, sourceEnv } from '../src/cli/workspace.js';
import type { UserConfig } from '../src/cli/user-config.js';
import { cliMain } from '../test/helpers/paths.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { logger, median, round2 } from './common.js';
import { writeGeneratedProject } from './gen-project.js';

const log = logger('load-bench');
const COUNT = Number(process.env.BENCH_ELEMENTS ?? 1000);
const LEVELS = Number(process.env.BENCH_LEVELS ?? 20);
const SEED = Number(process.env.BENCH_SEED ?? 9);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** Issue 9's targets (medians; RSS: the highest of any process). */
const TARGET = { loadKeysS: 0.5, nullBuildS: 1.5, rssMb: 300 };

interface LoadFigures {
  /** From before loadProject to keys for every element, ms. */
  total_ms: number;
  project_ms: number;
  graph_ms: number;
  cache_ms: number;
  keys_ms: number;
  /** CPU time (user + system) of the same span, ms: steadier than wall time on a shared machine. */
  cpu_ms: number;
  elements: number;
  keyed: number;
  max_rss_mb: number;
}

/** One load as `specbuild show` does it (project, graph, cache, keys), in this process. */
async function loadOnce(projectDir: string, cacheDir: string, top: string): Promise<LoadFigures> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const p = await loadProject(projectDir, { maxJobs: 2 });
  if (!p.ok) throw new Error(p.errors.map((e) => e.message).join('\n'));
  const t1 = performance.now();
  const g = await loadGraph(p.value, [top]);
  if (!g.ok) throw new Error(g.errors.map((e) => e.message).join('\n'));
  const t2 = performance.now();
  const cfg = { cacheDir, quota: undefined } as UserConfig;
  const stores = await openCache(cfg);
  const t3 = performance.now();
  const keys = await resolveKeys(g.value, sourceEnv(p.value, stores), stores.toolchain);
  const t4 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  return {
    total_ms: t4 - t0,
    project_ms: t1 - t0,
    graph_ms: t2 - t1,
    cache_ms: t3 - t2,
    keys_ms: t4 - t3,
    cpu_ms: (cpu.user + cpu.system) / 1000,
    elements: g.value.order.length,
    keyed: [...keys.values()].filter((k) => k !== undefined).length,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}

/** Runs loadOnce in a fresh Node process (this script with --child-load). */
function loadInChild(projectDir: string, cacheDir: string, top: string): LoadFigures {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child-load', projectDir, cacheDir, top],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`load child failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as LoadFigures;
}

interface CliRun {
  wall_s: number;
  /** User + system CPU time of the process. */
  cpu_s: number;
  max_rss_mb: number;
  /** What it printed (progress on stderr, the summary on stdout). */
  output: string;
}

/** `specbuild build TARGET` as a whole process: wall time and peak RSS (GNU time). */
function cliBuild(projectDir: string, cacheHome: string, top: string, timeFile: string): CliRun {
  const t = performance.now();
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', '%M %U %S', '-o', timeFile, process.execPath, cliMain, '-C', projectDir, 'build', top],
    {
      env: {
        ...process.env,
        XDG_CACHE_HOME: cacheHome,
        XDG_CONFIG_HOME: join(cacheHome, 'no-config'),
        CI: 'true',
      },
      encoding: 'utf8',
    },
  );
  const wall = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`build failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const [rssKb, user, sys] = (
    spawnSync('tail', ['-n1', timeFile], { encoding: 'utf8' }).stdout.trim() || 'NaN NaN NaN'
  )
    .split(' ')
    .map(Number);
  return {
    wall_s: wall,
    cpu_s: (user ?? NaN) + (sys ?? NaN),
    max_rss_mb: (rssKb ?? NaN) / 1024,
    output: r.stderr + r.stdout,
  };
}

function spread(xs: number[], digits = 2): { median: number; min: number; max: number } {
  const r = (x: number): number => Number(x.toFixed(digits));
  return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
}

async function main(): Promise<void> {
  // BENCH_DIR keeps the project and its cache for another run (profiling):
  // its first build is then a null build too.
  const keep = process.env.BENCH_DIR;
  if (keep !== undefined) await mkdir(keep, { recursive: true });
  const dir = keep ?? (await mkdtemp(join(tmpdir(), 'specbuild-load-bench-')));
  try {
    const project = join(dir, 'project');
    const plan = await writeGeneratedProject(project, {
      count: COUNT,
      levels: LEVELS,
      seed: SEED,
    });
    log(`generated ${plan.elements.length} elements (seed ${SEED}, depth ${plan.depth})`);
    const top = `${plan.top}.bst`;
    const cacheHome = join(dir, 'xdg-cache');
    const cacheDir = join(cacheHome, 'specbuild');

    log('first build (caches everything)');
    const timeFile = join(dir, 'time.txt');
    const first = cliBuild(project, cacheHome, top, timeFile);
    log(`first build ${first.wall_s.toFixed(1)} s, rss ${first.max_rss_mb.toFixed(0)} MB`);
    const loads: LoadFigures[] = [];
    for (let i = 0; i < RUNS; i++) {
      const f = loadInChild(project, cacheDir, top);
      log(
        `load+keys ${f.total_ms.toFixed(0)} ms, cpu ${f.cpu_ms.toFixed(0)} ms (project ${f.project_ms.toFixed(0)}, graph ${f.graph_ms.toFixed(0)}, cache ${f.cache_ms.toFixed(0)}, keys ${f.keys_ms.toFixed(0)}), ${f.keyed}/${f.elements} keyed, rss ${f.max_rss_mb.toFixed(0)} MB`,
      );
      loads.push(f);
    }
    // The same in this process, again and again: what a warm JIT makes of it.
    const warm: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const f = await loadOnce(project, cacheDir, top);
      if (i > 0) warm.push(f.total_ms);
    }

    const nulls: CliRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      const n = cliBuild(project, cacheHome, top, timeFile);
      const summary = /build succeeded: (\d+) built, (\d+) cached/.exec(n.output);
      if (summary?.[1] !== '0')
        throw new Error(`the null build built something:\n${n.output.slice(-2000)}`);
      log(
        `null build ${n.wall_s.toFixed(2)} s, cpu ${n.cpu_s.toFixed(2)} s, rss ${n.max_rss_mb.toFixed(0)} MB (${summary[2]} cached)`,
      );
      nulls.push(n);
    }
    const totals = loads.map((l) => l.total_ms / 1000);
    const part = (k: keyof LoadFigures): number => round2(median(loads.map((l) => l[k])));
    const nullWall = nulls.map((n) => n.wall_s);
    const nullRss = nulls.map((n) => n.max_rss_mb);
    const lw = spread(totals, 3);
    const nw = spread(nullWall);
    const nr = spread(nullRss, 0);
    console.log(
      JSON.stringify({
        elements: plan.elements.length,
        depth: plan.depth,
        load_keys_s: lw.median,
        load_keys_s_min: lw.min,
        load_keys_s_max: lw.max,
        load_project_ms: part('project_ms'),
        load_graph_ms: part('graph_ms'),
        load_cache_ms: part('cache_ms'),
        load_keys_ms: part('keys_ms'),
        load_keys_cpu_s: round2(median(loads.map((l) => l.cpu_ms)) / 1000),
        load_keys_warm_s: round2(median(warm) / 1000),
        load_rss_mb: Math.round(median(loads.map((l) => l.max_rss_mb))),
        first_build_s: round2(first.wall_s),
        null_build_s: nw.median,
        null_build_s_min: nw.min,
        null_build_s_max: nw.max,
        null_build_cpu_s: round2(median(nulls.map((n) => n.cpu_s))),
        null_build_rss_mb: nr.median,
        null_build_rss_mb_min: nr.min,
        null_build_rss_mb_max: nr.max,
        target_load_keys_s: TARGET.loadKeysS,
        target_null_build_s: TARGET.nullBuildS,
        target_rss_mb: TARGET.rssMb,
        met:
          lw.median <= TARGET.loadKeysS &&
          nw.median <= TARGET.nullBuildS &&
          Math.max(nr.max, median(loads.map((l) => l.max_rss_mb))) <= TARGET.rssMb,
        runs: RUNS,
      }),
    );
  } finally {
    await stopDaemonsUnder(dir);
    if (keep === undefined) await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child-load') {
  const [projectDir, cacheDir, top] = process.argv.slice(3);
  loadOnce(projectDir ?? '', cacheDir ?? '', top ?? '')
    .then((f) => {
      process.stdout.write(`${JSON.stringify(f)}\n`);
    })
    .catch((e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
