// Element benchmark: what one element build costs beyond its commands, warm.
// A `manual` element with ten `import` dependencies (cached) and a local
// source of three small files, whose one command copies a file, is rebuilt
// again and again in this process (a salt file of its sources changes each
// time, so it is never cached), through the real scheduler, builder and
// sandbox; a twin declares a remote-apis-socket, so its builds also start a
// recording session. The overhead is the scheduler's wall time for the
// element (keys, lookups, sources, staging, sandbox, capture, artifact)
// minus what the same command script costs run by `sh` on the host.
// Prints one JSON line: medians, min/max, the phases of the plain element's
// build, and the target (≤ 100 ms).
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { logger, median, round2 } from './common.js';
import { InProcessBuilder, milestones } from './in-process.js';

const log = logger('element-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);
const DEPS = 10;
const TARGET_MS = 100;
const COMMAND = 'cp data.txt %{install-root}/data.txt';

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

async function writeProject(dir: string): Promise<void> {
  const deps = Array.from({ length: DEPS }, (_, i) => `d${String(i).padStart(2, '0')}`);
  const files: Record<string, string> = {
    'project.conf': 'name: elbench\nmin-version: 2.0\nelement-path: elements\n',
    'files/e/data.txt': 'data\n',
    'files/e/README': 'the element under test\n',
    'files/e/salt.txt': 'salt 0\n',
  };
  for (const d of deps) {
    files[`elements/${d}.bst`] = [
      'kind: import',
      'sources:',
      '- kind: local',
      `  path: files/${d}`,
      'config:',
      `  target: /deps/${d}`,
      '',
    ].join('\n');
    files[`files/${d}/lib.txt`] = `${d}\n`;
    files[`files/${d}/include/${d}.h`] = `#define ${d.toUpperCase()} 1\n`;
  }
  const element = (session: boolean): string =>
    [
      'kind: manual',
      'depends:',
      ...deps.map((d) => `- ${d}.bst`),
      'sources:',
      '- kind: local',
      '  path: files/e',
      ...(session ? ['sandbox:', '  remote-apis-socket:', '    path: /run/reapi.sock'] : []),
      'config:',
      '  install-commands:',
      `  - ${COMMAND}`,
      '',
    ].join('\n');
  files['elements/plain.bst'] = element(false);
  files['elements/session.bst'] = element(true);
  await writeFiles(dir, files);
}

/** The builder's script for the same command (run.sh calling 001.sh), run by `sh` on the host. */
async function hostCommandMs(dir: string): Promise<number> {
  await writeFiles(dir, {
    'data.txt': 'data\n',
    'out/.keep': '',
    '001.sh': `${COMMAND.replace('%{install-root}', 'out')}\n`,
    'run.sh': "exec 2>&1\necho '[specbuild] install-commands'\nsh -e 001.sh\n",
  });
  const times: number[] = [];
  for (let i = 0; i < RUNS + WARMUP; i++) {
    const t = performance.now();
    const r = spawnSync('sh', ['-e', 'run.sh'], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`host command failed: ${r.stdout}${r.stderr}`);
    if (i >= WARMUP) times.push(performance.now() - t);
  }
  return median(times);
}

function spread(xs: number[]): { median: number; min: number; max: number } {
  return { median: round2(median(xs)), min: round2(Math.min(...xs)), max: round2(Math.max(...xs)) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-element-bench-'));
  try {
    const project = join(dir, 'project');
    await writeProject(project);
    const builder = await InProcessBuilder.open(join(dir, 'cache'));
    const first = await builder.build(project, ['plain.bst', 'session.bst']);
    log(`first build (${first.results.length} elements) ${first.ms.toFixed(0)} ms`);

    const times: Record<'plain' | 'session', number[]> = { plain: [], session: [] };
    const phases: Record<string, number>[] = [];
    for (let i = 1; i <= WARMUP + RUNS; i++) {
      await writeFile(join(project, 'files/e/salt.txt'), `salt ${String(i)}\n`);
      for (const v of ['plain', 'session'] as const) {
        const b = await builder.build(project, [`${v}.bst`]);
        const built = b.results.filter((r) => r.state === 'built').map((r) => r.name);
        if (built.join() !== `${v}.bst`)
          throw new Error(`expected ${v}.bst built, got ${built.join()}`);
        if (i <= WARMUP) continue;
        times[v].push(b.ms);
        if (v === 'plain') {
          const m = milestones(b, 'plain.bst');
          const at = (k: string): number => m[k] ?? NaN;
          phases.push({
            before_build: at('building'),
            stage: at('configure-commands') - at('staging'),
            sandbox: at('capture') - at('configure-commands'),
            capture_store: at('built') - at('capture'),
          });
        }
      }
      if (i > WARMUP)
        log(
          `run ${String(i - WARMUP)}: plain ${times.plain.at(-1)?.toFixed(1) ?? ''} ms, session ${times.session.at(-1)?.toFixed(1) ?? ''} ms`,
        );
    }
    const host = await hostCommandMs(join(dir, 'host'));
    const plain = spread(times.plain.map((t) => t - host));
    const session = spread(times.session.map((t) => t - host));
    const phase = (k: string): number => round2(median(phases.map((p) => p[k] ?? NaN)));
    console.log(
      JSON.stringify({
        overhead_ms: plain.median,
        overhead_ms_min: plain.min,
        overhead_ms_max: plain.max,
        overhead_session_ms: session.median,
        overhead_session_ms_min: session.min,
        overhead_session_ms_max: session.max,
        element_ms: round2(median(times.plain)),
        element_session_ms: round2(median(times.session)),
        host_command_ms: round2(host),
        phase_before_build_ms: phase('before_build'),
        phase_stage_ms: phase('stage'),
        phase_sandbox_ms: phase('sandbox'),
        phase_capture_store_ms: phase('capture_store'),
        target_overhead_ms: TARGET_MS,
        met: plain.median <= TARGET_MS && session.median <= TARGET_MS,
        deps: DEPS,
        runs: RUNS,
        warmup: WARMUP,
      }),
    );
  } finally {
    await stopDaemonsUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
