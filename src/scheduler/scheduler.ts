// The pipeline of an invocation over a resolved graph: keys for every
// element, then per element fetch → (prime) → build → (generate), in
// dependency order, at most `builders` builds at once, each build's commands
// and subactions sharing one CPU slot pool. Elements whose strong key is
// cached are skipped. Everything that happens is an event; nothing prints.
import { isSpecbuildError, Limiter, SpecbuildError, type EventSink } from '../core/index.js';
import type { ActionCache, Artifact, ArtifactCache, Executor } from '../cas/index.js';
import {
  SpeculativeRun,
  type Mode,
  type BuildTraceStore,
  type PrimingOrder,
  type SpeculativeStats,
} from '../speculative/index.js';
import type { ElementBuilder } from '../build/index.js';
import {
  buildScope,
  computeKeys,
  elementSourceKeys,
  makeSource,
  normalName,
  stageElementSources,
  type ElementKeys,
  type ElementName,
  type Graph,
  type GraphNode,
  type Plain,
  type SourceEnv,
} from '../project/index.js';
import { digestKey, fromPb, type Digest } from '../reapi/index.js';
import type { ElementState, RunEvent, SchedulerEvent } from './events.js';

/** Speculative actions for this run (the prime and generate stages). */
export interface SpeculativeConfig {
  mode: Mode;
  /** The executor and action cache primed actions go through (the builds' own). */
  executor: Executor;
  ac: ActionCache;
  /** Primed actions in flight at once. */
  maxInFlight: number;
  /** The order primed actions run in (default 'recorded'; 'cost': build order, longest recorded first). */
  order?: PrimingOrder;
  /** scheduler.speculative-actions-budget: recorded seconds priming may submit (undefined: no limit). */
  budgetSeconds?: number;
  /** Where each built element's trace is written, for `specbuild explain` (none: not written). */
  traces?: BuildTraceStore;
}

/**
 * Artifact remotes (speculative/RemoteShare): pulled from before an element
 * builds, pushed to after. None of it ever fails a build.
 */
export interface ArtifactSharing {
  /** The artifact of the strong key from a remote, stored locally; undefined on a miss. Elements by name (app.bst). */
  pull(
    element: ElementName,
    strongKey: string,
    signal?: AbortSignal,
  ): Promise<Artifact | undefined>;
  /** The weak-key record and its priming data, when none is stored locally. */
  pullPriming(element: ElementName, weakKey: string, signal?: AbortSignal): Promise<boolean>;
  /** Queues the push of a built element's artifact. */
  push(element: ElementName, artifact: Artifact): void;
  /** Queues the push of a cached artifact to remotes that lack it. */
  pushIfMissing(element: ElementName, artifact: Artifact): void;
  /** Waits for every queued push. */
  flush(): Promise<void>;
}

export interface SchedulerOptions {
  graph: Graph;
  builder: ElementBuilder;
  artifacts: ArtifactCache;
  sourceEnv: SourceEnv;
  toolchain: string;
  /** Element builds at once. */
  builders: number;
  onError: 'quit' | 'continue';
  signal?: AbortSignal;
  events?: EventSink<RunEvent>;
  speculative?: SpeculativeConfig;
  share?: ArtifactSharing;
}

export interface ElementResult {
  name: ElementName;
  /** What happened in this run. */
  state: 'built' | 'cached' | 'failed' | 'skipped';
  keys: ElementKeys | undefined;
  started?: number;
  finished?: number;
  /** Recorded subactions (built) or those of the cached artifact, as HASH/SIZE. */
  subactions: string[];
  error?: SpecbuildError;
  artifact?: Artifact;
  /** Cached: it came from an artifact remote in this run. */
  pulled?: boolean;
  /** What priming did and what the build got from it (counted in every mode). */
  speculative?: SpeculativeStats;
}

export interface BuildSummary {
  ok: boolean;
  results: ElementResult[];
}

/** Keys of every element of the graph (sources hashed or read from refs). */
export async function resolveKeys(
  graph: Graph,
  env: SourceEnv,
  toolchain: string,
): Promise<Map<ElementName, ElementKeys | undefined>> {
  const sourceKeys = new Map<ElementName, Plain[] | undefined>();
  await Promise.all(
    graph.order.map(async (n) => {
      sourceKeys.set(n.name, await elementSourceKeys(n.decl, env));
    }),
  );
  return computeKeys(graph, sourceKeys, toolchain);
}

export async function runScheduler(opts: SchedulerOptions): Promise<BuildSummary> {
  const { graph, artifacts, sourceEnv } = opts;
  const project = graph.project;
  const emit = (e: RunEvent): void => opts.events?.(e);
  const state = (
    name: ElementName,
    s: ElementState,
    extra: Partial<Extract<SchedulerEvent, { type: 'element' }>> = {},
  ): void => {
    emit({ type: 'element', element: name, state: s, ...extra });
  };
  const keys = await resolveKeys(graph, sourceEnv, opts.toolchain);
  const spec =
    opts.speculative === undefined
      ? undefined
      : new SpeculativeRun({
          mode: opts.speculative.mode,
          cas: sourceEnv.cas,
          ac: opts.speculative.ac,
          executor: opts.speculative.executor,
          artifacts,
          graph,
          keys,
          maxInFlight: opts.speculative.maxInFlight,
          order: opts.speculative.order,
          budgetSeconds: opts.speculative.budgetSeconds,
          traces: opts.speculative.traces,
          events: emit,
        });
  /** Pulls at once (each element's pull runs before it waits for its dependencies). */
  const pulls = new Limiter(8);
  const results = new Map<ElementName, ElementResult>();
  const done = new Map<ElementName, Promise<ElementResult>>();
  /** After a failure with on-error quit: nothing new starts. */
  const stop = { requested: false };
  const stopped = (): boolean => stop.requested || opts.signal?.aborted === true;
  let building = 0;
  const waiters: (() => void)[] = [];
  const builderSlot = async (): Promise<() => void> => {
    while (building >= opts.builders) await new Promise<void>((r) => waiters.push(r));
    building++;
    return () => {
      building--;
      waiters.shift()?.();
    };
  };

  const finish = (r: ElementResult): ElementResult => {
    results.set(r.name, r);
    state(r.name, r.state, { keys: r.keys, error: r.error?.message });
    return r;
  };

  const one = async (node: GraphNode): Promise<ElementResult> => {
    const k = keys.get(node.name);
    if (k === undefined) {
      state(node.name, 'no reference');
      const scope = buildScope(node);
      const depFailed = await Promise.all(scope.map((d) => run(d)));
      if (depFailed.some((r) => r.state === 'failed' || r.state === 'skipped'))
        return finish({ name: node.name, state: 'skipped', keys: undefined, subactions: [] });
      const err = new SpecbuildError('source/no-ref', `${node.name} has a source without a ref`, {
        provenance: node.decl.file,
        hint: `run: specbuild source track ${node.name}`,
      });
      return finish({
        name: node.name,
        state: 'failed',
        keys: undefined,
        subactions: [],
        error: err,
      });
    }
    const cached = await artifacts.lookup(project.name, normalName(node.name), k.strong);
    if (cached !== undefined) {
      spec?.available(node, cached);
      opts.share?.pushIfMissing(node.name, cached);
      return finish({
        name: node.name,
        state: 'cached',
        keys: k,
        subactions: cached.subactions.map((d) => digestKey(fromPb(d))),
        artifact: cached,
      });
    }
    const share = opts.share;
    if (share !== undefined && !stopped()) {
      const element = node.name;
      state(node.name, 'pulling', { keys: k });
      const pulled = await pulls.run(() => share.pull(element, k.strong, opts.signal));
      if (pulled !== undefined) {
        spec?.available(node, pulled);
        return finish({
          name: node.name,
          state: 'cached',
          keys: k,
          subactions: pulled.subactions.map((d) => digestKey(fromPb(d))),
          artifact: pulled,
          pulled: true,
        });
      }
      if (spec?.primes === true)
        await pulls.run(() => share.pullPriming(element, k.weak, opts.signal));
    }
    state(node.name, 'waiting', { keys: k });
    // Sources are fetched while dependencies build.
    const scope = buildScope(node);
    const [sources, deps] = await Promise.all([
      fetchAndStage(node),
      Promise.all(scope.map((d) => run(d))),
    ]);
    if (
      deps.some((r) => r.state === 'failed' || r.state === 'skipped') ||
      stopped() ||
      sources === undefined
    ) {
      return finish({ name: node.name, state: 'skipped', keys: k, subactions: [] });
    }
    if (sources instanceof SpecbuildError)
      return finish({ name: node.name, state: 'failed', keys: k, subactions: [], error: sources });
    state(node.name, 'buildable', { keys: k });
    await spec?.beforeBuild(node);
    const release = await builderSlot();
    if (stopped()) {
      release();
      return finish({ name: node.name, state: 'skipped', keys: k, subactions: [] });
    }
    const started = Date.now();
    state(node.name, 'building', { keys: k });
    try {
      const artifact = await opts.builder.build({
        project,
        node,
        keys: k,
        sources,
        deps: deps.map((r) => {
          const files = r.artifact?.files;
          if (files === undefined || r.keys === undefined)
            throw new Error(`bug: ${r.name} has no artifact`);
          return { name: r.name, strongKey: r.keys.strong, files: fromPb(files) };
        }),
        signal: opts.signal,
        events: (e) => {
          emit(e);
          if (e.type === 'subaction') spec?.subaction(node, e.action, e.cached);
          else if (e.type === 'build-phase') spec?.phase(node, e.phase);
          else if (e.type === 'build-dir') spec?.buildDir(node, e.path);
        },
      });
      spec?.buildFinished(node);
      const stored = spec === undefined ? artifact : await spec.afterBuild(node, artifact);
      spec?.available(node, stored);
      opts.share?.push(node.name, stored);
      return finish({
        name: node.name,
        state: 'built',
        keys: k,
        started,
        finished: Date.now(),
        subactions: stored.subactions.map((d) => digestKey(fromPb(d))),
        artifact: stored,
        speculative: spec?.stats(node.name),
      });
    } catch (e) {
      spec?.buildFinished(node);
      if (opts.onError === 'quit') stop.requested = true;
      return finish({
        name: node.name,
        state: 'failed',
        keys: k,
        started,
        finished: Date.now(),
        subactions: [],
        error: isSpecbuildError(e) ? e : SpecbuildError.from(e),
      });
    } finally {
      release();
    }
  };

  /** The element's sources as a tree in CAS (fetched first when needed). */
  const fetchAndStage = async (node: GraphNode): Promise<Digest | SpecbuildError | undefined> => {
    try {
      const srcs = node.decl.sources.map((s) => makeSource(s));
      const missing = (await Promise.all(srcs.map((s) => s.isCached(sourceEnv)))).some((c) => !c);
      if (missing) {
        state(node.name, 'fetching');
        for (const s of srcs) await s.fetch(sourceEnv);
      }
      const tree = await stageElementSources(node.decl, sourceEnv);
      await spec?.sourcesStaged(node, tree);
      return tree;
    } catch (e) {
      return SpecbuildError.from(e, 'source/fetch');
    }
  };

  const run = (node: GraphNode): Promise<ElementResult> => {
    let p = done.get(node.name);
    if (p === undefined) {
      p = one(node);
      done.set(node.name, p);
    }
    return p;
  };

  // Everything the targets need, built in dependency order as it becomes possible.
  const needed = new Set<ElementName>();
  const walk = (n: GraphNode): void => {
    if (needed.has(n.name)) return;
    needed.add(n.name);
    for (const d of [...n.buildDeps, ...n.runtimeDeps]) walk(d);
  };
  for (const t of graph.targets) walk(t);
  try {
    await Promise.all(graph.order.filter((n) => needed.has(n.name)).map((n) => run(n)));
  } finally {
    await spec?.close();
    await opts.share?.flush();
  }
  const ordered = graph.order
    .filter((n) => needed.has(n.name))
    .map((n) => results.get(n.name))
    .filter((r) => r !== undefined);
  return {
    ok: ordered.every((r) => r.state === 'built' || r.state === 'cached'),
    results: ordered,
  };
}
