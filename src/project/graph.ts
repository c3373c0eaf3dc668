// The third loading stage: the targets and everything they depend on, each
// element loaded once (in parallel), every missing file named with the
// element that refers to it, every cycle named with its whole path. Only a
// graph without problems comes out: the scheduler never sees half-valid data.
import { Diagnostics, SpecbuildError, type Location, type Result } from '../core/index.js';
import { loadElement, type ElementDecl, type LoadedElement } from './element.js';
import { parseElementName, type ElementName } from './names.js';
import type { Project } from './project.js';

export interface GraphNode {
  decl: ElementDecl;
  name: ElementName;
  /** Direct build dependencies, in declaration order. */
  buildDeps: GraphNode[];
  /** Direct runtime dependencies, in declaration order. */
  runtimeDeps: GraphNode[];
}

export interface Graph {
  project: Project;
  targets: GraphNode[];
  nodes: ReadonlyMap<ElementName, GraphNode>;
  /** Every node, dependencies before dependants (a stable order). */
  order: GraphNode[];
}

/** Loads `targets` (element names as given on the command line) and their dependencies. */
export async function loadGraph(
  project: Project,
  targets: readonly string[],
): Promise<Result<Graph>> {
  const d = new Diagnostics();
  const decls = new Map<ElementName, Promise<LoadedElement>>();
  // Each element is loaded once; its dependencies are started, not awaited,
  // so that a cycle cannot make a load wait for itself.
  const load = (name: ElementName, referrer?: { at: Location; by: ElementName }): void => {
    if (decls.has(name)) return;
    decls.set(
      name,
      loadElement(project, name, d, referrer).then((loaded) => {
        for (const dep of loaded.deps) load(dep.name, { at: dep.at, by: name });
        return loaded;
      }),
    );
  };
  const targetNames: ElementName[] = [];
  for (const t of targets) {
    const name = parseElementName(t);
    if (typeof name !== 'string') {
      d.add(
        new SpecbuildError('load/bad-element-name', name.error, {
          hint: 'name elements by their path under the element directory, e.g. app.bst',
        }),
      );
      continue;
    }
    targetNames.push(name);
  }
  for (const n of targetNames) load(n);
  // Wait until no load starts another.
  for (let settled = 0; settled < decls.size;) {
    const pending = [...decls.values()];
    await Promise.all(pending);
    settled = pending.length;
  }
  const loaded = new Map<ElementName, LoadedElement>();
  for (const [name, p] of decls) loaded.set(name, await p);
  // Cycles (among every file that names its dependencies, valid or not),
  // each reported once with its whole path.
  const state = new Map<ElementName, 'visiting' | 'done'>();
  const order: ElementName[] = [];
  const visit = (name: ElementName, path: ElementName[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      const from = loaded.get(path.at(-1) ?? name);
      d.add(
        new SpecbuildError('load/dependency-cycle', `dependency cycle: ${cycle.join(' → ')}`, {
          location: from?.deps.find((x) => x.name === name)?.at,
        }),
      );
      return;
    }
    state.set(name, 'visiting');
    for (const dep of loaded.get(name)?.deps ?? []) visit(dep.name, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const t of targetNames) visit(t, []);
  if (d.errors.length > 0) return { ok: false, errors: d.errors };
  const resolved = new Map<ElementName, ElementDecl>();
  for (const [name, l] of loaded) if (l.decl !== undefined) resolved.set(name, l.decl);

  const nodes = new Map<ElementName, GraphNode>();
  for (const name of order) {
    const decl = resolved.get(name);
    if (decl === undefined) continue;
    const node: GraphNode = { decl, name, buildDeps: [], runtimeDeps: [] };
    for (const dep of decl.deps) {
      const n = nodes.get(dep.name);
      if (n === undefined) throw new Error(`bug: ${dep.name} is not loaded before ${name}`);
      if (dep.build) node.buildDeps.push(n);
      if (dep.runtime) node.runtimeDeps.push(n);
    }
    nodes.set(name, node);
  }
  const targetNodes = [...new Set(targetNames)]
    .map((t) => nodes.get(t))
    .filter((n) => n !== undefined);
  return { ok: true, value: { project, targets: targetNodes, nodes, order: [...nodes.values()] } };
}

/** `node` and everything it needs at run time, dependencies first. */
export function runtimeClosure(node: GraphNode): GraphNode[] {
  return new Scopes().runtimeClosure(node);
}

/**
 * What is staged to build `node`: each build dependency with its runtime
 * closure, dependencies first, each once (BuildStream's build scope).
 */
export function buildScope(node: GraphNode): GraphNode[] {
  return new Scopes().buildScope(node);
}

/**
 * Runtime closures and build scopes of many nodes, each closure walked once
 * and reused: a node's closure is its runtime dependencies' closures, in
 * order, each node once, then the node (the same order as a depth-first
 * walk, since a node already seen brings only nodes already seen). Walking
 * every closure afresh for each of bench:load's 1,000 elements (build scopes
 * of 143 elements median, 1,000 at most) took ~0.2 s of computeKeys; reused,
 * ~0.03 s. Inside, nodes are numbered as first met and closures are arrays
 * of numbers, merged with an array of marks instead of a Set: the 171,000
 * scope entries of bench:load's keys cost ~0.1 s less that way. A caller
 * that asks for many nodes keeps one of these while the graph lives (a
 * graph does not change).
 */
export class Scopes {
  private readonly ids = new Map<GraphNode, number>();
  private readonly nodes: GraphNode[] = [];
  private readonly closures: (Int32Array | undefined)[] = [];
  /** marks[id] === epoch: already taken by the union in progress. */
  private marks = new Uint32Array(64);
  private epoch = 0;

  /** `node` and everything it needs at run time, dependencies first. */
  runtimeClosure(node: GraphNode): GraphNode[] {
    return this.nodesOf(this.closure(this.idOf(node)));
  }

  /** What is staged to build `node` (see `buildScope`). */
  buildScope(node: GraphNode): GraphNode[] {
    return this.nodesOf(this.buildScopeIds(node));
  }

  /** buildScope as the numbers of its nodes (see `idOf`, `node`). */
  buildScopeIds(node: GraphNode): Int32Array {
    return this.union(node.buildDeps.map((b) => this.closure(this.idOf(b))));
  }

  /** The number of `node` in this Scopes (given on first sight, from 0). */
  idOf(node: GraphNode): number {
    let id = this.ids.get(node);
    if (id === undefined) {
      id = this.nodes.length;
      this.ids.set(node, id);
      this.nodes.push(node);
    }
    return id;
  }

  /** The node numbered `id`. */
  node(id: number): GraphNode {
    const n = this.nodes[id];
    if (n === undefined) throw new Error(`bug: no node numbered ${String(id)}`);
    return n;
  }

  private nodesOf(ids: Int32Array): GraphNode[] {
    return Array.from(ids, (id) => this.node(id));
  }

  private closure(id: number): Int32Array {
    let c = this.closures[id];
    if (c === undefined) {
      const node = this.node(id);
      // Deep runtime chains recurse here, as the depth-first walk did.
      const deps = node.runtimeDeps.map((r) => this.closure(this.idOf(r)));
      c = this.union([...deps, Int32Array.of(id)]);
      this.closures[id] = c;
    }
    return c;
  }

  /** The lists concatenated, each node kept at its first place only. */
  private union(lists: readonly Int32Array[]): Int32Array {
    if (lists.length === 1) return lists[0] ?? new Int32Array(0);
    if (this.marks.length < this.nodes.length) {
      const grown = new Uint32Array(Math.max(this.nodes.length, this.marks.length * 2));
      grown.set(this.marks);
      this.marks = grown;
    }
    if (this.epoch === 0xffffffff) {
      this.marks.fill(0);
      this.epoch = 0;
    }
    const epoch = ++this.epoch;
    const marks = this.marks;
    let total = 0;
    for (const l of lists) total += l.length;
    const out = new Int32Array(total);
    let n = 0;
    for (const l of lists)
      for (let i = 0; i < l.length; i++) {
        const id = l[i] ?? 0;
        if (marks[id] === epoch) continue;
        marks[id] = epoch;
        out[n++] = id;
      }
    return n === total ? out : out.slice(0, n);
  }
}

/** The elements `--deps` selects around the targets, dependencies first. */
export function selectDeps(graph: Graph, deps: 'none' | 'build' | 'run' | 'all'): GraphNode[] {
  const pick = new Set<ElementName>();
  for (const t of graph.targets) {
    if (deps === 'none') pick.add(t.name);
    else if (deps === 'run') for (const n of runtimeClosure(t)) pick.add(n.name);
    else if (deps === 'build') for (const n of buildScope(t)) pick.add(n.name);
    else {
      const walk = (n: GraphNode): void => {
        if (pick.has(n.name)) return;
        pick.add(n.name);
        for (const x of [...n.buildDeps, ...n.runtimeDeps]) walk(x);
      };
      walk(t);
    }
  }
  return graph.order.filter((n) => pick.has(n.name));
}
