// Generation, after an element builds: for each recorded subaction, where
// each file of its input tree came from — the element's sources (SOURCE), a
// staged dependency's artifact (ARTIFACT), or an earlier action's output
// (ACTION: within the element, or in `full` mode within a dependency's
// build) — recorded with the exact paths it sits at, so that priming
// replaces it there only. The element's own artifact is indexed only to say
// where its files came from (artifact_overlays), never to resolve its own
// actions' inputs.
import { create } from '@bufbuild/protobuf';
import type { ActionCache, Cas } from '../cas/index.js';
import { digestKey, fromPb, speculativePb, toPb, type Digest } from '../reapi/index.js';
import {
  newOverlay,
  OverlayType,
  outputFilesOf,
  readAction,
  type Overlay,
  type SpeculativeAction,
  type SpeculativeActions,
} from './actions.js';
import { crossElement, intraElement, type Mode } from './mode.js';
import type { TreeFiles } from './tree-files.js';

export interface GenerateDependency {
  name: string;
  /** Its artifact's files (staged at / in the element's sandbox). */
  files: Digest;
  /** Its staged sources, when known. */
  sources?: Digest;
  /** Its stored speculative actions (for `full`). */
  speculative?: SpeculativeActions;
  /** Its weak key (copies of its actions remember it). */
  weakKey?: string;
  /** Its recipe key (the weak key without its sources; copies remember it too). */
  recipeKey?: string;
}

export interface GenerateInput {
  mode: Mode;
  /** %{build-root}, absolute (where the element's sources sit in its actions' input trees). */
  buildRoot: string;
  sources: Digest;
  /** The element's own artifact files. */
  files: Digest;
  /** Recorded subactions, in order. */
  subactions: readonly Digest[];
  /** The build scope, in staging order. */
  deps: readonly GenerateDependency[];
  /**
   * The build phase each recorded action ran in (HASH/SIZE → phase), for
   * BUILD_TREE overlays; an action not in it counts as build-commands.
   */
  phases?: ReadonlyMap<string, string>;
}

interface Origin {
  type: speculativePb.Overlay_Type;
  /** '' for the element itself. */
  element: string;
  /** Path in its sources or artifact, or the output path of the producing action. */
  path: string;
  /** Where it sits in an input tree when it is where it was staged or produced. */
  location: string | undefined;
  /** ACTION: the producing action's base digest. */
  action?: Digest;
  /** BUILD_TREE: the phase its reader ran in. */
  phase?: string;
  /** Its overlay's identity with the content's hash: files of one input tree are grouped by it. */
  key: string;
}

/** An origin of the file of content `hash` (the key is made once, not per input file). */
function origin(hash: string, o: Omit<Origin, 'key'>): Origin {
  const action = o.action === undefined ? '' : digestKey(o.action);
  return { ...o, key: `${o.type}\0${o.element}\0${o.path}\0${action}\0${hash}` };
}

/** SOURCE first, then ACTION, then ARTIFACT (the order resolution tries them in). */
const RANK: Record<speculativePb.Overlay_Type, number> = {
  [OverlayType.SOURCE]: 0,
  [OverlayType.ACTION]: 1,
  [OverlayType.ARTIFACT]: 2,
  [OverlayType.BUILD_TREE]: 3,
};

const rel = (abs: string): string => abs.replace(/^\/+/, '').replace(/\/+$/, '');
const joinPath = (a: string, b: string): string => (a === '' ? b : `${a}/${b}`);

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l === undefined) m.set(k, [v]);
  else l.push(v);
}

export interface GenerateStats {
  actions: number;
  dropped: number;
  overlays: number;
  copied: number;
  /** Recorded actions that could not be read (their blobs gone), and why for the first. */
  skipped: number;
  skipReason?: string;
}

export async function generate(
  cas: Cas,
  ac: ActionCache,
  trees: TreeFiles,
  input: GenerateInput,
): Promise<{ speculative: SpeculativeActions; stats: GenerateStats }> {
  const buildRoot = rel(input.buildRoot);
  // 1. Where files of known origin sit: own sources, dependencies' sources and artifacts.
  const origins = new Map<string, Origin[]>();
  for (const f of await trees.files(input.sources))
    push(
      origins,
      f.digest.hash,
      origin(f.digest.hash, {
        type: OverlayType.SOURCE,
        element: '',
        path: f.path,
        location: joinPath(buildRoot, f.path),
      }),
    );
  for (const dep of input.deps) {
    if (dep.sources === undefined) continue;
    for (const f of await trees.files(dep.sources))
      push(
        origins,
        f.digest.hash,
        origin(f.digest.hash, {
          type: OverlayType.SOURCE,
          element: dep.name,
          path: f.path,
          location: undefined,
        }),
      );
  }
  for (const dep of input.deps)
    for (const f of await trees.files(dep.files))
      push(
        origins,
        f.digest.hash,
        origin(f.digest.hash, {
          type: OverlayType.ARTIFACT,
          element: dep.name,
          path: f.path,
          location: f.path,
        }),
      );

  // 2. Outputs of actions: the dependencies' (full mode), then the element's own as they come.
  const outputs = new Map<string, Origin[]>();
  /** Dependency actions by base digest, for copying in: [their element, the action]. */
  const depActions = new Map<
    string,
    { element: string; weakKey: string; recipeKey: string; sa: SpeculativeAction }
  >();
  const addOutputs = async (element: string, base: Digest): Promise<void> => {
    const result = await ac.getActionResult(base);
    if (result === undefined) return;
    const { workingDirectory } = await readAction(cas, base);
    for (const o of await outputFilesOf(cas, result))
      push(
        outputs,
        o.digest.hash,
        origin(o.digest.hash, {
          type: OverlayType.ACTION,
          element,
          path: o.path,
          location: joinPath(workingDirectory, o.path),
          action: base,
        }),
      );
  };
  if (crossElement(input.mode)) {
    for (const dep of input.deps) {
      for (const sa of dep.speculative?.actions ?? []) {
        const base = fromPb(sa.baseActionDigest);
        const element = sa.element === '' ? dep.name : sa.element;
        if (depActions.has(digestKey(base))) continue;
        // Its own actions carry its weak key; copies it holds carry theirs already.
        const weakKey = sa.element === '' ? (dep.weakKey ?? '') : sa.elementWeakKey;
        const recipeKey = sa.element === '' ? (dep.recipeKey ?? '') : sa.elementRecipeKey;
        depActions.set(digestKey(base), { element, weakKey, recipeKey, sa });
        await addOutputs(element, base).catch(() => undefined);
      }
    }
  }

  // 3. Each recorded action: its inputs' origins, at the paths they sit at.
  const own: SpeculativeAction[] = [];
  const needed = new Set<string>(); // dependency actions referenced (copied in below)
  let dropped = 0;
  let overlayCount = 0;
  let skipped = 0;
  let skipReason: string | undefined;
  const underRoot = (path: string): boolean =>
    buildRoot !== '' && path.length > buildRoot.length + 1 && path.startsWith(`${buildRoot}/`);
  for (const base of input.subactions) {
    const phase = input.phases?.get(digestKey(base)) ?? 'build-commands';
    let files;
    try {
      files = await trees.list((await readAction(cas, base)).inputRoot);
    } catch (e) {
      skipped++;
      skipReason ??= `${digestKey(base)}: ${e instanceof Error ? e.message : String(e)}`;
      continue;
    }
    const groups = new Map<string, { origin: Origin; digest: Digest; paths: string[] }>();
    const add = (o: Origin, digest: Digest, path: string): void => {
      const g = groups.get(o.key);
      if (g === undefined) groups.set(o.key, { origin: o, digest, paths: [path] });
      else if (!g.paths.includes(path)) g.paths.push(path);
    };
    const none: Origin[] = [];
    for (const f of files) {
      const known = origins.get(f.digest.hash) ?? none;
      const made = intraElement(input.mode) ? (outputs.get(f.digest.hash) ?? none) : none;
      // Where it was staged or produced, if it is at that place (no arrays made per file).
      let here = false;
      for (const o of known)
        if (o.location === f.path) {
          add(o, f.digest, f.path);
          here = true;
        }
      if (here) continue;
      // The latest producer of that file at that place.
      let madeHere: Origin | undefined;
      for (let i = made.length - 1; i >= 0 && madeHere === undefined; i--)
        if ((made[i] as Origin).location === f.path) madeHere = made[i];
      if (madeHere !== undefined) add(madeHere, f.digest, f.path);
      else {
        // Of known content but found elsewhere (copied by an unrecorded command): every origin.
        for (const o of known) add(o, f.digest, f.path);
        const last = made[made.length - 1];
        if (known.length === 0 && last !== undefined) add(last, f.digest, f.path);
        else if (known.length === 0 && intraElement(input.mode) && underRoot(f.path))
          // Written in the build tree by a command that is not a recorded
          // action (configure's config.h, a generated header): read from the
          // live build directory while the build runs.
          add(
            origin(f.digest.hash, {
              type: OverlayType.BUILD_TREE,
              element: '',
              path: f.path.slice(buildRoot.length + 1),
              location: f.path,
              phase,
            }),
            f.digest,
            f.path,
          );
      }
    }
    const overlays = [...groups.values()].map((g) => {
      if (
        g.origin.type === OverlayType.ACTION &&
        g.origin.element !== '' &&
        g.origin.action !== undefined
      )
        needed.add(digestKey(g.origin.action));
      return newOverlay({
        type: g.origin.type,
        sourceElement: g.origin.element,
        sourcePath: g.origin.path,
        targetDigest: g.digest,
        sourceActionDigest: g.origin.action,
        targetPaths: g.paths.length === 1 ? g.paths : [...g.paths].sort(),
        phase: g.origin.phase,
      });
    });
    if (intraElement(input.mode)) await addOutputs('', base).catch(() => undefined);
    if (overlays.length === 0) {
      dropped++; // nothing we track: priming could never change it
      continue;
    }
    overlayCount += overlays.length;
    own.push(
      create(speculativePb.SpeculativeActionSchema, {
        baseActionDigest: toPb(base),
        overlays: sortOverlays(overlays),
        element: '',
      }),
    );
  }

  // 4. Dependency actions the element's actions need, and the ones they need, copied in.
  const copied: SpeculativeAction[] = [];
  const queue = [...needed];
  const done = new Set<string>();
  while (queue.length > 0) {
    const key = queue.shift();
    if (key === undefined || done.has(key)) continue;
    done.add(key);
    const dep = depActions.get(key);
    if (dep === undefined) continue;
    copied.push(
      create(speculativePb.SpeculativeActionSchema, {
        ...dep.sa,
        element: dep.element,
        elementWeakKey: dep.weakKey,
        elementRecipeKey: dep.recipeKey,
      }),
    );
    for (const o of dep.sa.overlays)
      if (o.type === OverlayType.ACTION && o.sourceActionDigest !== undefined)
        queue.push(digestKey(fromPb(o.sourceActionDigest)));
  }
  // Dependency actions keep their own order (as their elements recorded them).
  const depOrder = [...depActions.keys()];
  copied.sort((a, b) => depOrder.indexOf(keyOf(a)) - depOrder.indexOf(keyOf(b)));

  // 5. Where the element's own artifact files came from.
  const artifactOverlays: Overlay[] = [];
  const ownSources = await trees.index(input.sources);
  for (const f of await trees.files(input.files)) {
    const src = ownSources.get(f.digest.hash)?.[0];
    const made = (outputs.get(f.digest.hash) ?? []).filter((o) => o.element === '');
    const producer = made[made.length - 1];
    if (src !== undefined) {
      artifactOverlays.push(
        create(speculativePb.OverlaySchema, {
          type: OverlayType.SOURCE,
          sourcePath: src,
          targetDigest: toPb(f.digest),
          targetPaths: [f.path],
        }),
      );
    } else if (producer?.action !== undefined) {
      artifactOverlays.push(
        create(speculativePb.OverlaySchema, {
          type: OverlayType.ACTION,
          sourcePath: producer.path,
          sourceActionDigest: toPb(producer.action),
          targetDigest: toPb(f.digest),
          targetPaths: [f.path],
        }),
      );
    }
  }
  const speculative = create(speculativePb.SpeculativeActionsSchema, {
    actions: [...copied, ...own],
    artifactOverlays,
  });
  return {
    speculative,
    stats: {
      actions: own.length,
      dropped,
      overlays: overlayCount,
      copied: copied.length,
      skipped,
      skipReason,
    },
  };
}

function keyOf(sa: SpeculativeAction): string {
  return digestKey(fromPb(sa.baseActionDigest));
}

/** SOURCE, ACTION, ARTIFACT; then by element, path and first target path: a stable order. */
export function sortOverlays(overlays: Overlay[]): Overlay[] {
  // Each key made once, not twice per comparison.
  const keyed = overlays.map((o) => ({
    o,
    rank: RANK[o.type],
    k: `${o.sourceElement}\0${o.sourcePath}\0${o.targetPaths[0] ?? ''}\0${o.targetDigest?.hash ?? ''}`,
  }));
  keyed.sort((a, b) => a.rank - b.rank || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.o);
}
