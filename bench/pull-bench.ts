// Pull benchmark: what a machine moves to prime a 200-element project it did
// not build. Machine A builds a generated project of ELEMENTS elements (each
// a few compiles through specbuild-cc, depending on base and on one or two
// lower elements, UNITS compiles each) with `full` and pushes to a `specbuild server`. Then
// base's header changes, so every other element keeps its weak key and
// misses its strong key, and machine B, with an empty cache, pulls each
// element's weak-key record and priming data (as `specbuild build` does
// before building): once as for priming on that server's cluster (no input
// files or results) and once as for priming here (with them). Prints one
// JSON line: the time and bytes of each pull, against the bytes of the
// artifacts themselves.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Limiter } from '../src/core/index.js';
import {
  artifactBlobs,
  ArtifactCache,
  LocalActionCache,
  LocalCas,
  RefStore,
} from '../src/cas/index.js';
import { loadGraph, loadProject, normalName } from '../src/project/index.js';
import { hostPlatform, TOOLCHAIN_PROPERTY, digestKey } from '../src/reapi/index.js';
import { RemoteEndpoint } from '../src/remote/index.js';
import { resolveKeys } from '../src/scheduler/index.js';
import { RemoteShare, type ShareEvent } from '../src/speculative/index.js';
import { logger, median, round2 } from './common.js';
import { cliMain } from '../test/helpers/paths.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { startCliServer } from '../test/helpers/cli-server.js';

const log = logger('pull-bench');
const ELEMENTS = Number(process.env.BENCH_ELEMENTS ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Compiles per element. */
const UNITS = Number(process.env.BENCH_UNITS ?? 3);

async function writeProject(dir: string): Promise<void> {
  const files: Record<string, string> = {
    'project.conf': [
      'name: pull',
      'min-version: 2.0',
      'element-path: elements',
      'environment:',
      '  CC: specbuild-cc gcc',
      '  SPECBUILD_SERVER: unix:/run/reapi.sock',
      'sandbox:',
      '  remote-apis-socket:',
      '    path: /run/reapi.sock',
      '',
    ].join('\n'),
    'src/e0/e0.h': '#define BASE_VERSION 1\nint e0(void);\n',
  };
  const deps = (i: number): number[] =>
    i === 0
      ? []
      : [...new Set([0, Math.floor(i / 2), Math.floor((i * 7) / 10)])].filter((d) => d < i);
  for (let i = 0; i < ELEMENTS; i++) {
    const ds = deps(i);
    const units = Array.from({ length: UNITS }, (_, u) => `e${i}_${u}`);
    files[`elements/e${i}.bst`] = [
      'kind: manual',
      ...(ds.length > 0 ? ['depends:', ...ds.map((d) => `- e${d}.bst`)] : []),
      'sources:',
      '- kind: local',
      `  path: src/e${i}`,
      'config:',
      '  build-commands:',
      ...units.map((u) => `  - $CC -O2 -c ${u}.c -o ${u}.o`),
      '  install-commands:',
      `  - install -D -m 644 e${i}.h %{install-root}%{includedir}/e${i}/e${i}.h`,
      ...units.map((u) => `  - install -D -m 644 ${u}.o %{install-root}%{libdir}/e${i}/${u}.o`),
      '',
    ].join('\n');
    if (i > 0) files[`src/e${i}/e${i}.h`] = `int e${i}(void);\n`;
    for (const u of units) {
      // A few dozen small functions: an object of some kilobytes, as real ones are.
      const body = Array.from(
        { length: 40 },
        (_, k) =>
          `double ${u}_f${k}(double x) { double s = 0; for (int j = 0; j < ${10 + k}; j++) s += x * j / (j + ${k + 1}); return s + BASE_VERSION; }`,
      ).join('\n');
      files[`src/e${i}/${u}.c`] = [
        i === 0 ? '#include "e0.h"' : '#include <e0/e0.h>',
        ...ds.filter((d) => d !== 0).map((d) => `#include <e${d}/e${d}.h>`),
        ...(i === 0 ? [] : [`#include "e${i}.h"`]),
        body,
        !u.endsWith('_0')
          ? ''
          : `int e${i}(void) { return ${[...ds.map((d) => `e${d}()`), 'BASE_VERSION'].join(' + ')}; }`,
        '',
      ].join('\n');
    }
  }
  files['elements/all.bst'] = [
    'kind: stack',
    'depends:',
    ...Array.from({ length: ELEMENTS }, (_, i) => `- e${i}.bst`),
    '',
  ].join('\n');
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

async function openCache(dir: string) {
  const cas = await LocalCas.open({ dir });
  const ac = await LocalActionCache.open(dir, cas);
  const artifacts = new ArtifactCache(cas, new RefStore(join(dir, 'refs', 'artifacts')));
  return { cas, ac, artifacts };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-pull-bench-'));
  const server = await startCliServer(join(dir, 'remote'), { jobs: 2 });
  try {
    const project = join(dir, 'project');
    await writeProject(project);
    const home = join(dir, 'a');
    await mkdir(join(home, 'config', 'specbuild'), { recursive: true });
    await writeFile(
      join(home, 'config', 'specbuild', 'specbuild.yaml'),
      `artifacts:\n  servers:\n  - url: grpc://${server.address}\n    push: true\n`,
    );
    log(`machine A builds ${ELEMENTS} elements (full) and pushes`);
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [cliMain, '-C', project, 'build', '--speculative-actions', 'full', 'all.bst'],
      {
        env: {
          ...process.env,
          XDG_CACHE_HOME: join(home, 'cache'),
          XDG_CONFIG_HOME: join(home, 'config'),
          CI: 'true',
        },
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`build failed:\n${r.stderr}\n${r.stdout}`);
    log(`  built and pushed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // The artifacts' own size: every blob of every artifact (distinct).
    const p0 = await loadProject(project, {});
    if (!p0.ok) throw new Error('the project does not load');
    const g0 = await loadGraph(p0.value, ['all.bst']);
    if (!g0.ok) throw new Error('the graph does not load');
    const toolchain = (await hostPlatform()).get(TOOLCHAIN_PROPERTY) ?? '';
    const a = await openCache(join(home, 'cache', 'specbuild'));
    const keysA = await resolveKeys(
      g0.value,
      { project: p0.value, sourceDir: join(dir, 'sources-a'), cas: a.cas },
      toolchain,
    );
    const artifactSet = new Map<string, number>();
    for (const n of g0.value.order) {
      const k = keysA.get(n.name);
      const art =
        k === undefined
          ? undefined
          : await a.artifacts.lookup('pull', normalName(n.name), k.strong);
      if (art === undefined) throw new Error(`${n.name} is not cached on A`);
      for (const d of await artifactBlobs(a.cas, art)) artifactSet.set(digestKey(d), d.size);
    }
    const artifactBytes = [...artifactSet.values()].reduce((x, y) => x + y, 0);

    await writeFile(join(project, 'src/e0/e0.h'), '#define BASE_VERSION 2\nint e0(void);\n');
    const p = await loadProject(project, {});
    if (!p.ok) throw new Error('the project does not load');
    const g = await loadGraph(p.value, ['all.bst']);
    if (!g.ok) throw new Error('the graph does not load');

    const results: Record<
      string,
      { seconds: number[]; bytes: number; blobs: number; pulled: number }
    > = {};
    for (let run = 0; run < RUNS; run++) {
      for (const [label, filesNeeded] of [
        ['cluster', false],
        ['local', true],
      ] as const) {
        const cacheDir = join(dir, `b-${label}-${run}`);
        const b = await openCache(cacheDir);
        const keys = await resolveKeys(
          g.value,
          { project: p.value, sourceDir: join(cacheDir, 'sources'), cas: b.cas },
          toolchain,
        );
        const events: ShareEvent[] = [];
        const share = new RemoteShare({
          remotes: [
            {
              url: server.address,
              push: false,
              connect: () => RemoteEndpoint.connect({ target: server.address }),
              filesNeeded,
            },
          ],
          project: 'pull',
          artifacts: b.artifacts,
          ac: b.ac,
          priming: true,
          events: (e) => events.push(e),
        });
        await share.open();
        const limit = new Limiter(8);
        const t = performance.now();
        await Promise.all(
          g.value.order.map((n) =>
            limit.run(async () => {
              const k = keys.get(n.name);
              if (k !== undefined) await share.pullPriming(n.name, k.weak);
            }),
          ),
        );
        const seconds = (performance.now() - t) / 1000;
        share.close();
        const pulled = events.filter((e) => e.op === 'pull-priming' && e.outcome === 'pulled');
        const failed = events.filter((e) => e.outcome === 'failed' || e.outcome === 'unreachable');
        if (failed.length > 0) throw new Error(`pull failed: ${JSON.stringify(failed[0])}`);
        const res = (results[label] ??= { seconds: [], bytes: 0, blobs: 0, pulled: 0 });
        res.seconds.push(seconds);
        res.bytes = pulled.reduce((x, e) => x + (e.bytes ?? 0), 0);
        res.blobs = pulled.reduce((x, e) => x + (e.blobs ?? 0), 0);
        res.pulled = pulled.length;
        log(
          `  run ${run + 1}/${RUNS} ${label}: ${pulled.length} records pulled for priming in ${seconds.toFixed(2)} s, ${res.blobs} blobs, ${res.bytes} bytes`,
        );
        await rm(cacheDir, { recursive: true, force: true });
      }
    }
    const c = results.cluster;
    const l = results.local;
    console.log(
      JSON.stringify({
        elements: ELEMENTS,
        records_pulled: c?.pulled ?? 0,
        pull_s: round2(median(c?.seconds ?? [])),
        pull_s_min: round2(Math.min(...(c?.seconds ?? []))),
        pull_s_max: round2(Math.max(...(c?.seconds ?? []))),
        pull_bytes: c?.bytes ?? 0,
        pull_s_local_exec: round2(median(l?.seconds ?? [])),
        pull_bytes_local_exec: l?.bytes ?? 0,
        artifact_bytes: artifactBytes,
        fraction: round2((c?.bytes ?? 0) / artifactBytes),
        fraction_local_exec: round2((l?.bytes ?? 0) / artifactBytes),
        runs: RUNS,
      }),
    );
  } finally {
    await server.stop();
    await stopDaemonsUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
