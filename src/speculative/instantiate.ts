// Instantiation: one stored action adapted to the current digests of its
// inputs' origins. Each overlay resolves its file from the origin's current
// sources, artifact (or that dependency's artifact_overlays before it is
// built), the producing action's adapted result, or the element's live build
// tree (what was recorded until the build has written it); files are replaced only
// at the paths recorded. Unresolved is never unchanged: an action with an
// overlay that cannot resolve yet is deferred, and "unchanged" means every
// overlay resolved to what was recorded.
import { fromBinary } from '@bufbuild/protobuf';
import type { ActionCache, Cas } from '../cas/index.js';
import { ActionSchema, digestMessage, fromPb, toPb, type Digest } from '../reapi/index.js';
import { OverlayType, outputFilesOf, type Overlay, type SpeculativeAction } from './actions.js';
import { rewriteTree } from './rewrite.js';
import type { TreeFiles } from './tree-files.js';

/** What the engine knows of an element, for resolving overlays that name it. */
export interface OriginState {
  /** Its current staged sources, or undefined while they are not known. */
  sources?: Digest;
  /** Its sources are the ones the actions were recorded with. */
  sourcesUnchanged?: boolean;
  /** Its current artifact files, or undefined while it is not built. */
  files?: Digest;
  /** Its artifact is the one the actions were recorded with (same strong key). */
  artifactUnchanged?: boolean;
  /** Its artifact_overlays, from its stored speculative actions. */
  artifactOverlays?: readonly Overlay[];
  /**
   * Files of its live build tree read so far (path relative to its build
   * root → digest in CAS), for BUILD_TREE overlays.
   */
  buildTree?: ReadonlyMap<string, Digest>;
}

export interface InstantiateEnv {
  cas: Cas;
  ac: ActionCache;
  trees: TreeFiles;
  /** The element whose actions these are ('' overlays name it). */
  element: string;
  origin(element: string): OriginState;
  /** The adapted digest of a base action, once it is instantiated. */
  adapted(base: Digest): Digest | undefined;
  /** A base action was given up (unresolved): it will never be instantiated. */
  gaveUp?(base: Digest): boolean;
}

export type Instantiation =
  | { kind: 'unchanged' }
  /** Adapted: its digest, and the blobs (new Directories, the Action) to store before it is executed. */
  | { kind: 'changed'; digest: Digest; blobs: Uint8Array[] }
  | { kind: 'deferred'; waiting: string }
  | { kind: 'unresolved'; overlay: Overlay; reason: string };

type Resolved = { digest: Digest } | { wait: string } | { fail: string };

/** A file to look up in a tree: the sources or the artifact of `name`. */
interface Lookup {
  tree: Digest;
  path: string;
  of: 'sources' | 'artifact';
  name: string;
}

/** A file to take from the result of an adapted action (of element `name`). */
interface FromResult {
  adapted: Digest;
  path: string;
  name: string;
}

function describe(o: Overlay): string {
  const type = OverlayType[o.type];
  return `${type} ${o.sourceElement === '' ? '(own)' : o.sourceElement}:${o.sourcePath}`;
}

/** What was recorded, for origins that did not change. */
function recorded(o: Overlay): Resolved {
  return { digest: fromPb(o.targetDigest, 'Overlay.target_digest') };
}

function allIn(paths: readonly string[], set: ReadonlySet<string>): boolean {
  for (const p of paths) if (!set.has(p)) return false;
  return true;
}

function lookUp(paths: ReadonlyMap<string, Digest>, l: Lookup): Resolved {
  const d = paths.get(l.path);
  return d === undefined
    ? { fail: `${l.path} is no longer in the ${l.of} of ${l.name}` }
    : { digest: d };
}

/**
 * Resolves the overlays of one action. An action has hundreds, nearly all
 * looked up in the same one or two trees, so each origin is asked for once
 * and a lookup in a tree already indexed is made without waiting (an await
 * per overlay, and building map keys, cost more than the lookups).
 */
class Resolver {
  private readonly origins = new Map<string, OriginState>();
  private lastTree: Digest | undefined;
  private lastPaths: ReadonlyMap<string, Digest> | undefined;
  /** The first artifact overlay placing each path, per element not built yet. */
  private readonly placing = new Map<string, Map<string, Overlay>>();

  constructor(
    private readonly env: InstantiateEnv,
    private readonly element: string,
  ) {}

  /** The overlay resolved if nothing needs waiting for, else undefined. */
  now(o: Overlay): Resolved | undefined {
    const step = this.plan(o, this.element, 0);
    if (!('tree' in step)) return 'adapted' in step ? undefined : step;
    let paths = step.tree === this.lastTree ? this.lastPaths : undefined;
    if (paths === undefined) {
      paths = this.env.trees.pathsNow(step.tree);
      if (paths === undefined) return undefined;
      this.lastTree = step.tree;
      this.lastPaths = paths;
    }
    return lookUp(paths, step);
  }

  async resolve(o: Overlay): Promise<Resolved> {
    const step = this.plan(o, this.element, 0);
    if ('tree' in step) return lookUp(await this.env.trees.paths(step.tree), step);
    if (!('adapted' in step)) return step;
    const { adapted, path, name } = step;
    const result = await this.env.ac.getActionResult(adapted);
    if (result === undefined)
      return { wait: `action ${adapted.hash.slice(0, 12)} of ${name} to complete` };
    const out = (await outputFilesOf(this.env.cas, result)).find((f) => f.path === path);
    return out === undefined
      ? { fail: `action ${adapted.hash.slice(0, 12)} no longer outputs ${path}` }
      : { digest: out.digest };
  }

  private origin(name: string): OriginState {
    let st = this.origins.get(name);
    if (st === undefined) {
      st = this.env.origin(name);
      this.origins.set(name, st);
    }
    return st;
  }

  /** What resolving `o` takes: nothing more, a lookup in a tree, or an action's result. */
  private plan(o: Overlay, element: string, depth: number): Resolved | Lookup | FromResult {
    const name = o.sourceElement === '' ? element : o.sourceElement;
    const st = this.origin(name);
    switch (o.type) {
      case OverlayType.SOURCE: {
        if (st.sourcesUnchanged === true) return recorded(o);
        if (st.sources === undefined) return { wait: `sources of ${name}` };
        return { tree: st.sources, path: o.sourcePath, of: 'sources', name };
      }
      case OverlayType.ARTIFACT: {
        if (st.artifactUnchanged === true) return recorded(o);
        if (st.files !== undefined)
          return { tree: st.files, path: o.sourcePath, of: 'artifact', name };
        // Not built yet: where that file of its artifact comes from.
        const via = this.placer(name, st).get(o.sourcePath);
        if (via === undefined || depth > 8) return { wait: `artifact of ${name}` };
        return this.plan(via, name, depth + 1);
      }
      case OverlayType.ACTION: {
        const base = fromPb(o.sourceActionDigest, 'Overlay.source_action_digest');
        const adapted = this.env.adapted(base);
        if (adapted === undefined)
          return this.env.gaveUp?.(base) === true
            ? { fail: `action ${base.hash.slice(0, 12)} of ${name} could not be instantiated` }
            : { wait: `action ${base.hash.slice(0, 12)} of ${name} to be instantiated` };
        if (adapted.hash === base.hash) return recorded(o);
        return { adapted, path: o.sourcePath, name };
      }
      case OverlayType.BUILD_TREE: {
        // Until the build has written it, speculate that it did not change
        // (what was recorded); once read, the engine instantiates again
        // the actions whose file differs.
        const known = st.buildTree?.get(o.sourcePath);
        return known === undefined ? recorded(o) : { digest: known };
      }
      default:
        return { fail: `unknown overlay type ${String(o.type)}` };
    }
  }

  /** The first of an element's artifact overlays placing each path. */
  private placer(name: string, st: OriginState): Map<string, Overlay> {
    let m = this.placing.get(name);
    if (m === undefined) {
      m = new Map();
      for (const a of st.artifactOverlays ?? [])
        for (const p of a.targetPaths) if (!m.has(p)) m.set(p, a);
      this.placing.set(name, m);
    }
    return m;
  }
}

/** Adapts `sa` (whose actions belong to env.element, or to sa.element when copied in). */
export async function instantiate(
  env: InstantiateEnv,
  sa: SpeculativeAction,
): Promise<Instantiation> {
  const base = fromPb(sa.baseActionDigest, 'SpeculativeAction.base_action_digest');
  const element = sa.element === '' ? env.element : sa.element;
  const replace = new Map<string, Digest>();
  const resolvedPaths = new Set<string>();
  const waiting = new Map<string, string>();
  const failed = new Map<string, { overlay: Overlay; reason: string }>();
  const resolver = new Resolver(env, element);
  for (const o of sa.overlays) {
    if (allIn(o.targetPaths, resolvedPaths)) continue;
    const r = resolver.now(o) ?? (await resolver.resolve(o));
    // The recorded digest is only compared here: a differing one is replaced.
    const changed =
      'digest' in r &&
      (r.digest.hash !== o.targetDigest?.hash ||
        r.digest.size !== Number(o.targetDigest.sizeBytes));
    // One path (the usual case) is not resolved yet: allIn said so.
    const single = o.targetPaths.length === 1;
    for (const p of o.targetPaths) {
      if (!single && resolvedPaths.has(p)) continue;
      if ('digest' in r) {
        resolvedPaths.add(p);
        if (waiting.size > 0) waiting.delete(p);
        if (failed.size > 0) failed.delete(p);
        if (changed) replace.set(p, r.digest);
      } else if ('wait' in r) {
        if (!waiting.has(p)) waiting.set(p, r.wait);
      } else if (!failed.has(p)) {
        failed.set(p, { overlay: o, reason: r.fail });
      }
    }
  }
  // A path some overlay may still resolve: wait for it.
  const wait = [...waiting.values()][0];
  if (wait !== undefined) return { kind: 'deferred', waiting: wait };
  const fail = [...failed.values()][0];
  if (fail !== undefined)
    return {
      kind: 'unresolved',
      overlay: fail.overlay,
      reason: `${describe(fail.overlay)}: ${fail.reason}`,
    };
  if (replace.size === 0) return { kind: 'unchanged' };
  const action = fromBinary(ActionSchema, await env.cas.readBlob(base));
  const tree = await rewriteTree(env.trees.reader, fromPb(action.inputRootDigest), replace);
  action.inputRootDigest = toPb(tree.root);
  const enc = digestMessage(ActionSchema, action);
  return { kind: 'changed', digest: enc.digest, blobs: [...tree.blobs, enc.bytes] };
}
