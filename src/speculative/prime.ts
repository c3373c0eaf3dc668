// The priming engine of one invocation. It owns the per-invocation state
// (base action → adapted digest, what it submitted, what each element waits
// on), loads each element's stored speculative actions by weak key, and
// instantiates and submits them as their inputs become known: when the
// element's sources are staged, as each dependency is built or cached, and
// as each submitted action completes (so chains resolve: compile, then link),
// until the element's own build starts. Submissions run below builds in the
// shared CPU pool; a build asking for an action still running joins it. No
// priming failure ever fails a build.
import { setMaxListeners } from 'node:events';
import { Limiter, type EventSink } from '../core/index.js';
import type { ActionCache, Artifact, ArtifactCache, Cas, Executor } from '../cas/index.js';
import {
  buildScope,
  normalName,
  type ElementKeys,
  type ElementName,
  type Graph,
  type GraphNode,
} from '../project/index.js';
import { digestKey, fromPb, type ActionResult, type Digest } from '../reapi/index.js';
import {
  loadSpeculativeActions,
  OverlayType,
  type Overlay,
  type SpeculativeAction,
} from './actions.js';
import {
  emptyStats,
  type BuildActionOutcome,
  type PrimeOutcome,
  type SpeculativeEvent,
  type SpeculativeStats,
} from './events.js';
import { instantiate, type InstantiateEnv, type OriginState } from './instantiate.js';
import type { TreeFiles } from './tree-files.js';

export interface PrimingOptions {
  cas: Cas;
  ac: ActionCache;
  executor: Executor;
  artifacts: ArtifactCache;
  trees: TreeFiles;
  graph: Graph;
  keys: ReadonlyMap<ElementName, ElementKeys | undefined>;
  /** Primed actions in flight at once. */
  maxInFlight: number;
  /** Their priority in the CPU slot pool (below builds' 0). */
  priority?: number;
  /**
   * The order submitted actions run in: 'cost' runs them in the graph's
   * build order, and within an element the longest recorded execution
   * first; 'recorded' (the default: bench:rebuild showed no gain for
   * 'cost' on 2 cores) in the order they become ready.
   */
  order?: PrimingOrder;
  /**
   * scheduler.speculative-actions-budget: the recorded execution seconds
   * priming may submit in this run. With it, an action recorded as cheaper
   * than priming it (PRIMING_OVERHEAD_S) is not submitted unless another
   * stored action uses its output (skipping would break that chain), and
   * once the budget is spent nothing more is. Undefined: no budget.
   */
  budgetSeconds?: number;
  events?: EventSink<SpeculativeEvent>;
}

/**
 * What priming one action costs beyond running it (instantiating, storing
 * its blobs, staging and capturing in the executor): 40-60 ms per action
 * measured on the local executor (docs/performance.md). An action recorded
 * as taking less is cheaper to leave to the build.
 */
export const PRIMING_OVERHEAD_S = 0.05;

export type PrimingOrder = 'cost' | 'recorded';

/**
 * A primed action's priority, below `base` (itself below builds): elements
 * earlier in build order first, and within an element the longest recorded
 * execution first (`seconds`, 0 when unknown). Each element gets a band of
 * width 1 under the one before it.
 */
export function primingPriority(base: number, buildIndex: number, seconds: number): number {
  const s = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
  return base - buildIndex - 0.999 / (1 + s);
}

/** Seconds a recorded result's execution took, from its ExecutedActionMetadata; 0 when unknown. */
export function recordedSeconds(result: ActionResult | undefined): number {
  const m = result?.executionMetadata;
  const start = m?.executionStartTimestamp ?? m?.workerStartTimestamp;
  const end = m?.executionCompletedTimestamp ?? m?.workerCompletedTimestamp;
  if (start === undefined || end === undefined) return 0;
  const seconds = Number(end.seconds - start.seconds) + (end.nanos - start.nanos) / 1_000_000_000;
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}

interface Current {
  sources?: Digest;
  files?: Digest;
  overlays?: readonly Overlay[];
  /** Its own actions (HASH/SIZE) in the list stored under its current weak key. */
  actions?: ReadonlySet<string>;
  /** Files of its live build tree read so far (BUILD_TREE overlays). */
  buildTree?: Map<string, Digest>;
}

interface ElementPriming {
  node: GraphNode;
  /** The artifact the actions were recorded with (found by weak key). */
  base: Artifact;
  actions: SpeculativeAction[];
  /** Indices of actions not yet instantiated, unchanged or given up. */
  open: Set<number>;
  /** What each deferred action waits on (last reported). */
  waiting: Map<number, string>;
  buildStarted: boolean;
  pass: Promise<void> | undefined;
  again: boolean;
  /** Adapted actions this element's priming submitted (HASH/SIZE). */
  primed: Set<string>;
  stats: SpeculativeStats;
  /** Its place in the graph's build order. */
  buildIndex: number;
  /** Each action's recorded execution time, in seconds (0 when unknown; empty without order 'cost' or a budget). */
  seconds: number[];
  /** Instantiate the longest recorded first. */
  byCost: boolean;
  /** Base actions (HASH/SIZE) whose outputs other stored actions of this element use. */
  chained: Set<string>;
  /** Files of its build tree read so far: an instantiation begun before the last is stale. */
  treeVersion: number;
}

export class PrimingEngine {
  private readonly adapted = new Map<string, Digest>();
  /** Base actions given up (unresolved): ACTION overlays on them cannot resolve. */
  private readonly gaveUp = new Set<string>();
  /** Adapted actions submitted, by HASH/SIZE: settled when they complete. */
  private readonly submitted = new Map<string, Promise<void>>();
  /**
   * Adapted actions whose priming submission has started, by HASH/SIZE: each
   * settles to whether priming produced the result (it started the run and
   * the action was not already cached), false otherwise.
   */
  private readonly primedRuns = new Map<string, Promise<boolean>>();
  /** The submission of each base action (HASH/SIZE) not settled yet, to cancel when superseded. */
  private readonly superseded = new Map<string, AbortController>();
  /** Build actions whose classification waits on priming's run of them, per element. */
  private readonly classifying = new Map<string, Set<Promise<void>>>();
  private readonly current = new Map<string, Current>();
  private readonly elements = new Map<string, ElementPriming>();
  private readonly statsByElement = new Map<string, SpeculativeStats>();
  private readonly overlaysLoaded = new Map<string, Promise<void>>();
  private readonly limiter: Limiter;
  private readonly abort = new AbortController();

  constructor(private readonly opts: PrimingOptions) {
    this.limiter = new Limiter(Math.max(1, opts.maxInFlight));
    // Every submission's signal follows it.
    setMaxListeners(0, this.abort.signal);
  }

  private emit(
    element: string,
    outcome: PrimeOutcome,
    action: Digest,
    extra: { adapted?: Digest; reason?: string } = {},
  ): void {
    this.opts.events?.({
      type: 'prime',
      element,
      outcome,
      action: digestKey(action),
      adapted: extra.adapted === undefined ? undefined : digestKey(extra.adapted),
      reason: extra.reason,
    });
  }

  stats(element: string): SpeculativeStats {
    let s = this.statsByElement.get(element);
    if (s === undefined) {
      s = emptyStats();
      this.statsByElement.set(element, s);
    }
    return s;
  }

  /**
   * Starts priming `node` if actions are stored for its weak key. Its
   * sources must be known (`sourcesReady`) for its own SOURCE overlays.
   */
  async register(node: GraphNode): Promise<boolean> {
    const keys = this.opts.keys.get(node.name);
    if (keys === undefined || this.elements.has(node.name)) return false;
    const project = this.opts.graph.project.name;
    const base = await this.opts.artifacts.lookupRecord(project, normalName(node.name), keys.weak);
    if (base?.speculativeActions === undefined) return false;
    const sa = await loadSpeculativeActions(this.opts.cas, fromPb(base.speculativeActions));
    // The recorded results' execution times, for the order of submission
    // (one action cache lookup each, in parallel; a failed one counts 0).
    const byCost = (this.opts.order ?? 'recorded') === 'cost';
    const seconds =
      byCost || this.opts.budgetSeconds !== undefined
        ? await Promise.all(
            sa.actions.map((a) =>
              this.opts.ac
                .getActionResult(fromPb(a.baseActionDigest))
                .then(recordedSeconds, () => 0),
            ),
          )
        : [];
    const ep: ElementPriming = {
      treeVersion: 0,
      node,
      base,
      actions: sa.actions,
      open: new Set(sa.actions.map((_, i) => i)),
      waiting: new Map(),
      buildStarted: false,
      pass: undefined,
      again: false,
      primed: new Set(),
      stats: this.stats(node.name),
      buildIndex: this.opts.graph.order.indexOf(node),
      seconds,
      byCost,
      // Needed only to spare chains under a budget.
      chained: new Set(
        (this.opts.budgetSeconds === undefined ? [] : sa.actions).flatMap((a) =>
          a.overlays
            .filter((o) => o.type === OverlayType.ACTION && o.sourceActionDigest !== undefined)
            .map((o) => digestKey(fromPb(o.sourceActionDigest))),
        ),
      ),
    };
    // Known before the element's first pass (no kick reaches it until it is
    // registered): the artifact_overlays of dependencies not built yet, and
    // which actions the elements its actions were copied from prime themselves.
    const owners = new Set(sa.actions.map((a) => a.element).filter((e) => e !== ''));
    const more = this.opts.graph.order.filter((n) => owners.has(n.name));
    await Promise.all([...buildScope(node), ...more].map((d) => this.loadOverlays(d)));
    if (this.elements.has(node.name)) return false;
    this.elements.set(node.name, ep);
    this.kick(ep);
    return true;
  }

  private loadOverlays(dep: GraphNode): Promise<void> {
    let p = this.overlaysLoaded.get(dep.name);
    if (p === undefined) {
      p = (async () => {
        const k = this.opts.keys.get(dep.name);
        if (k === undefined) return;
        const art = await this.opts.artifacts.lookupRecord(
          this.opts.graph.project.name,
          normalName(dep.name),
          k.weak,
        );
        if (art?.speculativeActions === undefined) return;
        const sa = await loadSpeculativeActions(this.opts.cas, fromPb(art.speculativeActions));
        const c = this.cur(dep.name);
        c.overlays = sa.artifactOverlays;
        c.actions = new Set(
          sa.actions
            .filter((a) => a.element === '')
            .map((a) => digestKey(fromPb(a.baseActionDigest))),
        );
      })().catch(() => undefined);
      this.overlaysLoaded.set(dep.name, p);
    }
    return p;
  }

  /**
   * Whether `owner` primes the action `baseKey` itself in this run: the
   * action is in the list stored under the owner's current weak key, and the
   * owner is neither available (cached or built) nor done building. An
   * element holding a copy of it leaves it to the owner, so that it is
   * instantiated and reported once, by the element whose build records it,
   * whatever the timing.
   */
  private primedByOwner(owner: string, baseKey: string): boolean {
    const c = this.current.get(owner);
    if (c?.actions?.has(baseKey) !== true || c.files !== undefined) return false;
    return this.elements.get(owner)?.buildStarted !== true;
  }

  private cur(name: string): Current {
    let c = this.current.get(name);
    if (c === undefined) {
      c = {};
      this.current.set(name, c);
    }
    return c;
  }

  /** An element's sources are staged: its SOURCE overlays (and dependants') can resolve. */
  sourcesReady(name: string, sources: Digest): void {
    this.cur(name).sources = sources;
    this.kickAll();
  }

  /**
   * The files of the element's build tree its stored actions read that no
   * recorded action or staged file produced (BUILD_TREE overlays): each path
   * (relative to its build root) with the earliest phase a reader ran in.
   */
  buildTreeFiles(name: string): { path: string; phase: string }[] {
    const ep = this.elements.get(name);
    const found = new Map<string, string>();
    for (const sa of ep?.actions ?? []) {
      if (sa.element !== '') continue;
      for (const o of sa.overlays)
        if (o.type === OverlayType.BUILD_TREE) {
          const was = found.get(o.sourcePath);
          if (was === undefined || phaseIndex(o.phase) < phaseIndex(was))
            found.set(o.sourcePath, o.phase);
        }
    }
    return [...found].map(([path, phase]) => ({ path, phase }));
  }

  /**
   * A file of the element's live build tree, read (and stored in CAS) while
   * it builds. Its actions that were instantiated with another content (what
   * was recorded) are instantiated again, and so are those of the element
   * whose inputs come from their outputs: the corrected ones are submitted
   * as soon as they resolve.
   */
  buildTreeFile(name: string, path: string, digest: Digest): void {
    const c = this.cur(name);
    c.buildTree ??= new Map();
    c.buildTree.set(path, digest);
    const ep = this.elements.get(name);
    if (ep === undefined) return;
    ep.treeVersion++;
    const again = new Set<string>();
    const reopen = (i: number, baseKey: string): void => {
      again.add(baseKey);
      const was = this.adapted.get(baseKey);
      if (this.gaveUp.has(baseKey) || was === undefined) return;
      // Counted unchanged on a guess that no longer holds: it is counted again when instantiated.
      if (digestKey(was) === baseKey) ep.stats.unchanged--;
      this.superseded.get(baseKey)?.abort();
      this.superseded.delete(baseKey);
      this.adapted.delete(baseKey);
      ep.open.add(i);
      ep.waiting.delete(i);
    };
    ep.actions.forEach((sa, i) => {
      if (sa.element !== '') return;
      const differs = sa.overlays.some(
        (o) =>
          o.type === OverlayType.BUILD_TREE &&
          o.sourcePath === path &&
          (o.targetDigest?.hash !== digest.hash ||
            Number(o.targetDigest.sizeBytes) !== digest.size),
      );
      if (differs) reopen(i, digestKey(fromPb(sa.baseActionDigest)));
    });
    if (again.size === 0) return;
    // Their consumers, in recorded order (a producer comes before its consumers).
    ep.actions.forEach((sa, i) => {
      const baseKey = digestKey(fromPb(sa.baseActionDigest));
      if (sa.element !== '' || again.has(baseKey)) return;
      const uses = sa.overlays.some(
        (o) =>
          o.type === OverlayType.ACTION &&
          o.sourceActionDigest !== undefined &&
          again.has(digestKey(fromPb(o.sourceActionDigest))),
      );
      if (uses) reopen(i, baseKey);
    });
    this.kick(ep);
  }

  /** An element is built or cached: ARTIFACT overlays on it can resolve. */
  available(name: string, artifact: Artifact): void {
    const c = this.cur(name);
    if (artifact.files !== undefined) c.files = fromPb(artifact.files);
    if (artifact.sources !== undefined) c.sources ??= fromPb(artifact.sources);
    this.kickAll();
  }

  /**
   * The element's pass before its build starts, awaited (instantiation and
   * submission, not execution). Priming goes on while the build runs: a link
   * waiting on a primed compile is primed as soon as that compile lands, and
   * the build's own link then joins it or hits.
   */
  async beforeBuild(name: string): Promise<void> {
    const ep = this.elements.get(name);
    if (ep === undefined) return;
    await this.runPass(ep);
  }

  /** The element's build is over: what still waits is reported deferred, and nothing more is primed for it. */
  buildFinished(name: string): void {
    const ep = this.elements.get(name);
    if (ep === undefined || ep.buildStarted) return;
    ep.buildStarted = true;
    for (const i of ep.open) {
      const sa = ep.actions[i];
      if (sa === undefined) continue;
      ep.stats.deferred++;
      this.emit(name, 'deferred', fromPb(sa.baseActionDigest), {
        reason: `still waiting on ${ep.waiting.get(i) ?? 'an input'} when the build ended`,
      });
    }
  }

  /**
   * How the build answered one of its recorded actions. When priming has
   * started a run of the same action, the answer waits until that run says
   * whether priming produced the result: the build may have run it first
   * (priming then finds it cached or joins the build's run), and then the
   * hit is not priming's. `classified` waits for these.
   */
  classify(element: string, action: Digest, cached: boolean): void {
    const key = digestKey(action);
    // The build's result is in the action cache now: actions waiting on it may resolve.
    this.kickAll();
    const plain: BuildActionOutcome = cached ? 'hit-cached' : 'miss';
    const run = this.primedRuns.get(key);
    if (run === undefined) {
      this.count(element, key, plain);
      return;
    }
    let pending = this.classifying.get(element);
    if (pending === undefined) {
      pending = new Set();
      this.classifying.set(element, pending);
    }
    const waiting = pending;
    const done = run.then((primed) => {
      this.count(element, key, primed ? 'hit-primed' : plain);
    });
    waiting.add(done);
    void done.finally(() => waiting.delete(done));
  }

  /** Waits until every action of the element's build is classified. */
  async classified(element: string): Promise<void> {
    const pending = this.classifying.get(element);
    while (pending !== undefined && pending.size > 0) await Promise.all([...pending]);
  }

  private count(element: string, key: string, outcome: BuildActionOutcome): void {
    const s = this.stats(element);
    if (outcome === 'hit-primed') s.hits_primed++;
    else if (outcome === 'hit-cached') s.hits_cached++;
    else s.misses++;
    const ep = this.elements.get(element);
    if (outcome === 'hit-primed') this.used.add(key);
    if (ep !== undefined || outcome === 'hit-primed') this.finishStats(element);
    this.opts.events?.({ type: 'build-action', element, action: key, outcome });
  }

  private readonly used = new Set<string>();

  private finishStats(element: string): void {
    const s = this.stats(element);
    const ep = this.elements.get(element);
    if (ep !== undefined)
      s.precision =
        ep.primed.size === 0
          ? null
          : [...ep.primed].filter((k) => this.used.has(k)).length / ep.primed.size;
    const missed = s.hits_primed + s.misses;
    s.recall = missed === 0 ? null : s.hits_primed / missed;
  }

  /** Stops submitting (running primed actions are left to finish or be cancelled by the executor). */
  close(): void {
    this.abort.abort();
  }

  private kickAll(): void {
    for (const ep of this.elements.values()) this.kick(ep);
  }

  private kick(ep: ElementPriming): void {
    if (ep.buildStarted || ep.open.size === 0) return;
    void this.runPass(ep).catch(() => undefined);
  }

  /** One pass at a time per element; a kick during a pass runs another after it. */
  private runPass(ep: ElementPriming): Promise<void> {
    if (ep.pass !== undefined) {
      ep.again = true;
      return ep.pass;
    }
    ep.pass = (async () => {
      // `again` and `buildStarted` change while a pass awaits: read them through calls.
      const more = (): boolean => ep.again && !ep.buildStarted;
      do {
        ep.again = false;
        await this.pass(ep);
      } while (more());
    })().finally(() => {
      ep.pass = undefined;
    });
    return ep.pass;
  }

  private env(ep: ElementPriming): InstantiateEnv {
    const name = ep.node.name;
    const recorded = new Map(ep.base.buildDependencies.map((d) => [d.element, d.strongKey]));
    return {
      cas: this.opts.cas,
      ac: this.opts.ac,
      trees: this.opts.trees,
      element: name,
      adapted: (base) => this.adapted.get(digestKey(base)),
      gaveUp: (base) => this.gaveUp.has(digestKey(base)),
      origin: (el): OriginState => {
        const c = this.current.get(el) ?? {};
        if (el === name) {
          return {
            sources: c.sources,
            sourcesUnchanged:
              c.sources !== undefined &&
              ep.base.sources !== undefined &&
              c.sources.hash === ep.base.sources.hash,
            buildTree: c.buildTree,
          };
        }
        const was = recorded.get(el);
        const unchanged =
          was !== undefined && was === this.opts.keys.get(el as ElementName)?.strong;
        return {
          sources: c.sources,
          sourcesUnchanged: unchanged,
          files: c.files,
          artifactUnchanged: unchanged,
          artifactOverlays: c.overlays,
          buildTree: c.buildTree,
        };
      },
    };
  }

  private async pass(ep: ElementPriming): Promise<void> {
    const env = this.env(ep);
    const name = ep.node.name;
    /** Actions settled without a submission (whose completion would kick the others). */
    let settledQuietly = false;
    const giveUp = (base: Digest, reason: string): void => {
      this.gaveUp.add(digestKey(base));
      ep.stats.unresolved++;
      this.emit(name, 'unresolved', base, { reason });
      settledQuietly = true;
    };
    for (let progress = true; progress && !ep.buildStarted;) {
      progress = false;
      // Longest recorded first (with order 'cost'): the first submitted is
      // the first to get a free slot, and the pool's priorities order the rest.
      const open = [...ep.open];
      if (ep.byCost) open.sort((a, b) => (ep.seconds[b] ?? 0) - (ep.seconds[a] ?? 0) || a - b);
      for (const i of open) {
        const sa = ep.actions[i];
        if (sa === undefined) continue;
        const base = fromPb(sa.baseActionDigest);
        const baseKey = digestKey(base);
        if (this.adapted.has(baseKey)) {
          // Instantiated already (a copied-in action another element primed).
          ep.open.delete(i);
          continue;
        }
        // A copied-in action its own element primes in this run is left to it.
        if (sa.element !== '' && this.primedByOwner(sa.element, baseKey)) continue;
        // A copy from an element whose own inputs changed since (another weak
        // key) predicts nothing, unless only its sources changed (the same
        // recipe key): then it is followed with its current sources (its
        // SOURCE overlays resolve in them), a referenced speculative action.
        const now = sa.element === '' ? undefined : this.opts.keys.get(sa.element as ElementName);
        if (
          sa.element !== '' &&
          sa.elementWeakKey !== '' &&
          now?.weak !== sa.elementWeakKey &&
          (sa.elementRecipeKey === '' || now?.recipe !== sa.elementRecipeKey)
        ) {
          ep.open.delete(i);
          giveUp(base, `${sa.element} changed itself since this action was recorded`);
          progress = true;
          continue;
        }
        let r;
        const treeVersion = ep.treeVersion;
        try {
          r = await instantiate(env, sa);
        } catch (e) {
          ep.open.delete(i);
          giveUp(base, e instanceof Error ? e.message : String(e));
          progress = true;
          continue;
        }
        // Another pass may have instantiated it while this one awaited.
        if (this.adapted.has(baseKey)) {
          ep.open.delete(i);
          continue;
        }
        // A file of the build tree was read meanwhile: instantiated again, with
        // it (the action may read it, or take an output of one that does).
        if (ep.treeVersion !== treeVersion) {
          ep.again = true;
          continue;
        }
        switch (r.kind) {
          case 'unchanged':
            this.adapted.set(baseKey, base);
            ep.open.delete(i);
            ep.stats.unchanged++;
            this.emit(name, 'unchanged', base);
            progress = true;
            settledQuietly = true;
            break;
          case 'changed': {
            this.adapted.set(baseKey, r.digest);
            ep.open.delete(i);
            this.emit(name, 'instantiated', base, { adapted: r.digest });
            const skip = this.overBudget(ep, baseKey, ep.seconds[i] ?? 0);
            if (skip === undefined) this.submit(ep, base, r.digest, r.blobs, ep.seconds[i] ?? 0);
            else {
              ep.stats.skipped++;
              this.emit(name, 'skipped', base, { adapted: r.digest, reason: skip });
              settledQuietly = true;
            }
            progress = true;
            break;
          }
          case 'deferred':
            if (ep.waiting.get(i) !== r.waiting) {
              ep.waiting.set(i, r.waiting);
              this.emit(name, 'deferred', base, { reason: r.waiting });
            }
            break;
          case 'unresolved':
            ep.open.delete(i);
            giveUp(base, r.reason);
            progress = true; // its consumers can no longer resolve through it
            break;
        }
      }
    }
    // Other elements may wait on what this pass found unchanged or gave up.
    if (settledQuietly)
      for (const other of this.elements.values()) if (other !== ep) this.kick(other);
  }

  /** Seconds of the budget spent on submitted actions. */
  private spent = 0;

  /**
   * Why an action should not be submitted under the budget, or undefined to
   * submit it (and count its recorded time against the budget).
   */
  private overBudget(ep: ElementPriming, baseKey: string, seconds: number): string | undefined {
    const budget = this.opts.budgetSeconds;
    if (budget === undefined) return undefined;
    if (seconds < PRIMING_OVERHEAD_S && !ep.chained.has(baseKey))
      return `recorded at ${(seconds * 1000).toFixed(0)} ms, less than priming it costs`;
    if (this.spent + seconds > budget)
      return `over the priming budget (${budget} s, ${this.spent.toFixed(2)} s spent)`;
    this.spent += seconds;
    return undefined;
  }

  /** Fire and forget: the executor runs it and lands its result; completion kicks every element. */
  private submit(
    ep: ElementPriming,
    base: Digest,
    adapted: Digest,
    blobs: Uint8Array[],
    seconds: number,
  ): void {
    const key = digestKey(adapted);
    if (this.submitted.has(key)) return; // never twice, whatever the interleaving
    const name = ep.node.name;
    const basePriority = this.opts.priority ?? -1;
    const priority =
      (this.opts.order ?? 'recorded') === 'cost'
        ? primingPriority(basePriority, Math.max(0, ep.buildIndex), seconds)
        : basePriority;
    // Cancelled when the element's build tree shows it was instantiated on a wrong guess.
    const own = new AbortController();
    this.superseded.set(digestKey(base), own);
    const signal = AbortSignal.any([this.abort.signal, own.signal]);
    const run = this.limiter.run(async () => {
      if (signal.aborted) return;
      this.emit(name, 'submitted', base, { adapted });
      ep.primed.add(key);
      ep.stats.primed++;
      let decide: (primed: boolean) => void = () => undefined;
      this.primedRuns.set(
        key,
        new Promise<boolean>((resolve) => {
          decide = resolve;
        }),
      );
      const unprime = (): void => {
        ep.primed.delete(key);
        ep.stats.primed--;
        this.finishStats(name);
      };
      try {
        // The adapted action's new Directories and Action, stored now (instantiation only computed them).
        await this.opts.cas.writeBlobs(blobs);
        const out = await this.opts.executor.execute(adapted, { priority, signal });
        const failure =
          out.error !== undefined || out.result.exitCode !== 0
            ? (out.error?.message ?? `exit code ${out.result.exitCode}`)
            : undefined;
        // Already in the cache or run by the build (priming joined its run):
        // priming did not produce it. Failed: nothing to use. Not primed.
        const primed = !out.cached && out.joined !== true && failure === undefined;
        if (!primed) unprime();
        decide(primed);
        if (failure !== undefined) this.emit(name, 'failed', base, { adapted, reason: failure });
        else if (primed) this.emit(name, 'completed', base, { adapted });
        else
          this.emit(name, 'completed', base, {
            adapted,
            reason: out.cached
              ? 'not primed: its result was already in the action cache'
              : 'not primed: joined the build’s own run of it',
          });
      } catch (e) {
        unprime();
        decide(false);
        this.emit(name, 'failed', base, {
          adapted,
          reason: own.signal.aborted
            ? 'cancelled: the build tree gave it other inputs'
            : e instanceof Error
              ? e.message
              : String(e),
        });
      }
      if (this.superseded.get(digestKey(base)) === own) this.superseded.delete(digestKey(base));
      this.kickAll();
    }, priority);
    this.submitted.set(key, run);
  }

  /** Waits until no pass runs and every submitted action has settled (tests, benchmarks, the end of a run). */
  async settle(): Promise<void> {
    for (;;) {
      const pending = [...this.submitted.values()];
      const passes = [...this.elements.values()].flatMap((e) =>
        e.pass === undefined ? [] : [e.pass],
      );
      if (passes.length === 0 && pending.length === this.settledCount) return;
      await Promise.all([...pending, ...passes]);
      this.settledCount = pending.length;
    }
  }

  private settledCount = -1;
}

const PHASE_ORDER = ['configure-commands', 'build-commands', 'install-commands', 'strip-commands'];

/** A build phase's place in the order phases run in (unknown ones: build-commands). */
export function phaseIndex(phase: string): number {
  const i = PHASE_ORDER.indexOf(phase);
  return i < 0 ? 1 : i;
}
