// Builds a ProjectRig's elements through the real scheduler, builder and
// sandbox with the embedded default (local CAS, action cache and executor
// under the rig's scratch directory), recording every event.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SlotPool } from '../../src/core/index.js';
import {
  ArtifactCache,
  LocalActionCache,
  LocalCas,
  RefStore,
  type ActionCache,
  type Executor,
} from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import { ElementBuilder } from '../../src/build/index.js';
import { ClusterExecutor, type RemoteEndpoint } from '../../src/remote/index.js';
import { loadGraph, loadProject } from '../../src/project/index.js';
import { TOOLCHAIN_PROPERTY, hostPlatform } from '../../src/reapi/index.js';
import { runScheduler, type BuildSummary, type RunEvent } from '../../src/scheduler/index.js';
import type { ProjectRig } from './project-rig.js';
import {
  BuildTraceStore,
  RemoteShare,
  primes,
  type Mode,
  type PrimingOrder,
  type ShareRemote,
} from '../../src/speculative/index.js';

export interface RigBuild extends BuildSummary {
  /** The cluster executor, when one was given. */
  cluster?: ClusterExecutor;
  /** Actions the local executor was asked to run (not counting builds' own commands). */
  localExecutions: number;
  cas: LocalCas;
  artifacts: ArtifactCache;
  events: RunEvent[];
  /** State per element name. */
  states: Record<string, string>;
}

export async function buildRig(
  rig: ProjectRig,
  targets: string[],
  opts: {
    cacheDir?: string;
    builders?: number;
    jobs?: number;
    onError?: 'quit' | 'continue';
    mode?: Mode;
    /**
     * Wraps the executor priming submits to (to inject a fault a real one
     * cannot produce); `ac` is the action cache builds and priming read.
     */
    primingExecutor?: (real: Executor, ac: ActionCache) => Executor;
    /** Artifact remotes pulled from and pushed to (through RemoteShare). */
    remotes?: ShareRemote[];
    /** A remote execution service: subactions and primed actions run there. */
    cluster?: RemoteEndpoint;
    /** The order primed actions run in (default 'recorded'). */
    order?: PrimingOrder;
    /** scheduler.speculative-actions-budget, in seconds. */
    budgetSeconds?: number;
  } = {},
): Promise<RigBuild> {
  const cacheDir = opts.cacheDir ?? join(rig.scratch, 'cache');
  const p = await loadProject(rig.dir, { maxJobs: 2 });
  assert.ok(
    p.ok,
    p.ok ? '' : p.errors.map((e) => `${e.provenance ?? ''}: ${e.message}`).join('\n'),
  );
  const g = await loadGraph(p.value, targets);
  assert.ok(
    g.ok,
    g.ok ? '' : g.errors.map((e) => `${e.provenance ?? ''}: ${e.message}`).join('\n'),
  );
  const cas = await LocalCas.open({ dir: cacheDir });
  const ac = await LocalActionCache.open(cacheDir, cas);
  const slots = new SlotPool(opts.jobs ?? 2);
  const executor = new LocalExecutor({ cas, ac, workDir: join(cacheDir, 'exec'), slots });
  const artifacts = new ArtifactCache(cas, new RefStore(join(cacheDir, 'refs')));
  const toolchain = (await hostPlatform()).get(TOOLCHAIN_PROPERTY) ?? '';
  const events: RunEvent[] = [];
  const share =
    opts.remotes === undefined
      ? undefined
      : new RemoteShare({
          remotes: opts.remotes,
          project: p.value.name,
          artifacts,
          ac,
          priming: opts.mode !== undefined && primes(opts.mode),
          pushBackoffMs: 100,
          events: (e) => events.push(e),
        });
  let localExecutions = 0;
  const counted: Executor = {
    execute: (d, o) => {
      localExecutions++;
      return executor.execute(d, o);
    },
  };
  const cluster =
    opts.cluster === undefined
      ? undefined
      : new ClusterExecutor({ local: cas, localAc: ac, execution: opts.cluster });
  // With remotes, builds and priming ask the remotes' action caches after the local one.
  const sharedAc = share?.actionCache(ac) ?? ac;
  const sharedExecutor = share?.executor(cluster ?? counted, sharedAc) ?? cluster ?? counted;
  const builder = new ElementBuilder({
    cas,
    ac: sharedAc,
    executor: sharedExecutor,
    artifacts,
    slots,
    cacheDir,
    toolchain,
  });
  await share?.open();
  const summary = await runScheduler({
    share,
    graph: g.value,
    builder,
    artifacts,
    sourceEnv: { project: p.value, sourceDir: join(cacheDir, 'sources'), cas },
    toolchain,
    builders: opts.builders ?? 2,
    onError: opts.onError ?? 'quit',
    events: (e) => events.push(e),
    speculative:
      opts.mode === undefined
        ? undefined
        : {
            mode: opts.mode,
            executor: opts.primingExecutor?.(sharedExecutor, sharedAc) ?? sharedExecutor,
            ac: sharedAc,
            maxInFlight: opts.cluster === undefined ? 4 : 8,
            order: opts.order,
            budgetSeconds: opts.budgetSeconds,
            traces: new BuildTraceStore(join(cacheDir, 'build-traces')),
          },
  });
  share?.close();
  const states: Record<string, string> = {};
  for (const r of summary.results) states[r.name] = r.state;
  return { ...summary, events, states, cas, artifacts, cluster, localExecutions };
}
