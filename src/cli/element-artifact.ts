// One element's artifact as the artifact and shell commands find it: the
// element's current strong key (its sources and dependencies as they are
// now), the artifact cached under that key, or the log of a build that
// failed under it. When there is none, the error names the element and the
// key and says what to run.
import { SpecbuildError } from '../core/index.js';
import type { Artifact } from '../cas/index.js';
import {
  buildScope,
  normalName,
  type ElementKeys,
  type ElementName,
  type Graph,
  type GraphNode,
  type Project,
} from '../project/index.js';
import type { Digest } from '../reapi/index.js';
import { resolveKeys } from '../scheduler/index.js';
import type { GlobalOptions } from './options.js';
import { openGraph, openProject, sourceEnv, type CacheStores } from './workspace.js';

export interface ElementTarget {
  project: Project;
  graph: Graph;
  /** The element named on the command line. */
  node: GraphNode;
  keys: ReadonlyMap<ElementName, ElementKeys | undefined>;
  stores: CacheStores;
}

/** Loads the project, the element and its dependencies, and every key. */
export async function openElement(
  g: GlobalOptions,
  name: string,
  stores: CacheStores,
): Promise<ElementTarget> {
  const project = await openProject(g.directory, g.config);
  const graph = await openGraph(project, [name]);
  const node = graph.targets[0];
  if (node === undefined) throw new Error(`bug: ${name} loaded without a node`);
  const keys = await resolveKeys(graph, sourceEnv(project, stores), stores.toolchain);
  return { project, graph, node, keys, stores };
}

/** The element's keys, or an error saying why it has none (a source without a ref). */
export function currentKeys(t: ElementTarget, node: GraphNode = t.node): ElementKeys {
  const k = t.keys.get(node.name);
  if (k !== undefined) return k;
  // The culprit is the lowest element without keys: its dependencies all have them.
  const culprit =
    [...buildScope(node), node].find(
      (n) =>
        t.keys.get(n.name) === undefined &&
        buildScope(n).every((d) => t.keys.get(d.name) !== undefined),
    ) ?? node;
  throw new SpecbuildError(
    'source/no-ref',
    `${node.name} has no cache key: ${culprit === node ? 'one of its sources' : `a source of its dependency ${culprit.name}`} has no ref`,
    { provenance: culprit.decl.file, hint: `run: specbuild source track ${culprit.name}` },
  );
}

export interface Found {
  keys: ElementKeys;
  /** The artifact under the element's strong key, if it and all it needs are cached. */
  artifact: Artifact | undefined;
  /** Otherwise the log of a build that failed under that key, if remembered. */
  failedLog: Digest | undefined;
}

/** What the cache holds for the element under its current strong key. */
export async function findArtifact(t: ElementTarget, node: GraphNode = t.node): Promise<Found> {
  const keys = currentKeys(t, node);
  const element = normalName(node.name);
  const artifact = await t.stores.artifacts.lookup(t.project.name, element, keys.strong);
  const failedLog =
    artifact === undefined
      ? await t.stores.artifacts.failed(t.project.name, element, keys.strong)
      : undefined;
  return { keys, artifact, failedLog };
}

/** The error for an element with no artifact under `key`. */
export function notCached(node: GraphNode, key: string, failed: boolean): SpecbuildError {
  return failed
    ? new SpecbuildError(
        'artifact/not-cached',
        `no artifact of ${node.name} is cached: its last build under key ${key} failed`,
        {
          hint: `see why: specbuild artifact log ${node.name}; look inside: specbuild shell --build ${node.name}`,
        },
      )
    : new SpecbuildError(
        'artifact/not-cached',
        `no artifact of ${node.name} is cached under its key ${key}`,
        { hint: `build it: specbuild build ${node.name}` },
      );
}

/** The element's artifact under its current key, or the error saying there is none. */
export async function requireArtifact(
  t: ElementTarget,
  node: GraphNode = t.node,
): Promise<{ artifact: Artifact; keys: ElementKeys }> {
  const found = await findArtifact(t, node);
  if (found.artifact === undefined)
    throw notCached(node, found.keys.strong, found.failedLog !== undefined);
  return { artifact: found.artifact, keys: found.keys };
}
