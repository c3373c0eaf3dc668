// Recording benchmark: what the per-build RecordingSession costs. The same
// element (a `make -j2` of C files through specbuild-cc, then a link, all
// actions: SPECBUILD_LINK=1) is
// built in this process through the real scheduler, builder and sandbox two
// ways: its wrappers talk to the build's own session (remote-apis-socket:
// the builder starts a server for the build and records every action), or to
// a plain `specbuild server` started once beforehand as its own process.
// Each run builds each way once with a salt no earlier run compiled (every
// compile a miss, executed), then again with only an uncompiled file changed
// (every compile a hit); the order of the two ways alternates run to run.
// The wrapper log, printed into the build log, proves the outcomes: no
// fallback to a local compile. Prints one JSON line: the element builds'
// medians and their ratios (session/server), per-run ratios' min/max, each
// wrapped compile's median time as the wrapper logged it, and the target
// (≤ 1.1).
//
// The plain server's socket has to be reachable inside the sandbox, whose
// root shows only the host's /usr and /etc and specbuild's own package
// (bound read-only at its path, for the wrappers): it is put in a private
// directory under the package's dist/, removed at the end.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../src/build/index.js';
import { fromPb } from '../src/reapi/index.js';
import { startCliServer } from '../test/helpers/cli-server.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { logger, median, round2 } from './common.js';
import { InProcessBuilder, milestones, type TimedBuild } from './in-process.js';

const log = logger('recording-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = Number(process.env.BENCH_FILES ?? 12);
const TARGET_RATIO = 1.1;
const WAYS = ['session', 'server'] as const;
type Way = (typeof WAYS)[number];

function source(i: number): string {
  // Enough work per compile (~0.1-0.2 s at -O2) that compiles dominate a miss.
  const body = Array.from(
    { length: 30 },
    (_, k) =>
      `double f${String(i)}_${String(k)}(double x) { double s = SALT; for (int j = 0; j < ${String(20 + k)}; j++) s += x * j / (j + ${String(k + 1)}); return s; }`,
  ).join('\n');
  return `#include "salt.h"\n${body}\n`;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

async function writeProject(dir: string, serverSocket: string): Promise<void> {
  const objs = Array.from({ length: FILES }, (_, i) => `f${String(i)}.o`);
  const files: Record<string, string> = {
    'project.conf': 'name: recbench\nmin-version: 2.0\nelement-path: elements\n',
  };
  for (const way of WAYS) {
    files[`elements/${way}.bst`] = [
      'kind: manual',
      'sources:',
      '- kind: local',
      `  path: files/${way}`,
      'environment:',
      '  CC: specbuild-cc gcc',
      `  SPECBUILD_SERVER: unix:${way === 'session' ? '/run/reapi.sock' : serverSocket}`,
      '  SPECBUILD_LINK: "1"',
      '  SPECBUILD_WRAPPER_LOG: "%{build-root}/wrapper.log"',
      ...(way === 'session'
        ? ['sandbox:', '  remote-apis-socket:', '    path: /run/reapi.sock']
        : []),
      'config:',
      '  build-commands:',
      '  - make -j2',
      '  install-commands:',
      '  - install -D -m 644 libcc.so %{install-root}%{libdir}/libcc.so',
      '  - echo "wrapper-log-begin"; cat wrapper.log; echo "wrapper-log-end"',
      '',
    ].join('\n');
    files[`files/${way}/Makefile`] =
      `libcc.so: ${objs.join(' ')}\n\t$(CC) -shared -o $@ ${objs.join(' ')}\n%.o: %.c salt.h\n\t$(CC) -O2 -fPIC -c $< -o $@\n`;
    files[`files/${way}/salt.h`] = '#define SALT 0\n';
    files[`files/${way}/README`] = 'not compiled\n';
    for (let i = 0; i < FILES; i++) files[`files/${way}/f${String(i)}.c`] = source(i);
  }
  await writeFiles(dir, files);
}

interface WrapperRun {
  outcome: string;
  /** The wrapped command's time as the wrapper saw it. */
  ms: number;
}

/** The wrapper's runs, from the log the build printed. */
async function wrapperRuns(
  b: InProcessBuilder,
  build: TimedBuild,
  element: string,
): Promise<WrapperRun[]> {
  const r = build.results.find((x) => x.name === element);
  const logDigest = r?.artifact?.buildLog;
  if (logDigest === undefined) throw new Error(`${element}: no build log`);
  const text = new TextDecoder().decode(await b.stores.cas.readBlob(fromPb(logDigest)));
  const m = /wrapper-log-begin\n([\s\S]*?)wrapper-log-end/.exec(text);
  if (m === null) throw new Error(`${element}: no wrapper log in its build log:\n${text}`);
  return (m[1] ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as WrapperRun);
}

function spread(xs: number[]): { median: number; min: number; max: number } {
  return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-recording-bench-'));
  // Private to this user but traversable by the sandbox's own uid.
  const sockDir = await mkdtemp(join(PACKAGE_ROOT, 'dist', '.bench-'));
  await chmod(sockDir, 0o711);
  const serverSocket = join(sockDir, 'reapi.sock');
  const server = await startCliServer(join(dir, 'server-cache'), {
    listen: `unix:${serverSocket}`,
    jobs: 2,
    args: ['--socket-mode', '666'],
  });
  try {
    const project = join(dir, 'project');
    await writeProject(project, serverSocket);
    const builder = await InProcessBuilder.open(join(dir, 'cache'));
    const times: Record<Way, { miss: number[]; hit: number[] }> = {
      session: { miss: [], hit: [] },
      server: { miss: [], hit: [] },
    };
    /** Each wrapped compile's own time (the wrapper log's ms). */
    const wrapped: Record<Way, { miss: number[]; hit: number[] }> = {
      session: { miss: [], hit: [] },
      server: { miss: [], hit: [] },
    };
    const pairs: { miss: number; hit: number }[] = [];
    // Run 0 warms up (JIT, daemons' first start, the server's first actions).
    for (let run = 0; run <= RUNS; run++) {
      const order = run % 2 === 0 ? WAYS : [...WAYS].reverse();
      for (const way of order) {
        const el = `${way}.bst`;
        await writeFile(join(project, `files/${way}/salt.h`), `#define SALT ${String(run + 1)}\n`);
        const miss = await builder.build(project, [el]);
        const missRuns = await wrapperRuns(builder, miss, el);
        const missOut = missRuns.map((w) => w.outcome);
        if (missOut.length !== FILES + 1 || missOut.some((o) => o !== 'miss'))
          throw new Error(`${way}: expected ${String(FILES + 1)} misses, got ${missOut.join(',')}`);
        await writeFile(join(project, `files/${way}/README`), `run ${String(run)}\n`);
        const hit = await builder.build(project, [el]);
        const hitRuns = await wrapperRuns(builder, hit, el);
        const hitOut = hitRuns.map((w) => w.outcome);
        if (hitOut.length !== FILES + 1 || hitOut.some((o) => o !== 'hit'))
          throw new Error(`${way}: expected ${String(FILES + 1)} hits, got ${hitOut.join(',')}`);
        const span = (b: TimedBuild): number => {
          const m = milestones(b, el);
          return (m.built ?? NaN) - (m.building ?? NaN);
        };
        log(
          `run ${String(run)} ${way}: miss ${(span(miss) / 1000).toFixed(2)} s, hit ${(span(hit) / 1000).toFixed(2)} s`,
        );
        if (run === 0) continue;
        times[way].miss.push(span(miss));
        times[way].hit.push(span(hit));
        wrapped[way].miss.push(...missRuns.map((w) => w.ms));
        wrapped[way].hit.push(...hitRuns.map((w) => w.ms));
      }
      if (run === 0) continue;
      const last = (w: Way, k: 'miss' | 'hit'): number => times[w][k].at(-1) ?? NaN;
      pairs.push({
        miss: last('session', 'miss') / last('server', 'miss'),
        hit: last('session', 'hit') / last('server', 'hit'),
      });
    }
    const m = (w: Way, k: 'miss' | 'hit'): number => median(times[w][k]);
    const missRatio = m('session', 'miss') / m('server', 'miss');
    const hitRatio = m('session', 'hit') / m('server', 'hit');
    const missPairs = spread(pairs.map((p) => p.miss));
    const hitPairs = spread(pairs.map((p) => p.hit));
    console.log(
      JSON.stringify({
        miss_session_s: round2(m('session', 'miss') / 1000),
        miss_server_s: round2(m('server', 'miss') / 1000),
        miss_ratio: round2(missRatio),
        miss_ratio_min: missPairs.min,
        miss_ratio_max: missPairs.max,
        hit_session_s: round2(m('session', 'hit') / 1000),
        hit_server_s: round2(m('server', 'hit') / 1000),
        hit_ratio: round2(hitRatio),
        hit_ratio_min: hitPairs.min,
        hit_ratio_max: hitPairs.max,
        wrapped_miss_ms_session: round2(median(wrapped.session.miss)),
        wrapped_miss_ms_server: round2(median(wrapped.server.miss)),
        wrapped_hit_ms_session: round2(median(wrapped.session.hit)),
        wrapped_hit_ms_server: round2(median(wrapped.server.hit)),
        target_ratio: TARGET_RATIO,
        met: missRatio <= TARGET_RATIO && hitRatio <= TARGET_RATIO,
        actions: FILES + 1,
        runs: RUNS,
      }),
    );
  } finally {
    await server.stop();
    await stopDaemonsUnder(dir);
    await rm(dir, { recursive: true, force: true });
    await rm(sockDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
