// Speculative actions over one invocation, in the scheduler's terms: the
// priming engine fed as sources are staged and elements become available,
// a final pass before each build, each build action classified as it is
// answered, and generation after each build (or, in modes that do not
// generate, the previous speculative actions kept under the weak key), then
// the build's trace for `specbuild explain` (trace.ts).
import { digestKey, fromPb, toPb, type Digest } from '../reapi/index.js';
import type { Artifact, ArtifactCache, ActionCache, Cas, Executor } from '../cas/index.js';
import type { EventSink } from '../core/index.js';
import {
  buildScope,
  normalName,
  type ElementKeys,
  type ElementName,
  type Graph,
  type GraphNode,
} from '../project/index.js';
import { loadSpeculativeActions, storeSpeculativeActions } from './actions.js';
import { emptyStats, type SpeculativeEvent, type SpeculativeStats } from './events.js';
import { generate, type GenerateDependency } from './generate.js';
import { generates, primes, type Mode } from './mode.js';
import { PrimingEngine, phaseIndex, type PrimingOrder } from './prime.js';
import { BuildTreeWatch } from './build-tree.js';
import { TreeFiles } from './tree-files.js';
import { TraceCollector, type BuildTraceStore, type PreviousBuild } from './trace.js';

export interface SpeculativeRunOptions {
  mode: Mode;
  cas: Cas;
  ac: ActionCache;
  executor: Executor;
  artifacts: ArtifactCache;
  graph: Graph;
  keys: ReadonlyMap<ElementName, ElementKeys | undefined>;
  maxInFlight: number;
  /** The order primed actions run in (PrimingOptions.order; default 'recorded'). */
  order?: PrimingOrder;
  /** PrimingOptions.budgetSeconds. */
  budgetSeconds?: number;
  events?: EventSink<SpeculativeEvent>;
  /** Where each successful build's trace is written (none: no traces). */
  traces?: BuildTraceStore;
}

/** The record stored under an element's weak key before its build. */
interface WeakRecord {
  /** The record, HASH/SIZE, and its build's strong key. */
  record: string;
  strongKey: string;
  /** Its speculative actions. */
  sa: Digest | undefined;
}

export class SpeculativeRun {
  private readonly trees: TreeFiles;
  private readonly engine: PrimingEngine | undefined;
  /** The record (and its speculative actions) stored under each element's weak key before its build. */
  private readonly previous = new Map<string, WeakRecord | undefined>();
  private readonly collector: TraceCollector | undefined;
  /** Every element's artifact as this run knows it (built or cached). */
  private readonly artifactsNow = new Map<string, Artifact>();
  /** Per element being built: the phase it is in, and the phase each recorded action ran in. */
  private readonly phases = new Map<string, { now: string; actions: Map<string, string> }>();
  /** Per element being built: its live build tree and the files watched in it. */
  private readonly watches = new Map<string, BuildTreeWatch>();

  constructor(private readonly opts: SpeculativeRunOptions) {
    this.trees = new TreeFiles(opts.cas);
    const collector = opts.traces === undefined ? undefined : new TraceCollector();
    this.collector = collector;
    const events: EventSink<SpeculativeEvent> | undefined =
      collector === undefined
        ? opts.events
        : (e) => {
            collector.event(e);
            opts.events?.(e);
          };
    this.engine = primes(opts.mode)
      ? new PrimingEngine({
          cas: opts.cas,
          ac: opts.ac,
          executor: opts.executor,
          artifacts: opts.artifacts,
          trees: this.trees,
          graph: opts.graph,
          keys: opts.keys,
          maxInFlight: opts.maxInFlight,
          order: opts.order,
          budgetSeconds: opts.budgetSeconds,
          events,
        })
      : undefined;
  }

  get mode(): Mode {
    return this.opts.mode;
  }

  /** This run primes (so records stored under weak keys are wanted). */
  get primes(): boolean {
    return this.engine !== undefined;
  }

  /** The element will build: its sources are staged. Priming starts (pending until buildable). */
  async sourcesStaged(node: GraphNode, sources: Digest): Promise<void> {
    const k = this.opts.keys.get(node.name);
    if (k !== undefined && !this.previous.has(node.name)) {
      const project = this.opts.graph.project.name;
      const element = normalName(node.name);
      const record = await this.opts.artifacts.refDigest(project, element, k.weak);
      const prev = await this.opts.artifacts.lookupRecord(project, element, k.weak);
      this.previous.set(
        node.name,
        record === undefined || prev === undefined
          ? undefined
          : {
              record,
              strongKey: prev.strongKey,
              sa:
                prev.speculativeActions === undefined ? undefined : fromPb(prev.speculativeActions),
            },
      );
    }
    if (this.engine === undefined) return;
    this.engine.sourcesReady(node.name, sources);
    await this.engine.register(node).catch(() => false);
  }

  /** The element is built or cached. */
  available(node: GraphNode, artifact: Artifact): void {
    this.artifactsNow.set(node.name, artifact);
    this.engine?.available(node.name, artifact);
  }

  /** The last priming pass before the element's build. */
  async beforeBuild(node: GraphNode): Promise<void> {
    await this.engine?.beforeBuild(node.name).catch(() => undefined);
  }

  /** The element's build ended (built or failed): priming for it stops. */
  buildFinished(node: GraphNode): void {
    this.watches.get(node.name)?.stop();
    this.watches.delete(node.name);
    this.engine?.buildFinished(node.name);
  }

  /** Where the element's build tree is on this machine while it builds. */
  buildDir(node: GraphNode, path: string): void {
    // Actions recorded before the script notes its first phase ran in the first.
    this.phases.set(node.name, { now: 'configure-commands', actions: new Map() });
    if (this.engine === undefined) return;
    this.watches.get(node.name)?.stop();
    const engine = this.engine;
    this.watches.set(
      node.name,
      new BuildTreeWatch(path, this.opts.cas, (file, digest) => {
        engine.buildTreeFile(node.name, file, digest);
      }),
    );
  }

  /** The element's build entered a phase: files its actions read from then on are watched for. */
  phase(node: GraphNode, phase: string): void {
    const p = this.phases.get(node.name);
    if (p === undefined) this.phases.set(node.name, { now: phase, actions: new Map() });
    else p.now = phase;
    const watch = this.watches.get(node.name);
    if (watch === undefined || this.engine === undefined) return;
    for (const f of this.engine.buildTreeFiles(node.name))
      if (phaseIndex(f.phase) <= phaseIndex(phase)) watch.watch(f.path);
  }

  /** A recorded action of the element's build, as it was answered. */
  subaction(node: GraphNode, action: Digest, cached: boolean): void {
    const p = this.phases.get(node.name);
    if (p !== undefined && !p.actions.has(digestKey(action)))
      p.actions.set(digestKey(action), p.now);
    if (this.engine !== undefined) {
      this.engine.classify(node.name, action, cached);
      return;
    }
    // Counted in every mode, so that runs in different modes compare.
    const s = this.statsFor(node.name);
    if (cached) s.hits_cached++;
    else s.misses++;
    s.recall = s.misses === 0 ? null : 0;
    const e: SpeculativeEvent = {
      type: 'build-action',
      element: node.name,
      action: `${action.hash}/${action.size}`,
      outcome: cached ? 'hit-cached' : 'miss',
    };
    this.collector?.event(e);
    this.opts.events?.(e);
  }

  private readonly plainStats = new Map<string, SpeculativeStats>();
  private statsFor(name: string): SpeculativeStats {
    let s = this.plainStats.get(name);
    if (s === undefined) {
      s = emptyStats();
      this.plainStats.set(name, s);
    }
    return s;
  }

  stats(name: string): SpeculativeStats {
    return this.engine?.stats(name) ?? this.statsFor(name);
  }

  /**
   * After a build: generates and stores the element's speculative actions
   * (modes that generate), or keeps the previous ones under the weak key.
   * Returns the artifact as stored. A failure is an event, never an error.
   * Then writes the build's trace.
   */
  async afterBuild(node: GraphNode, artifact: Artifact): Promise<Artifact> {
    const stored = await this.generateAndStore(node, artifact);
    await this.recordTrace(node, stored);
    return stored;
  }

  private async generateAndStore(node: GraphNode, artifact: Artifact): Promise<Artifact> {
    const project = this.opts.graph.project.name;
    const element = normalName(node.name);
    // Its stats are read after this: every build action counted first.
    await this.engine?.classified(node.name);
    try {
      let sa: Digest | undefined;
      const recorded = artifact.subactions.length > 0;
      if (
        generates(this.opts.mode) &&
        recorded &&
        artifact.files !== undefined &&
        artifact.sources !== undefined
      ) {
        const deps: GenerateDependency[] = [];
        for (const d of buildScope(node)) {
          const art = this.artifactsNow.get(d.name);
          if (art?.files === undefined) continue;
          deps.push({
            name: d.name,
            files: fromPb(art.files),
            sources: art.sources === undefined ? undefined : fromPb(art.sources),
            weakKey: art.weakKey,
            recipeKey: this.opts.keys.get(d.name)?.recipe,
            speculative:
              art.speculativeActions === undefined
                ? undefined
                : await loadSpeculativeActions(this.opts.cas, fromPb(art.speculativeActions)).catch(
                    () => undefined,
                  ),
          });
        }
        const { speculative, stats } = await generate(this.opts.cas, this.opts.ac, this.trees, {
          mode: this.opts.mode,
          buildRoot: node.decl.buildRoot,
          sources: fromPb(artifact.sources),
          files: fromPb(artifact.files),
          subactions: artifact.subactions.map((d) => fromPb(d)),
          deps,
          phases: this.phases.get(node.name)?.actions,
        });
        sa = await storeSpeculativeActions(this.opts.cas, speculative);
        this.opts.events?.({
          type: 'generate',
          element: node.name,
          outcome: 'stored',
          actions: stats.actions,
          overlays: stats.overlays,
          skipped: stats.skipped,
          reason: stats.skipReason,
        });
      } else {
        sa = this.previous.get(node.name)?.sa;
        if (sa === undefined) return artifact;
        this.opts.events?.({ type: 'generate', element: node.name, outcome: 'kept' });
      }
      artifact.speculativeActions = toPb(sa);
      await this.opts.artifacts.store(project, element, artifact);
      this.artifactsNow.set(node.name, artifact);
      return artifact;
    } catch (e) {
      this.opts.events?.({
        type: 'generate',
        element: node.name,
        outcome: 'failed',
        reason: e instanceof Error ? e.message : String(e),
      });
      return artifact;
    } finally {
      this.phases.delete(node.name);
    }
  }

  /**
   * Writes the trace of the element's build (how each action was answered,
   * what priming did, which build came before). Like generation, it never
   * fails a build: a trace that cannot be written is left out.
   */
  private async recordTrace(node: GraphNode, artifact: Artifact): Promise<void> {
    const store = this.opts.traces;
    if (store === undefined || this.collector === undefined) return;
    const { actions, primes: primed } = this.collector.take(node.name);
    const project = this.opts.graph.project.name;
    const element = normalName(node.name);
    try {
      const record = await this.opts.artifacts.refDigest(project, element, artifact.strongKey);
      if (record === undefined) return;
      const weak = this.previous.get(node.name);
      let previous: PreviousBuild | null =
        weak === undefined
          ? null
          : { record: weak.record, strong_key: weak.strongKey, via: 'weak-key' };
      if (previous === null) {
        // The weak key moved (own sources or configuration changed): the last build traced.
        const last = await store.latest(project, element);
        if (last !== undefined && last.record !== record)
          previous = { record: last.record, strong_key: last.strong_key, via: 'latest' };
      }
      const sa = weak?.sa;
      await store.write(element, {
        version: 1,
        project,
        element: node.name,
        strong_key: artifact.strongKey,
        weak_key: artifact.weakKey,
        mode: this.opts.mode,
        build_root: node.decl.buildRoot,
        record,
        previous,
        primed_from: this.engine === undefined || sa === undefined ? null : digestKey(sa),
        actions,
        primes: primed,
        finished: new Date().toISOString(),
      });
    } catch {
      // No trace: explain says it has none for this build.
    }
  }

  /** Stops priming; waits for passes and submissions when asked (tests, benchmarks). */
  async close(wait = false): Promise<void> {
    if (wait) await this.engine?.settle();
    this.engine?.close();
  }
}
