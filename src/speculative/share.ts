// What another machine needs to prime from an element's stored speculative
// actions, and moving it: each base Action, its Command and its input root's
// Directories (always), and, for a machine that executes primed actions
// itself, the ActionResults of the base actions and of the actions overlays
// take files from (with the blobs they hold) and the input files no overlay
// replaces (BUILD_TREE ones included: used as recorded until the build has
// written them). Collected from the local stores so that a push sends them with
// the artifact; fetched by a pull by weak key, without the file blobs when
// execution is remote (the cluster's storage has them).
import { fromBinary } from '@bufbuild/protobuf';
import { isSpecbuildError, SpecbuildError } from '../core/index.js';
import {
  copyBlobs,
  copyResult,
  copyTrees,
  resultBlobs,
  fetchTree,
  type ActionCache,
  type Cas,
  type CopyStats,
} from '../cas/index.js';
import {
  ActionSchema,
  digestKey,
  fromPb,
  parseDigestString,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import {
  loadSpeculativeActions,
  OverlayType,
  readAction,
  type SpeculativeActions,
} from './actions.js';
import { TreeFiles } from './tree-files.js';

export interface PrimingData {
  /** Base Actions, their Commands and input-root Directories. */
  structure: Digest[];
  /** Action-cache entries to write once their blobs are there. */
  results: { action: Digest; result: ActionResult }[];
  /** The blobs those results hold (outputs, Trees and their files, stdout, stderr). */
  resultBlobs: Digest[];
  /** Input files of base actions that no overlay replaces. */
  inputFiles: Digest[];
  /** Actions left out because a blob of theirs has left the local CAS. */
  skipped: number;
}

/** Every blob of priming data, for a push. */
export function primingBlobs(p: PrimingData): Digest[] {
  return [...p.structure, ...p.resultBlobs, ...p.inputFiles];
}

/** The actions whose results priming data carries: each base action and each ACTION overlay's source. */
function resultActions(actions: SpeculativeActions): Digest[] {
  const out = new Map<string, Digest>();
  for (const a of actions.actions) {
    if (a.baseActionDigest === undefined) continue;
    const base = fromPb(a.baseActionDigest);
    out.set(digestKey(base), base);
    for (const o of a.overlays)
      if (o.sourceActionDigest !== undefined) {
        const d = fromPb(o.sourceActionDigest);
        out.set(digestKey(d), d);
      }
  }
  return [...out.values()];
}

/** Files of each base action's input root whose path no overlay of it replaces. */
async function unreplacedInputs(
  trees: TreeFiles,
  cas: Cas,
  actions: SpeculativeActions,
): Promise<Digest[]> {
  const out = new Map<string, Digest>();
  for (const a of actions.actions) {
    if (a.baseActionDigest === undefined) continue;
    const read = await readAction(cas, fromPb(a.baseActionDigest));
    // A BUILD_TREE file is used as recorded until the build writes it: needed too.
    const replaced = new Set(
      a.overlays.flatMap((o) => (o.type === OverlayType.BUILD_TREE ? [] : o.targetPaths)),
    );
    for (const [path, d] of await trees.paths(read.inputRoot))
      if (!replaced.has(path)) out.set(digestKey(d), d);
  }
  return [...out.values()];
}

/** Priming data of the SpeculativeActions blob `sa`, read from `cas` and `ac`. */
export async function primingData(cas: Cas, ac: ActionCache, sa: Digest): Promise<PrimingData> {
  const actions = await loadSpeculativeActions(cas, sa);
  const structure = new Map<string, Digest>();
  const blobs = new Map<string, Digest>();
  let skipped = 0;
  const kept: SpeculativeActions = { ...actions, actions: [] };
  for (const a of actions.actions) {
    if (a.baseActionDigest === undefined) continue;
    const base = fromPb(a.baseActionDigest);
    try {
      const read = await readAction(cas, base);
      const tree = await fetchTree(cas, read.inputRoot);
      if (tree.missing.length > 0) {
        skipped++;
        continue;
      }
      const command = fromPb(read.action.commandDigest);
      for (const d of [base, command]) structure.set(digestKey(d), d);
      for (const k of tree.directories.keys()) structure.set(k, parseDigestString(k, 'tree'));
      kept.actions.push(a);
    } catch (e) {
      if (!isSpecbuildError(e, 'cas/not-found')) throw e;
      skipped++;
    }
  }
  const results: { action: Digest; result: ActionResult }[] = [];
  for (const action of resultActions(kept)) {
    // The local action cache answers only results whose blobs are all here.
    const result = await ac.getActionResult(action);
    if (result === undefined) continue;
    for (const d of await resultBlobs(cas, result)) blobs.set(digestKey(d), d);
    results.push({ action, result });
  }
  // An input file evicted from here is left out (the other machine's
  // priming of that action then fails, which fails nothing), never the push.
  const allInputs = await unreplacedInputs(new TreeFiles(cas), cas, kept);
  const gone = new Set((await cas.findMissingBlobs(allInputs)).map(digestKey));
  const inputFiles = allInputs.filter((d) => !gone.has(digestKey(d)));
  return {
    structure: [...structure.values()],
    results,
    resultBlobs: [...blobs.values()],
    inputFiles,
    skipped,
  };
}

export interface PrimingPull {
  remote: Cas;
  remoteAc: ActionCache;
  local: Cas;
  localAc: ActionCache;
  /** The SpeculativeActions blob (already fetched into `local`). */
  sa: Digest;
  /** Primed actions run on this machine: results and unreplaced inputs are needed here too. */
  localExecution: boolean;
  signal?: AbortSignal;
}

export interface PrimingPullStats extends CopyStats {
  /** Action-cache entries written locally. */
  results: number;
}

/**
 * Fetches the priming data of `sa` from a remote: Actions, Commands and
 * input Directories (level by level, all roots at once), then with local
 * execution the results, their blobs and the unreplaced input files. A blob
 * the remote lacks is `cas/not-found` (the caller treats it as a miss).
 */
export async function pullPrimingData(p: PrimingPull): Promise<PrimingPullStats> {
  const opts = { signal: p.signal };
  const stats: PrimingPullStats = { blobs: 0, copied: 0, bytes: 0, results: 0 };
  const add = (s: CopyStats): void => {
    stats.blobs += s.blobs;
    stats.copied += s.copied;
    stats.bytes += s.bytes;
  };
  const actions = await loadSpeculativeActions(p.local, p.sa);
  const bases = actions.actions.flatMap((a) =>
    a.baseActionDigest === undefined ? [] : [fromPb(a.baseActionDigest)],
  );
  add(await copyBlobs(p.remote, p.local, bases, opts));
  const commands: Digest[] = [];
  const roots: Digest[] = [];
  const read = await p.local.readBlobs(bases, opts);
  for (const d of bases) {
    const bytes = read.get(digestKey(d));
    if (bytes === undefined)
      throw new SpecbuildError('cas/not-found', `Action ${digestKey(d)} is not in the CAS`);
    const action = fromBinary(ActionSchema, bytes);
    commands.push(fromPb(action.commandDigest, 'Action.command_digest'));
    roots.push(fromPb(action.inputRootDigest, 'Action.input_root_digest'));
  }
  add(await copyBlobs(p.remote, p.local, commands, opts));
  await copyTrees(p.remote, p.local, roots, stats, opts);
  if (!p.localExecution) return stats;
  const results: { action: Digest; result: ActionResult }[] = [];
  for (const action of resultActions(actions)) {
    const result = await p.remoteAc.getActionResult(action, opts);
    if (result !== undefined) results.push({ action, result });
  }
  for (const { result } of results) add(await copyResult(p.remote, p.local, result, opts));
  add(
    await copyBlobs(
      p.remote,
      p.local,
      await unreplacedInputs(new TreeFiles(p.local), p.local, actions),
      opts,
    ),
  );
  for (const { action, result } of results) {
    await p.localAc.updateActionResult(action, result, opts);
    stats.results++;
  }
  return stats;
}
