// Share benchmark: what speculative actions buy a machine that did not
// record them. Machine A builds the rebuild benchmark's project with `full`
// and pushes to a `specbuild server` (its own CAS, action cache and
// executor). Then base's header changes, and machine B, with an empty
// cache, rebuilds it twice, each time against its own copy of that server
// (so that neither run sees the other's results): with `none`, and with
// `full`, priming from the pulled speculative actions. In both, B's
// subactions and primed actions run on the server (remote-execution).
// Prints one JSON line: rebuild_s_none, rebuild_s_full, ratio (and its
// spread over `runs`), precision, recall, primed, and the bytes of priming
// data B pulled.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger, median, round2 } from './common.js';
import { buildTop, ELEMENTS, FILES, writeProject } from './rebuild-project.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { startCliServer, type CliServer } from '../test/helpers/cli-server.js';

const log = logger('share-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

interface Report {
  speculative: {
    primed: number;
    hits_primed: number;
    misses: number;
    precision: number | null;
    recall: number | null;
  };
}

/** One machine: its cache and its configuration (the server as artifact remote and cluster). */
async function machine(dir: string, server: CliServer, push: boolean): Promise<string> {
  await mkdir(join(dir, 'config', 'specbuild'), { recursive: true });
  await writeFile(
    join(dir, 'config', 'specbuild', 'specbuild.yaml'),
    [
      'artifacts:',
      '  servers:',
      `  - url: grpc://${server.address}`,
      `    push: ${String(push)}`,
      'remote-execution:',
      '  jobs: 8',
      '  execution-service:',
      `    url: grpc://${server.address}`,
      '',
    ].join('\n'),
  );
  return dir;
}

function build(
  project: string,
  home: string,
  mode: string,
  report: string,
): { seconds: number; primingBytes: number } {
  const r = buildTop(project, join(home, 'cache'), join(home, 'config'), mode, report);
  let primingBytes = 0;
  for (const m of r.stderr.matchAll(/pulled for priming .* \(\d+ blobs, (\d+) bytes/g))
    primingBytes += Number(m[1]);
  if (/warning/.test(r.stderr)) throw new Error(`build (${mode}) warned:\n${r.stderr}`);
  return { seconds: r.seconds, primingBytes };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-share-bench-'));
  const servers: CliServer[] = [];
  const serve = async (cache: string): Promise<CliServer> => {
    const s = await startCliServer(cache, { jobs: 2 });
    servers.push(s);
    return s;
  };
  try {
    const runs: { none: number; full: number; rep: Report; bytes: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const project = join(dir, `p${run}`);
      await writeProject(project);
      const remote = join(dir, `remote${run}`);
      log(
        `run ${run + 1}/${RUNS}: machine A builds (full) and pushes, ${Object.keys(ELEMENTS).length} elements × ${FILES} files`,
      );
      const s0 = await serve(remote);
      build(project, await machine(join(dir, `a${run}`), s0, true), 'full', join(dir, 'a.json'));
      await s0.stop();
      await writeFile(join(project, 'src/base/version.h'), `#define BASE_VERSION ${run + 2}\n`);
      const times: Record<string, { seconds: number; primingBytes: number }> = {};
      for (const mode of ['none', 'full']) {
        const copy = join(dir, `remote${run}-${mode}`);
        await cp(remote, copy, { recursive: true });
        const s = await serve(copy);
        times[mode] = build(
          project,
          await machine(join(dir, `b${run}-${mode}`), s, false),
          mode,
          join(dir, `${mode}.json`),
        );
        await s.stop();
      }
      const rep = JSON.parse(await readFile(join(dir, 'full.json'), 'utf8')) as Report;
      const none = times.none?.seconds ?? NaN;
      const full = times.full?.seconds ?? NaN;
      const bytes = times.full?.primingBytes ?? 0;
      log(
        `  B rebuild none ${none.toFixed(1)} s, full ${full.toFixed(1)} s; priming data ${bytes} bytes; ${JSON.stringify(rep.speculative)}`,
      );
      runs.push({ none, full, rep, bytes });
      await stopDaemonsUnder(dir);
      for (const d of [`remote${run}`, `remote${run}-none`, `remote${run}-full`, `a${run}`])
        await rm(join(dir, d), { recursive: true, force: true });
      for (const m of ['none', 'full'])
        await rm(join(dir, `b${run}-${m}`), { recursive: true, force: true });
    }
    const ratios = runs.map((r) => r.full / r.none);
    const s = runs[runs.length - 1]?.rep.speculative;
    console.log(
      JSON.stringify({
        rebuild_s_none: round2(median(runs.map((r) => r.none))),
        rebuild_s_full: round2(median(runs.map((r) => r.full))),
        ratio: round2(median(ratios)),
        ratio_min: round2(Math.min(...ratios)),
        ratio_max: round2(Math.max(...ratios)),
        precision: s?.precision == null ? null : round2(s.precision),
        recall: s?.recall == null ? null : round2(s.recall),
        primed: s?.primed ?? 0,
        hits_primed: s?.hits_primed ?? 0,
        misses: s?.misses ?? 0,
        priming_bytes: median(runs.map((r) => r.bytes)),
        runs: RUNS,
      }),
    );
  } finally {
    for (const s of servers) await s.stop();
    await stopDaemonsUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
