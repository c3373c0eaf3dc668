// `specbuild build TARGET...`: loads the project, builds what is not cached
// with the embedded default, renders progress, writes --report, and exits 0
// only when every element is built or cached. Ctrl-C stops the builds
// (their sandboxes are killed) and leaves the cache consistent.
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import { buildReport, totalStats, writeReport } from './render/report.js';
import { progressRenderer } from './render/progress.js';
import { TimelineRecorder, writeTimeline, writeTrace } from './render/timeline.js';
import { info } from './render/output.js';
import { EXIT } from './exit-codes.js';
import { runScheduler } from '../scheduler/index.js';
import { BuildTraceStore, type Mode, type ShareEvent } from '../speculative/index.js';
import { buildRemotes } from './build-remotes.js';
import type { GlobalOptions } from './options.js';
import { openGraph, openProject, openStores, sourceEnv } from './workspace.js';

export interface BuildOptions {
  report?: string;
  /** --timeline FILE.html: the build over time, as one self-contained page. */
  timeline?: string;
  /** --trace FILE.json: the same, in Chrome's trace event format. */
  trace?: string;
  /** --remote: artifact remotes to pull from and push to, instead of the configured ones. */
  remote?: string[];
  /** --speculative-actions (overrides scheduler.speculative-actions). */
  speculativeActions?: Mode;
}

export async function buildCommand(
  targets: string[],
  opts: BuildOptions,
  g: GlobalOptions,
): Promise<number> {
  const cfg = g.config;
  const mode = opts.speculativeActions ?? cfg.speculativeActions;
  const project = await openProject(g.directory, cfg);
  const graph = await openGraph(project, targets);
  const progress = await progressRenderer({
    tty: process.stderr.isTTY && process.env.CI !== 'true',
  });
  const abort = new AbortController();
  // Every pull, push, remote call and sandbox of the run listens to it.
  setMaxListeners(0, abort.signal);
  const shared: ShareEvent[] = [];
  const remotes = await buildRemotes({
    signal: abort.signal,
    cfg,
    project,
    remote: opts.remote,
    mode,
    events: (e) => {
      shared.push(e);
      progress.event(e);
    },
  }).catch((e: unknown) => {
    progress.done();
    throw e;
  });
  const stores = await openStores(cfg, remotes.layer);
  const interrupt = (): void => {
    abort.abort(new Error('interrupted'));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const started = Date.now();
  const timeline =
    opts.timeline === undefined && opts.trace === undefined
      ? undefined
      : new TimelineRecorder(started);
  try {
    await remotes.open();
    const summary = await runScheduler({
      graph,
      builder: stores.builder,
      artifacts: stores.artifacts,
      sourceEnv: sourceEnv(project, stores, abort.signal),
      toolchain: stores.toolchain,
      builders: g.builders ?? cfg.builders,
      onError: g.onError ?? cfg.onError,
      signal: abort.signal,
      events: (e) => {
        progress.event(e);
        timeline?.event(e);
      },
      share: remotes.share(),
      speculative: {
        mode,
        executor: stores.actions.executor,
        ac: stores.actions.ac,
        // Local: the slot pool bounds what runs at once; submitted actions
        // must be in the executor (not queued here) for the build to join them.
        // On a cluster: its size.
        maxInFlight: remotes.maxInFlight ?? 256,
        order: cfg.primingOrder,
        budgetSeconds: cfg.primingBudget,
        traces: new BuildTraceStore(join(stores.cacheDir, 'build-traces')),
      },
    });
    progress.done();
    const report = buildReport(summary, mode, started, Date.now());
    if (opts.report !== undefined) await writeReport(opts.report, report);
    if (timeline !== undefined) {
      const t = await timeline.finish(report, stores.actions.ac);
      if (opts.timeline !== undefined) await writeTimeline(opts.timeline, t);
      if (opts.trace !== undefined) await writeTrace(opts.trace, t);
    }
    const count = (s: string): number => summary.results.filter((r) => r.state === s).length;
    info(
      `${summary.ok ? 'build succeeded' : 'build failed'}: ${count('built')} built, ${count('cached')} cached, ${count('failed')} failed, ${count('skipped')} skipped in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    const t = totalStats(
      summary.results.flatMap((r) => (r.speculative === undefined ? [] : [r.speculative])),
    );
    const pct = (x: number | null): string => (x === null ? '-' : `${Math.round(x * 100)}%`);
    info(
      `actions: ${t.hits_primed} primed hits, ${t.hits_cached} cached hits, ${t.misses} executed; speculative-actions ${mode}: ${t.primed} primed, ${t.unchanged} unchanged, ${t.deferred + t.unresolved + t.skipped} not primed (precision ${pct(t.precision)}, recall ${pct(t.recall)})`,
    );
    const cluster = remotes.cluster();
    if (cluster !== undefined)
      info(
        `remote execution: ${cluster.counts.executed} executed, ${cluster.counts.cached} cached there${cluster.counts.fallback > 0 ? `, ${cluster.counts.fallback} run here` : ''}`,
      );
    if (remotes.share() !== undefined) {
      const n = (op: string, outcome: string): number =>
        shared.filter((e) => e.op === op && e.outcome === outcome).length;
      info(
        `remotes: ${n('pull', 'pulled')} pulled, ${n('pull-priming', 'pulled')} pulled for priming, ${n('push', 'pushed')} pushed${n('push', 'failed') > 0 ? `, ${n('push', 'failed')} pushes failed` : ''}`,
      );
    }
    for (const r of summary.results) {
      if (r.error === undefined) continue;
      process.stderr.write(
        `\n${r.name}: ${r.error.message}\n${r.error.hint === undefined ? '' : `  hint: ${r.error.hint}\n`}`,
      );
    }
    if (abort.signal.aborted) return EXIT.interrupted;
    return summary.ok ? EXIT.ok : EXIT.failure;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    progress.done();
    remotes.close();
  }
}
