// The --report FILE.json of a build: what happened to each element in this
// run, in a documented format (docs/report.schema.json) tools can rely on.
import { writeFileAtomic } from '../../core/index.js';
import type { BuildSummary } from '../../scheduler/index.js';

export const REPORT_VERSION = 1;

export interface Report {
  version: number;
  ok: boolean;
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
  }[];
}

const iso = (ms: number | undefined): string | null =>
  ms === undefined ? null : new Date(ms).toISOString();

export function buildReport(summary: BuildSummary, started: number, finished: number): Report {
  return {
    version: REPORT_VERSION,
    ok: summary.ok,
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
    })),
  };
}

export async function writeReport(file: string, report: Report): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
}
