// Rebuild benchmark: what speculative actions buy. A generated project (a
// chain and a diamond of elements, each with M C files and a serial
// configure-like step that leaves the cores idle) is built once with `full`;
// then the lowest element's header changes and the project is rebuilt with
// `none` and with `full`, each from a copy of the same starting cache.
// Prints one JSON line: rebuild_s_none, rebuild_s_full, ratio,
// hit_rate_resolvable, precision, recall, primed, wasted (and the spread of
// `runs` repetitions).
import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { logger, median, round2 } from './common.js';
import { cliMain } from '../test/helpers/paths.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';

const log = logger('rebuild-bench');
const FILES = Number(process.env.BENCH_FILES ?? 6);
const CONFIGURE_S = Number(process.env.BENCH_CONFIGURE_S ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** base ← a ← b (chain), b ← left, b ← right, left+right ← top (diamond). */
const ELEMENTS: Record<string, string[]> = {
  base: [],
  a: ['base'],
  b: ['a'],
  left: ['b'],
  right: ['b'],
  top: ['left', 'right'],
};

function source(el: string, i: number, deps: string[]): string {
  // Enough work per compile (~0.2-0.4 s at -O2) that compiles dominate.
  const body = Array.from(
    { length: 60 },
    (_, k) =>
      `double ${el}_f${i}_${k}(double x) { double s = 0; for (int j = 0; j < ${30 + k}; j++) s += x * j / (j + ${k + 1}); return s + BASE_VERSION; }`,
  ).join('\n');
  const version = el === 'base' ? '#include "version.h"' : '#include <base/version.h>';
  const includes = [version, ...deps.map((d) => `#include <${d}/api.h>`)].join('\n');
  return `${includes}\n${body}\n`;
}

async function writeProject(dir: string): Promise<void> {
  const files: Record<string, string> = {
    'project.conf': [
      'name: bench',
      'min-version: 2.0',
      'element-path: elements',
      'environment:',
      '  CC: specbuild-cc gcc',
      '  SPECBUILD_SERVER: unix:/run/reapi.sock',
      '  SPECBUILD_LINK: "1"',
      'sandbox:',
      '  remote-apis-socket:',
      '    path: /run/reapi.sock',
      '',
    ].join('\n'),
  };
  for (const [el, deps] of Object.entries(ELEMENTS)) {
    const objs = Array.from({ length: FILES }, (_, i) => `f${i}.o`);
    files[`elements/${el}.bst`] = [
      'kind: manual',
      ...(deps.length > 0 ? ['depends:', ...deps.map((d) => `- ${d}.bst`)] : []),
      'sources:',
      '- kind: local',
      `  path: src/${el}`,
      'config:',
      '  configure-commands:',
      `  - sleep ${CONFIGURE_S}`,
      '  build-commands:',
      '  - make -j2',
      '  install-commands:',
      `  - install -D -m 644 api.h %{install-root}%{includedir}/${el}/api.h`,
      ...(el === 'base'
        ? ['  - install -D -m 644 version.h %{install-root}%{includedir}/base/version.h']
        : []),
      `  - install -D -m 644 lib${el}.so %{install-root}%{libdir}/lib${el}.so`,
      '',
    ].join('\n');
    files[`src/${el}/Makefile`] =
      `lib${el}.so: ${objs.join(' ')}\n\t$(CC) -shared -o $@ ${objs.join(' ')}\n%.o: %.c\n\t$(CC) -O2 -fPIC -c $< -o $@\n`;
    files[`src/${el}/api.h`] = `/* ${el} */\n#define ${el.toUpperCase()}_API 1\n`;
    for (let i = 0; i < FILES; i++) files[`src/${el}/f${i}.c`] = source(el, i, deps);
  }
  files['src/base/version.h'] = '#define BASE_VERSION 1\n';
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

interface Report {
  elements: { name: string; state: string; speculative: Record<string, number | null> | null }[];
  speculative: {
    primed: number;
    hits_primed: number;
    hits_cached: number;
    misses: number;
    precision: number | null;
    recall: number | null;
    unchanged: number;
  };
}

function build(project: string, cache: string, mode: string, report: string): number {
  const t = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      cliMain,
      '-C',
      project,
      '--builders',
      '2',
      'build',
      '--speculative-actions',
      mode,
      '--report',
      report,
      'top.bst',
    ],
    {
      env: {
        ...process.env,
        XDG_CACHE_HOME: cache,
        XDG_CONFIG_HOME: join(cache, 'no-config'),
        CI: 'true',
      },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`build (${mode}) failed:\n${r.stderr}\n${r.stdout}`);
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-rebuild-bench-'));
  try {
    const runs: { none: number; full: number; rep: Report }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const project = join(dir, `p${run}`);
      await writeProject(project);
      const start = join(dir, `cache${run}`);
      log(
        `run ${run + 1}/${RUNS}: first build (full), ${Object.keys(ELEMENTS).length} elements × ${FILES} files`,
      );
      build(project, start, 'full', join(dir, 'first.json'));
      await writeFile(join(project, 'src/base/version.h'), `#define BASE_VERSION ${run + 2}\n`);
      const none = join(dir, `none${run}`);
      const full = join(dir, `full${run}`);
      await cp(start, none, { recursive: true });
      await cp(start, full, { recursive: true });
      const tNone = build(project, none, 'none', join(dir, 'none.json'));
      const tFull = build(project, full, 'full', join(dir, 'full.json'));
      const rep = JSON.parse(await readFile(join(dir, 'full.json'), 'utf8')) as Report;
      log(
        `  rebuild none ${tNone.toFixed(1)} s, full ${tFull.toFixed(1)} s; ${JSON.stringify(rep.speculative)}`,
      );
      for (const e of rep.elements) {
        const x = e.speculative;
        log(
          `    ${e.name}: ${e.state}${x === null ? '' : ` primed ${x.primed} hits ${x.hits_primed}+${x.hits_cached} misses ${x.misses} deferred ${x.deferred} unresolved ${x.unresolved}`}`,
        );
      }
      runs.push({ none: tNone, full: tFull, rep });
      for (const c of [start, none, full]) {
        await stopDaemonsUnder(c);
        await rm(c, { recursive: true, force: true });
      }
    }
    const last = runs[runs.length - 1]?.rep.speculative;
    const ratios = runs.map((r) => r.full / r.none);
    const s = last ?? {
      primed: 0,
      hits_primed: 0,
      hits_cached: 0,
      misses: 0,
      precision: null,
      recall: null,
      unchanged: 0,
    };
    // Actions whose every input resolved (primed or unchanged): each should be a hit in the build.
    const resolvable = s.primed + s.unchanged;
    console.log(
      JSON.stringify({
        rebuild_s_none: round2(median(runs.map((r) => r.none))),
        rebuild_s_full: round2(median(runs.map((r) => r.full))),
        ratio: round2(median(ratios)),
        ratio_min: round2(Math.min(...ratios)),
        ratio_max: round2(Math.max(...ratios)),
        hit_rate_resolvable:
          resolvable === 0 ? null : round2((s.hits_primed + s.hits_cached) / resolvable),
        precision: s.precision === null ? null : round2(s.precision),
        recall: s.recall === null ? null : round2(s.recall),
        primed: s.primed,
        wasted: s.primed === 0 || s.precision === null ? 0 : round2(1 - s.precision),
        misses: s.misses,
        runs: RUNS,
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
