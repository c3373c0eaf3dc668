// The timeline of a build (`specbuild build --timeline FILE.html` and
// `--trace FILE.json`): element builds per builder lane with their phases
// and each recorded action as the build answered it (primed hit, plain hit,
// miss), and primed actions per executor worker lane, used or not; the
// figures are the --report file's own. Drawn from the run's events as they
// arrive, with execution times read from the action results at the end.
import type { ActionCache } from '../../cas/index.js';
import { parseDigestString, parseTimestamp, type ActionResult } from '../../reapi/index.js';
import type { RunEvent } from '../../scheduler/index.js';
import type { SpeculativeStats } from '../../speculative/index.js';
import { writeFileAtomic } from '../../core/index.js';
import type { Report } from './report.js';
import { TIMELINE_CSS, TIMELINE_SCRIPT } from './timeline-page.js';

export const TIMELINE_VERSION = 1;

/** A span or moment, in milliseconds since the build started. */
export interface Span {
  start: number;
  end: number;
}

export type ActionOutcome = 'hit-primed' | 'hit-cached' | 'miss';

export interface TimelineElement extends Span {
  name: string;
  state: 'built' | 'cached' | 'failed' | 'skipped';
  /** The builder lane (built and failed), or the lane of elements not built here. */
  lane: string;
  phases: (Span & { phase: string })[];
  /** Each recorded action as the build answered it: a span when it ran here, else its moment. */
  actions: (Span & { action: string; outcome: ActionOutcome })[];
  speculative: SpeculativeStats | null;
}

export interface TimelinePrimed extends Span {
  element: string;
  /** The recorded action, and the adapted one priming ran (HASH/SIZE). */
  action: string;
  adapted: string;
  lane: string;
  /**
   * used: the build hit it; unused: priming ran it and the build did not use
   * it; redundant: the build had run it first (not counted as primed);
   * failed; cancelled: the run ended first.
   */
  outcome: 'used' | 'unused' | 'redundant' | 'failed' | 'cancelled';
}

export interface Timeline {
  version: number;
  ok: boolean;
  mode: string;
  /** When the build started (ISO 8601); every time is milliseconds after it. */
  started: string;
  duration: number;
  /** The --report file's totals, exactly. */
  figures: SpeculativeStats;
  lanes: string[];
  elements: TimelineElement[];
  primed: TimelinePrimed[];
}

interface Building {
  start: number;
  phases: (Span & { phase: string })[];
  actions: { action: string; at: number; outcome?: ActionOutcome }[];
}

interface Submission {
  element: string;
  action: string;
  adapted: string;
  start: number;
  end?: number;
  failed?: boolean;
  redundant?: boolean;
  cancelled?: boolean;
}

const CACHED_LANE = 'not built here';

/** Collects a build's events as they happen; `finish` turns them into a Timeline. */
export class TimelineRecorder {
  private readonly building = new Map<string, Building>();
  private readonly builds = new Map<string, Building & { end: number }>();
  private readonly moments = new Map<string, number>();
  private readonly submissions = new Map<string, Submission>();
  /** Adapted actions the build answered with a primed hit. */
  private readonly used = new Set<string>();

  constructor(
    private readonly t0: number,
    private readonly now: () => number = Date.now,
  ) {}

  private at(): number {
    return Math.max(0, this.now() - this.t0);
  }

  event(e: RunEvent): void {
    const t = this.at();
    switch (e.type) {
      case 'element': {
        if (e.state === 'building') {
          this.building.set(e.element, { start: t, phases: [], actions: [] });
        } else if (e.state === 'built' || e.state === 'failed') {
          const b = this.building.get(e.element);
          if (b === undefined) break;
          const last = b.phases.at(-1);
          if (last !== undefined && last.end < 0) last.end = t;
          this.builds.set(e.element, { ...b, end: t });
          this.building.delete(e.element);
        } else if (e.state === 'cached' || e.state === 'skipped') {
          this.moments.set(e.element, t);
        }
        break;
      }
      case 'build-phase': {
        const b = this.building.get(e.element);
        if (b === undefined) break;
        const last = b.phases.at(-1);
        if (last !== undefined && last.end < 0) last.end = t;
        b.phases.push({ phase: e.phase, start: t, end: -1 });
        break;
      }
      case 'subaction': {
        const b = this.building.get(e.element);
        b?.actions.push({ action: `${e.action.hash}/${e.action.size}`, at: t });
        break;
      }
      case 'build-action': {
        // Classified when answered, or later (when a priming run it waited on settled).
        const b = this.building.get(e.element) ?? this.builds.get(e.element);
        const a = b?.actions.find((x) => x.action === e.action && x.outcome === undefined);
        if (a !== undefined) a.outcome = e.outcome;
        if (e.outcome === 'hit-primed') this.used.add(e.action);
        break;
      }
      case 'prime': {
        if (e.adapted === undefined) break;
        if (e.outcome === 'submitted') {
          this.submissions.set(e.adapted, {
            element: e.element,
            action: e.action,
            adapted: e.adapted,
            start: t,
          });
        } else if (e.outcome === 'completed' || e.outcome === 'failed') {
          const s = this.submissions.get(e.adapted);
          if (s === undefined || s.end !== undefined) break;
          s.end = t;
          // Cancelled (superseded by the build tree's file) is not a failure.
          s.failed = e.outcome === 'failed' && !(e.reason ?? '').startsWith('cancelled');
          s.redundant = e.outcome === 'completed' && e.reason !== undefined;
          s.cancelled = e.outcome === 'failed' && !s.failed;
        }
        break;
      }
      default:
        break;
    }
  }

  /**
   * The timeline of the finished run; `report` is what --report writes (its
   * figures are shown as they are), `ac` gives execution times and workers.
   */
  async finish(report: Report, ac?: ActionCache): Promise<Timeline> {
    const duration = Math.max(1, Date.parse(report.finished) - this.t0);
    const results = new Map<string, ActionResult | undefined>();
    const result = async (key: string): Promise<ActionResult | undefined> => {
      if (ac === undefined) return undefined;
      if (!results.has(key))
        results.set(key, await ac.getActionResult(parseDigestString(key)).catch(() => undefined));
      return results.get(key);
    };
    /** When the result's execution ran, if within this run. */
    const executed = async (key: string): Promise<Span & { worker: string | undefined }> => {
      const m = (await result(key))?.executionMetadata;
      const rel = (ts: Parameters<typeof parseTimestamp>[0]): number | undefined => {
        try {
          const ms = parseTimestamp(ts, 'execution metadata');
          return ms === undefined ? undefined : ms - this.t0;
        } catch {
          return undefined;
        }
      };
      const start = rel(m?.executionStartTimestamp ?? m?.workerStartTimestamp);
      const end = rel(m?.executionCompletedTimestamp ?? m?.workerCompletedTimestamp);
      if (start === undefined || end === undefined || start < 0 || end < start)
        return { start: -1, end: -1, worker: undefined };
      return { start, end, worker: m?.worker === '' ? undefined : m?.worker };
    };

    // Builder lanes: each build in the first lane free when it started.
    const laneEnds: number[] = [];
    const builderLane = new Map<string, string>();
    for (const [name, b] of [...this.builds].sort((x, y) => x[1].start - y[1].start)) {
      let i = laneEnds.findIndex((end) => end <= b.start);
      if (i < 0) i = laneEnds.push(0) - 1;
      laneEnds[i] = b.end;
      builderLane.set(name, `builder ${String(i + 1)}`);
    }

    const elements: TimelineElement[] = [];
    for (const r of report.elements) {
      const b = this.builds.get(r.name);
      if (b !== undefined) {
        const actions: TimelineElement['actions'] = [];
        for (const a of b.actions) {
          const outcome = a.outcome ?? 'miss';
          const ran = outcome === 'miss' ? await executed(a.action) : undefined;
          const inBuild = ran !== undefined && ran.start >= b.start - 1 && ran.end <= a.at + 1;
          actions.push({
            action: a.action,
            outcome,
            start: inBuild ? ran.start : a.at,
            end: a.at,
          });
        }
        elements.push({
          name: r.name,
          state: r.state,
          lane: builderLane.get(r.name) ?? CACHED_LANE,
          start: b.start,
          end: b.end,
          phases: b.phases.map((p) => ({ ...p, end: p.end < 0 ? b.end : p.end })),
          actions,
          speculative: r.speculative,
        });
      } else {
        const t = this.moments.get(r.name) ?? 0;
        elements.push({
          name: r.name,
          state: r.state,
          lane: CACHED_LANE,
          start: t,
          end: t,
          phases: [],
          actions: [],
          speculative: r.speculative,
        });
      }
    }

    // Primed actions: per executor worker, each in the first sub-lane free.
    const primed: TimelinePrimed[] = [];
    const workerEnds = new Map<string, number[]>();
    const subs = [...this.submissions.values()].sort((x, y) => x.start - y.start);
    const placed: (Submission & { span: Span; worker: string })[] = [];
    for (const s of subs) {
      const ran = s.end !== undefined && !s.failed ? await executed(s.adapted) : undefined;
      const end = s.end ?? duration;
      const span =
        ran !== undefined && ran.start >= s.start - 1 && ran.end <= end + 1
          ? { start: ran.start, end: ran.end }
          : { start: s.start, end };
      placed.push({ ...s, span, worker: `primed on ${ran?.worker ?? 'executor'}` });
    }
    placed.sort((x, y) => x.span.start - y.span.start);
    for (const s of placed) {
      const ends = workerEnds.get(s.worker) ?? [];
      workerEnds.set(s.worker, ends);
      let i = ends.findIndex((end) => end <= s.span.start);
      if (i < 0) i = ends.push(0) - 1;
      ends[i] = s.span.end;
      primed.push({
        element: s.element,
        action: s.action,
        adapted: s.adapted,
        lane: `${s.worker} ${String(i + 1)}`,
        start: s.span.start,
        end: s.span.end,
        outcome:
          s.end === undefined || s.cancelled === true
            ? 'cancelled'
            : s.failed === true
              ? 'failed'
              : s.redundant === true
                ? 'redundant'
                : this.used.has(s.adapted)
                  ? 'used'
                  : 'unused',
      });
    }

    const lanes = [
      ...laneEnds.map((_, i) => `builder ${String(i + 1)}`),
      ...(elements.some((e) => e.lane === CACHED_LANE) ? [CACHED_LANE] : []),
      ...[...workerEnds].flatMap(([w, ends]) => ends.map((_, i) => `${w} ${String(i + 1)}`)),
    ];
    return {
      version: TIMELINE_VERSION,
      ok: report.ok,
      mode: report.mode,
      started: report.started,
      duration,
      figures: report.speculative,
      lanes,
      elements,
      primed,
    };
  }
}

/** JSON safe inside a <script> element (no `</script>`, no HTML comment openers). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** One self-contained HTML page: the data, the styles and the drawing script inline. */
export function timelineHtml(t: Timeline): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>specbuild build timeline</title>
<style>${TIMELINE_CSS}</style>
</head>
<body>
<header>
<h1>specbuild build timeline</h1>
<p id="summary"></p>
</header>
<dl id="figures"></dl>
<div id="chart" role="img" aria-label="element builds and primed actions over time"></div>
<ul id="legend"></ul>
<table id="elements"><thead><tr><th>element</th><th>state</th><th>lane</th><th>start</th><th>duration</th><th>primed</th><th>primed hits</th><th>cached hits</th><th>misses</th></tr></thead><tbody></tbody></table>
<noscript>This page draws its timeline with JavaScript; the data is in the timeline-data element.</noscript>
<script type="application/json" id="timeline-data">${scriptJson(t)}</script>
<script>${TIMELINE_SCRIPT}</script>
</body>
</html>
`;
}

interface TraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'i' | 'M';
  ts?: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: 't';
  args?: Record<string, unknown>;
}

/**
 * The Trace Event Format (what chrome://tracing and Perfetto open): one
 * thread per lane, complete events for builds, phases and primed actions,
 * instant events for answered actions; microseconds.
 */
export function chromeTrace(t: Timeline): {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
} {
  const us = (ms: number): number => Math.round(ms * 1000);
  const tid = new Map(t.lanes.map((l, i) => [l, i + 1]));
  const events: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'specbuild build' } },
    ...t.lanes.map((l, i): TraceEvent => ({
      name: 'thread_name',
      ph: 'M',
      pid: 1,
      tid: i + 1,
      args: { name: l },
    })),
    ...t.lanes.map((_, i): TraceEvent => ({
      name: 'thread_sort_index',
      ph: 'M',
      pid: 1,
      tid: i + 1,
      args: { sort_index: i },
    })),
  ];
  for (const e of t.elements) {
    const lane = tid.get(e.lane) ?? 0;
    events.push({
      name: e.name,
      cat: `element,${e.state}`,
      ph: 'X',
      ts: us(e.start),
      dur: us(e.end - e.start),
      pid: 1,
      tid: lane,
      args: { state: e.state, ...(e.speculative ?? {}) },
    });
    for (const p of e.phases)
      events.push({
        name: p.phase,
        cat: 'phase',
        ph: 'X',
        ts: us(p.start),
        dur: us(p.end - p.start),
        pid: 1,
        tid: lane,
        args: { element: e.name },
      });
    for (const a of e.actions)
      events.push(
        a.end > a.start
          ? {
              name: a.outcome,
              cat: `action,${a.outcome}`,
              ph: 'X',
              ts: us(a.start),
              dur: us(a.end - a.start),
              pid: 1,
              tid: lane,
              args: { element: e.name, action: a.action },
            }
          : {
              name: a.outcome,
              cat: `action,${a.outcome}`,
              ph: 'i',
              s: 't',
              ts: us(a.end),
              pid: 1,
              tid: lane,
              args: { element: e.name, action: a.action },
            },
      );
  }
  for (const p of t.primed)
    events.push({
      name: `primed (${p.outcome})`,
      cat: `primed,${p.outcome}`,
      ph: 'X',
      ts: us(p.start),
      dur: us(p.end - p.start),
      pid: 1,
      tid: tid.get(p.lane) ?? 0,
      args: { element: p.element, action: p.action, adapted: p.adapted, outcome: p.outcome },
    });
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: {
      version: t.version,
      ok: t.ok,
      mode: t.mode,
      started: t.started,
      ...t.figures,
    },
  };
}

export async function writeTimeline(file: string, t: Timeline): Promise<void> {
  await writeFileAtomic(file, timelineHtml(t));
}

export async function writeTrace(file: string, t: Timeline): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(chromeTrace(t))}\n`);
}
