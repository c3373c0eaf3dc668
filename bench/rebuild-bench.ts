// Rebuild benchmark: what speculative actions buy. A generated project (a
// chain and a diamond of elements, each with M C files and a serial
// configure-like step that leaves the cores idle) is built once with `full`;
// then the lowest element's header changes and the project is rebuilt with
// `none` and with `full`, each from a copy of the same starting cache.
// Prints one JSON line: rebuild_s_none, rebuild_s_full, ratio,
// hit_rate_resolvable, precision, recall, primed, wasted (and the spread of
// `runs` repetitions). With BENCH_COSTS=varied (compiles of widely varying
// cost) it also rebuilds with `full` and scheduler.speculative-actions-order
// cost (longest recorded first, in build order), against the default
// (recorded): rebuild_s_full_cost, order_gain (recorded ÷ cost: above 1 when
// the order gains) and the wasted work of each. With BENCH_BUDGET=SECONDS
// it also rebuilds with `full` under scheduler.speculative-actions-budget:
// rebuild_s_full_budget, with what that run primed and skipped.
// BENCH_BUILD_JOBS=1 builds one element at a time with make -j1, leaving a
// core to priming (as a cluster's workers would); BENCH_HEAVY=last puts each
// element's heavy file last in its recorded order (see rebuild-project.ts).
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger, median, round2 } from './common.js';
import { buildTop, ELEMENTS, FILES, VARIED, writeProject } from './rebuild-project.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';

const log = logger('rebuild-bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** BENCH_BUDGET: seconds of scheduler.speculative-actions-budget for a further variant. */
const BUDGET =
  process.env.BENCH_BUDGET === undefined ? undefined : Number(process.env.BENCH_BUDGET);

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
    skipped?: number;
  };
}

function build(
  project: string,
  cache: string,
  mode: string,
  report: string,
  config = join(cache, 'no-config'),
): number {
  return buildTop(project, cache, config, mode, report).seconds;
}

/** An XDG_CONFIG_HOME at `home` whose specbuild.yaml is `text`. */
async function userConfig(home: string, text: string): Promise<string> {
  await mkdir(join(home, 'specbuild'), { recursive: true });
  await writeFile(join(home, 'specbuild', 'specbuild.yaml'), text);
  return home;
}

/** Primed actions no build used, from a report. */
function wastedOf(rep: Report): number {
  const s = rep.speculative;
  return s.precision === null ? 0 : Math.round(s.primed * (1 - s.precision));
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-rebuild-bench-'));
  try {
    const runs: {
      none: number;
      full: number;
      rep: Report;
      cost?: number;
      costRep?: Report;
      budget?: number;
      budgetRep?: Report;
    }[] = [];
    // The user configurations of the budget and cost-order variants.
    const budgetConfig = await userConfig(
      join(dir, 'config-budget'),
      `scheduler:\n  speculative-actions-budget: ${String(BUDGET ?? 0)}\n`,
    );
    const costConfig = await userConfig(
      join(dir, 'config-cost'),
      'scheduler:\n  speculative-actions-order: cost\n',
    );
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
      /** A further `full` rebuild from a copy of the start, under `config`. */
      const variant = async (
        name: string,
        config: string,
      ): Promise<{ seconds: number; rep: Report }> => {
        const cache = join(dir, `${name}${run}`);
        await cp(start, cache, { recursive: true });
        const seconds = build(project, cache, 'full', join(dir, `${name}.json`), config);
        const r = JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as Report;
        log(`  rebuild full, ${name}: ${seconds.toFixed(1)} s; ${JSON.stringify(r.speculative)}`);
        await stopDaemonsUnder(cache);
        await rm(cache, { recursive: true, force: true });
        return { seconds, rep: r };
      };
      const costRun = VARIED ? await variant('cost', costConfig) : undefined;
      for (const e of rep.elements) {
        const x = e.speculative;
        log(
          `    ${e.name}: ${e.state}${x === null ? '' : ` primed ${x.primed} hits ${x.hits_primed}+${x.hits_cached} misses ${x.misses} deferred ${x.deferred} unresolved ${x.unresolved}`}`,
        );
      }
      const budgetRun = BUDGET !== undefined ? await variant('budget', budgetConfig) : undefined;
      runs.push({
        none: tNone,
        full: tFull,
        rep,
        cost: costRun?.seconds,
        costRep: costRun?.rep,
        budget: budgetRun?.seconds,
        budgetRep: budgetRun?.rep,
      });
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
        ...(VARIED
          ? {
              rebuild_s_full_cost: round2(median(runs.map((r) => r.cost ?? NaN))),
              order_gain: round2(median(runs.map((r) => r.full / (r.cost ?? NaN)))),
              order_gain_min: round2(Math.min(...runs.map((r) => r.full / (r.cost ?? NaN)))),
              order_gain_max: round2(Math.max(...runs.map((r) => r.full / (r.cost ?? NaN)))),
              wasted_recorded: runs.map((r) => wastedOf(r.rep)),
              wasted_cost: runs.map((r) => (r.costRep ? wastedOf(r.costRep) : null)),
            }
          : {}),
        ...(BUDGET !== undefined
          ? {
              budget_s: BUDGET,
              rebuild_s_full_budget: round2(median(runs.map((r) => r.budget ?? NaN))),
              budget_primed: runs.map((r) => r.budgetRep?.speculative.primed ?? null),
              budget_skipped: runs.map((r) => r.budgetRep?.speculative.skipped ?? null),
            }
          : {}),
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
