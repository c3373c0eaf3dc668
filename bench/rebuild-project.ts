// The project of the rebuild and share benchmarks: a chain and a diamond
// of elements (base ← a ← b, b ← left, b ← right, left+right ← top), each
// with FILES C files compiled at -O2 through specbuild-cc and linked into a
// shared library, and a serial configure-like step that leaves the cores
// idle. Every file includes base's version.h, which the benchmarks change.
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cliMain } from '../test/helpers/paths.js';

export const FILES = Number(process.env.BENCH_FILES ?? 6);
export const CONFIGURE_S = Number(process.env.BENCH_CONFIGURE_S ?? 1);
/**
 * BENCH_COSTS=varied: compiles of widely varying cost, for priming's order
 * (issue 13, part 3): the first file of each element about 7 times the
 * default's work, the others two thirds of it (run it with BENCH_FILES=12:
 * the heavy one then finishes last in the recorded order).
 */
export const VARIED = process.env.BENCH_COSTS === 'varied';
/**
 * BENCH_BUILD_JOBS=N: each element's make runs -jN and N elements build at
 * once (default 2 and 2). With 1, the builds take one core and leave the
 * other to priming: slots the builds do not use, as on a cluster.
 */
export const BUILD_JOBS = Number(process.env.BENCH_BUILD_JOBS ?? 2);
/** BENCH_HEAVY=last (with varied costs): the heavy file is each element's last, not its first. */
const HEAVY_LAST = process.env.BENCH_HEAVY === 'last';

/** base ← a ← b (chain), b ← left, b ← right, left+right ← top (diamond). */
export const ELEMENTS: Record<string, string[]> = {
  base: [],
  a: ['base'],
  b: ['a'],
  left: ['b'],
  right: ['b'],
  top: ['left', 'right'],
};

function source(el: string, i: number, deps: string[]): string {
  // Enough work per compile (~0.2-0.4 s at -O2) that compiles dominate.
  const heavy = HEAVY_LAST ? i === FILES - 1 : i === 0;
  const length = VARIED ? (heavy ? 400 : 40) : 60;
  const body = Array.from(
    { length },
    (_, k) =>
      `double ${el}_f${i}_${k}(double x) { double s = 0; for (int j = 0; j < ${30 + k}; j++) s += x * j / (j + ${k + 1}); return s + BASE_VERSION; }`,
  ).join('\n');
  const version = el === 'base' ? '#include "version.h"' : '#include <base/version.h>';
  const includes = [version, ...deps.map((d) => `#include <${d}/api.h>`)].join('\n');
  return `${includes}\n${body}\n`;
}

export async function writeProject(dir: string): Promise<void> {
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
      `  - make -j${String(BUILD_JOBS)}`,
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

/**
 * `specbuild --builders 2 build --speculative-actions MODE --report REPORT
 * top.bst` in `project`, with the cache under `cacheHome` and the user
 * configuration under `configHome`: its wall time and what it printed.
 */
export function buildTop(
  project: string,
  cacheHome: string,
  configHome: string,
  mode: string,
  report: string,
): { seconds: number; stderr: string } {
  const t = performance.now();
  const r = spawnSync(
    process.execPath,
    [
      cliMain,
      '-C',
      project,
      '--builders',
      String(BUILD_JOBS),
      'build',
      '--speculative-actions',
      mode,
      '--report',
      report,
      'top.bst',
    ],
    {
      env: { ...process.env, XDG_CACHE_HOME: cacheHome, XDG_CONFIG_HOME: configHome, CI: 'true' },
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`build (${mode}) failed:\n${r.stderr}\n${r.stdout}`);
  return { seconds: (performance.now() - t) / 1000, stderr: r.stderr };
}
