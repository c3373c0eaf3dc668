// Builds in the benchmark's own process, warm: the stores the CLI opens (the
// embedded default under one cache directory) are opened once, and each
// build loads the project again (untimed, so that edited files count) and
// runs the real scheduler, builder and sandbox, every event timestamped.
import { loadGraph, loadProject } from '../src/project/index.js';
import { runScheduler, type BuildSummary, type RunEvent } from '../src/scheduler/index.js';
import { openStores, sourceEnv, type Stores } from '../src/cli/workspace.js';

export interface TimedEvent {
  /** performance.now() when it was emitted. */
  t: number;
  event: RunEvent;
}

export interface TimedBuild extends BuildSummary {
  /** runScheduler's wall time (keys, cache lookups, sources, builds, stores), ms. */
  ms: number;
  /** When runScheduler was called (performance.now()). */
  t0: number;
  events: TimedEvent[];
}

export class InProcessBuilder {
  private constructor(readonly stores: Stores) {}

  static async open(cacheDir: string, jobs = 2): Promise<InProcessBuilder> {
    const stores = await openStores({
      cacheDir,
      quota: undefined,
      builders: 1,
      onError: 'quit',
      maxJobs: jobs,
      speculativeActions: 'none',
      primingOrder: 'recorded',
      artifactServers: [],
      remoteExecution: {},
      file: undefined,
    });
    return new InProcessBuilder(stores);
  }

  /** Builds `targets` of the project in `dir`; throws unless every element is built or cached. */
  async build(dir: string, targets: string[]): Promise<TimedBuild> {
    const p = await loadProject(dir, { maxJobs: 2 });
    if (!p.ok) throw new Error(p.errors.map((e) => e.message).join('\n'));
    const g = await loadGraph(p.value, targets);
    if (!g.ok) throw new Error(g.errors.map((e) => e.message).join('\n'));
    const events: TimedEvent[] = [];
    const t0 = performance.now();
    const summary = await runScheduler({
      graph: g.value,
      builder: this.stores.builder,
      artifacts: this.stores.artifacts,
      sourceEnv: sourceEnv(p.value, this.stores),
      toolchain: this.stores.toolchain,
      builders: 1,
      onError: 'quit',
      events: (event) => events.push({ t: performance.now(), event }),
    });
    const ms = performance.now() - t0;
    if (!summary.ok) {
      const failed = summary.results.find((r) => r.error !== undefined);
      throw new Error(`build failed: ${failed?.name ?? '?'}: ${failed?.error?.message ?? ''}`);
    }
    return { ...summary, ms, t0, events };
  }
}

/** When `element` first reached each build phase or state, in ms after the build's start. */
export function milestones(b: TimedBuild, element: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { t, event } of b.events) {
    if (event.type !== 'element' && event.type !== 'build-phase') continue;
    if (event.element !== element) continue;
    const name = event.type === 'element' ? event.state : event.phase;
    out[name] ??= t - b.t0;
  }
  return out;
}
