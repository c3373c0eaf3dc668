// The --report FILE.json of a build: what happened to each element in this
// run, in a documented format (docs/report.schema.json) tools can rely on.
import { writeFileAtomic } from '../../core/index.js';
import type { BuildSummary } from '../../scheduler/index.js';
import { emptyStats, type SpeculativeStats } from '../../speculative/index.js';

export const REPORT_VERSION = 1;

export interface Report {
  version: number;
  ok: boolean;
  /** The speculative-actions mode of the run. */
  mode: string;
  /** Over every element built in this run. */
  speculative: SpeculativeStats;
  started: string;
  finished: string;
  elements: {
    name: string;
    state: 'built' | 'cached' | 'failed' | 'skipped';
    strong_key: string | null;
    weak_key: string | null;
    started: string | null;
    finished: string | null;
    subactions: string[];
    error: string | null;
    /** For elements built in this run: what priming did and what the build got from it. */
    speculative: SpeculativeStats | null;
  }[];
}

/** The totals of several elements' stats (precision weighted by what each primed). */
export function totalStats(all: readonly SpeculativeStats[]): SpeculativeStats {
  const t = emptyStats();
  let used = 0;
  for (const s of all) {
    t.primed += s.primed;
    t.unchanged += s.unchanged;
    t.deferred += s.deferred;
    t.unresolved += s.unresolved;
    t.skipped += s.skipped;
    t.hits_primed += s.hits_primed;
    t.hits_cached += s.hits_cached;
    t.misses += s.misses;
    used += (s.precision ?? 0) * s.primed;
  }
  t.precision = t.primed === 0 ? null : used / t.primed;
  t.recall = t.hits_primed + t.misses === 0 ? null : t.hits_primed / (t.hits_primed + t.misses);
  return t;
}

const iso = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

export function buildReport(
  summary: BuildSummary,
  mode: string,
  started: number,
  finished: number,
): Report {
  return {
    version: REPORT_VERSION,
    ok: summary.ok,
    mode,
    speculative: totalStats(
      summary.results.flatMap((r) => (r.speculative === undefined ? [] : [r.speculative])),
    ),
    started: new Date(started).toISOString(),
    finished: new Date(finished).toISOString(),
    elements: summary.results.map((r) => ({
      name: r.name,
      state: r.state,
      strong_key: r.keys?.strong ?? null,
      weak_key: r.keys?.weak ?? null,
      started: iso(r.started),
      finished: iso(r.finished),
      subactions: r.subactions,
      error: r.error?.message ?? null,
      speculative: r.speculative ?? null,
    })),
  };
}

export async function writeReport(file: string, report: Report): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
}
