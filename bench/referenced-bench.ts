// What referenced speculative actions buy (scenario 5 of the specification):
// codegen generates gen.h with a recorded action after a configure-like
// serial step (2 s, the cores idle), and does not install it; liba extracts
// it and compiles 8 files including it at -O2 (make -j2). codegen's own
// generator script changes (its sources: another weak key, the same recipe
// key). The project is built once with `full`, then rebuilt from copies of
// the same cache: with the stored actions as generated, and with the recipe
// keys of liba's copies of codegen's action cleared (what was stored before:
// the copy is then given up and liba's compiles cannot resolve). Prints one
// JSON line: each rebuild's wall time, liba's build time and figures, over
// BENCH_RUNS pairs (default 3, order alternated).
import { logger, median, round2 } from './common.js';
import { editStoredActions, pairedRebuilds } from './paired-rebuild.js';
import type { RigBuild } from '../test/helpers/build-rig.js';
import { PROJECT_CONF, ProjectRig } from '../test/helpers/project-rig.js';
import { EXEC, importElement, manualElement } from '../test/helpers/scenario.js';

const log = logger('referenced-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FILES = 8;

const genSh = (factor: number): string =>
  `sed -n 's/^#define BASE \\(.*\\)$/#define GEN (\\1 * ${String(factor)})/p' /usr/include/base.h > gen.h\n`;

/** A C file whose -O2 compile takes a while, using GEN. */
function heavy(k: number): string {
  const fns = Array.from(
    { length: 120 },
    (_, j) =>
      `double f${String(k)}_${String(j)}(double x) { double s = 0; for (int i = 0; i < ${String(j + 9)}; i++) s += x * i / (i + ${String(j + 1)}) + GEN; return s; }`,
  ).join('\n');
  return `#include "gen.h"\n${fns}\n`;
}

function project(): Record<string, string> {
  const files: Record<string, string> = {
    'project.conf': PROJECT_CONF,
    'elements/base.bst': importElement('base'),
    'base/base.h': '#define BASE 1\n',
    'elements/codegen.bst': manualElement({
      path: 'codegen',
      buildDepends: ['base.bst'],
      build: [
        'sleep 2',
        `${EXEC} --input gen.sh --input %{includedir}/base.h --output gen.h -- sh gen.sh`,
      ],
      install: [
        'mkdir -p %{install-root}%{datadir}/codegen',
        'tar --mtime=@0 --owner=0 --group=0 --numeric-owner -cf %{install-root}%{datadir}/codegen/gen.tar gen.h',
      ],
    }),
    'codegen/gen.sh': genSh(10),
    'elements/liba.bst': manualElement({
      path: 'liba',
      buildDepends: ['codegen.bst'],
      build: ['tar -xf %{datadir}/codegen/gen.tar', 'make -j2'],
      install: ['install -D -m 644 liba.a %{install-root}%{libdir}/liba.a'],
    }),
    'liba/Makefile': [
      `OBJS = ${Array.from({ length: FILES }, (_, k) => `f${String(k)}.o`).join(' ')}`,
      'liba.a: $(OBJS)',
      '\tar rcs $@ $(OBJS)',
      '%.o: %.c',
      '\t$(CC) -O2 -c $< -o $@',
      '',
    ].join('\n'),
  };
  for (let k = 0; k < FILES; k++) files[`liba/f${String(k)}.c`] = heavy(k);
  return files;
}

/** Clears the recipe keys of liba's copies of other elements' actions (as stored before them). */
function withoutRecipeKeys(dir: string, weakKey: string): Promise<number> {
  return editStoredActions(dir, 'test', 'liba', weakKey, (sa) => {
    let cleared = 0;
    for (const a of sa.actions)
      if (a.element !== '' && a.elementRecipeKey !== '') {
        a.elementRecipeKey = '';
        cleared++;
      }
    return cleared;
  });
}

function figures(r: RigBuild, seconds: number) {
  const res = r.results.find((x) => x.name === 'liba.bst');
  const s = res?.speculative;
  if (s === undefined || r.states['liba.bst'] !== 'built')
    throw new Error(`liba did not build: ${JSON.stringify(r.states)}`);
  return {
    seconds: round2(seconds),
    liba_build_s: round2(((res?.finished ?? 0) - (res?.started ?? 0)) / 1000),
    primed: s.primed,
    hits_primed: s.hits_primed,
    misses: s.misses,
    recall: s.recall === null ? null : round2(s.recall),
    precision: s.precision === null ? null : round2(s.precision),
  };
}

await using rig = await ProjectRig.create(project());
const { rows, stripped: cleared } = await pairedRebuilds({
  rig,
  element: 'liba.bst',
  runs: RUNS,
  log,
  tmpPrefix: 'specbuild-referenced-',
  change: (run) => rig.write({ 'codegen/gen.sh': genSh(10 + run) }),
  strip: withoutRecipeKeys,
  figures,
});
const pick = (v: 'with' | 'without', k: 'seconds' | 'liba_build_s' | 'recall') =>
  rows.map((r) => r[v][k] ?? 0);
const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
console.log(
  JSON.stringify({
    bench: 'referenced',
    runs: rows.length,
    copies_cleared: cleared,
    rebuild_s_with: median(pick('with', 'seconds')),
    rebuild_s_with_range: range(pick('with', 'seconds')),
    rebuild_s_without: median(pick('without', 'seconds')),
    rebuild_s_without_range: range(pick('without', 'seconds')),
    liba_build_s_with: median(pick('with', 'liba_build_s')),
    liba_build_s_without: median(pick('without', 'liba_build_s')),
    recall_with: median(pick('with', 'recall')),
    recall_without: median(pick('without', 'recall')),
    gain: round2(median(pick('without', 'seconds')) / median(pick('with', 'seconds'))),
    runs_detail: rows,
  }),
);
