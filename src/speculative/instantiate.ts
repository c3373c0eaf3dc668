// Instantiation: one stored action adapted to the current digests of its
// inputs' origins. Each overlay resolves its file from the origin's current
// sources, artifact (or that dependency's artifact_overlays before it is
// built), or the producing action's adapted result; files are replaced only
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

function describe(o: Overlay): string {
  const type = OverlayType[o.type];
  return `${type} ${o.sourceElement === '' ? '(own)' : o.sourceElement}:${o.sourcePath}`;
}

async function resolveOverlay(
  env: InstantiateEnv,
  o: Overlay,
  element: string,
  depth = 0,
): Promise<Resolved> {
  const target = fromPb(o.targetDigest, 'Overlay.target_digest');
  const name = o.sourceElement === '' ? element : o.sourceElement;
  const st = env.origin(name);
  switch (o.type) {
    case OverlayType.SOURCE: {
      if (st.sourcesUnchanged === true) return { digest: target };
      if (st.sources === undefined) return { wait: `sources of ${name}` };
      const d = await env.trees.fileAt(st.sources, o.sourcePath);
      return d === undefined
        ? { fail: `${o.sourcePath} is no longer in the sources of ${name}` }
        : { digest: d };
    }
    case OverlayType.ARTIFACT: {
      if (st.artifactUnchanged === true) return { digest: target };
      if (st.files !== undefined) {
        const d = await env.trees.fileAt(st.files, o.sourcePath);
        return d === undefined
          ? { fail: `${o.sourcePath} is no longer in the artifact of ${name}` }
          : { digest: d };
      }
      // Not built yet: where that file of its artifact comes from.
      const via = st.artifactOverlays?.find((a) => a.targetPaths.includes(o.sourcePath));
      if (via === undefined || depth > 8) return { wait: `artifact of ${name}` };
      return resolveOverlay(env, via, name, depth + 1);
    }
    case OverlayType.ACTION: {
      const base = fromPb(o.sourceActionDigest, 'Overlay.source_action_digest');
      const adapted = env.adapted(base);
      if (adapted === undefined)
        return env.gaveUp?.(base) === true
          ? { fail: `action ${base.hash.slice(0, 12)} of ${name} could not be instantiated` }
          : { wait: `action ${base.hash.slice(0, 12)} of ${name} to be instantiated` };
      if (adapted.hash === base.hash) return { digest: target };
      const result = await env.ac.getActionResult(adapted);
      if (result === undefined)
        return { wait: `action ${adapted.hash.slice(0, 12)} of ${name} to complete` };
      const out = (await outputFilesOf(env.cas, result)).find((f) => f.path === o.sourcePath);
      return out === undefined
        ? { fail: `action ${adapted.hash.slice(0, 12)} no longer outputs ${o.sourcePath}` }
        : { digest: out.digest };
    }
    default:
      return { fail: `unknown overlay type ${String(o.type)}` };
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
  for (const o of sa.overlays) {
    const open = o.targetPaths.filter((p) => !resolvedPaths.has(p));
    if (open.length === 0) continue;
    const r = await resolveOverlay(env, o, element);
    for (const p of open) {
      if ('digest' in r) {
        resolvedPaths.add(p);
        waiting.delete(p);
        failed.delete(p);
        if (
          r.digest.hash !== o.targetDigest?.hash ||
          r.digest.size !== Number(o.targetDigest.sizeBytes)
        )
          replace.set(p, r.digest);
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
