// What BUILD_TREE overlays buy on real code: libpng 1.6.39 (Debian's source
// archive) as an element over a zlib 1.2.13 element. libpng's make writes
// pnglibconf.h from the installed zlib.h (its ZLIB_VERNUM) with a script
// that is not a recorded action, and every libpng compile includes it. The
// project is built once with `full`; zlib.h's version is bumped; libpng is
// then rebuilt twice from copies of the same cache: with the stored
// speculative actions as generated (BUILD_TREE overlays on pnglibconf.h and
// the other files its build writes), and with those overlays removed, which
// is what generation stored before they existed. Prints one JSON line with
// libpng's figures for both (primed, primed hits, misses, recall, precision)
// and each rebuild's wall time, over BENCH_RUNS rebuild pairs (default 1).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { OverlayType } from '../src/speculative/index.js';
import { logger, median, round2 } from './common.js';
import { editStoredActions, pairedRebuilds } from './paired-rebuild.js';
import type { RigBuild } from '../test/helpers/build-rig.js';
import { debianTarball, DEBIAN_SRC } from '../test/helpers/debian-src.js';
import { ProjectRig } from '../test/helpers/project-rig.js';
import { SOCKET_ENV } from '../test/helpers/scenario.js';

const log = logger('generated-header-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const SRC_DIR = DEBIAN_SRC;
const tarball = (re: RegExp) =>
  debianTarball(
    re,
    'run bash scripts/install-test-deps.sh (zlib) and apt-get source --download-only libpng1.6',
  );

function project(zlibH: string): Record<string, string> {
  const z = tarball(/^zlib_.*\.orig\.tar\./);
  const p = tarball(/^libpng1\.6_.*\.orig\.tar\./);
  return {
    'project.conf': `name: real\nmin-version: 2.0\nelement-path: elements\naliases:\n  debian: file://${SRC_DIR}/\n`,
    'elements/zlib.bst': [
      'kind: manual',
      'sources:',
      '- kind: tar',
      `  url: debian:${z.name}`,
      `  ref: ${z.sha256}`,
      '- kind: local',
      '  path: upstream',
      ...SOCKET_ENV,
      'config:',
      '  configure-commands:',
      '  - ./configure --static --prefix=%{prefix}',
      '  build-commands:',
      '  - make -j2 libz.a',
      '  install-commands:',
      '  - install -D -m 644 zlib.h %{install-root}%{includedir}/zlib.h',
      '  - install -D -m 644 zconf.h %{install-root}%{includedir}/zconf.h',
      '  - install -D -m 644 libz.a %{install-root}%{libdir}/libz.a',
      '',
    ].join('\n'),
    'elements/libpng.bst': [
      'kind: manual',
      'build-depends:',
      '- zlib.bst',
      'sources:',
      '- kind: tar',
      `  url: debian:${p.name}`,
      `  ref: ${p.sha256}`,
      ...SOCKET_ENV,
      'config:',
      '  configure-commands:',
      '  - ./configure --disable-shared --prefix=%{prefix}',
      '  build-commands:',
      '  - make -j2 libpng16.la',
      '  install-commands:',
      '  - install -D -m 644 png.h %{install-root}%{includedir}/png.h',
      '  - install -D -m 644 .libs/libpng16.a %{install-root}%{libdir}/libpng16.a',
      '',
    ].join('\n'),
    'upstream/zlib.h': zlibH,
  };
}

/** Removes BUILD_TREE overlays from libpng's stored actions in the cache at `dir` (as stored before they existed). */
function withoutBuildTree(dir: string, weakKey: string): Promise<number> {
  return editStoredActions(dir, 'real', 'libpng', weakKey, (sa) => {
    let removed = 0;
    for (const a of sa.actions) {
      const before = a.overlays.length;
      a.overlays = a.overlays.filter((o) => o.type !== OverlayType.BUILD_TREE);
      removed += before - a.overlays.length;
    }
    return removed;
  });
}

function figures(r: RigBuild, seconds: number) {
  const s = r.results.find((x) => x.name === 'libpng.bst')?.speculative;
  if (s === undefined || r.states['libpng.bst'] !== 'built')
    throw new Error(`libpng did not build: ${JSON.stringify(r.states)}`);
  return {
    seconds: round2(seconds),
    primed: s.primed,
    hits_primed: s.hits_primed,
    hits_cached: s.hits_cached,
    misses: s.misses,
    recall: s.recall === null ? null : round2(s.recall),
    precision: s.precision === null ? null : round2(s.precision),
  };
}

const z = tarball(/^zlib_.*\.orig\.tar\./);
const original = execFileSync('tar', ['-xOf', join(SRC_DIR, z.name), `${z.topDir}/zlib.h`], {
  encoding: 'utf8',
});
await using rig = await ProjectRig.create(project(original));
const { rows, stripped: overlaysRemoved } = await pairedRebuilds({
  rig,
  element: 'libpng.bst',
  runs: RUNS,
  log,
  tmpPrefix: 'specbuild-genheader-',
  // Each pair: a new zlib version.
  change: (vernum) =>
    rig.write({
      'upstream/zlib.h': original
        .replace(/#define ZLIB_VERSION "([^"]+)"/, `#define ZLIB_VERSION "$1.${String(vernum)}"`)
        .replace(
          /#define ZLIB_VERNUM 0x([0-9a-f]+)/,
          (_, v: string) => `#define ZLIB_VERNUM 0x${(parseInt(v, 16) + vernum).toString(16)}`,
        ),
    }),
  strip: withoutBuildTree,
  figures,
});
const pick = (v: 'with' | 'without', k: 'recall' | 'seconds' | 'hits_primed' | 'misses') =>
  rows.map((r) => r[v][k] ?? 0);
console.log(
  JSON.stringify({
    bench: 'generated-header',
    project: 'libpng 1.6.39 over zlib 1.2.13, zlib.h version bump',
    runs: rows.length,
    build_tree_overlays_removed: overlaysRemoved,
    recall_with: median(pick('with', 'recall')),
    recall_without: median(pick('without', 'recall')),
    hits_primed_with: median(pick('with', 'hits_primed')),
    hits_primed_without: median(pick('without', 'hits_primed')),
    misses_with: median(pick('with', 'misses')),
    misses_without: median(pick('without', 'misses')),
    rebuild_s_with: median(pick('with', 'seconds')),
    rebuild_s_without: median(pick('without', 'seconds')),
    runs_detail: rows,
  }),
);
