// What another machine needs to prime from an element's stored speculative
// actions: each base Action, its Command and its input root's Directories
// (not the input files: an executor that lacks one asks for it), and the
// ActionResults of the base actions and of the actions overlays take files
// from, with the blobs those results hold. Collected from the local stores
// so that a push sends them with the artifact.
import { fromBinary } from '@bufbuild/protobuf';
import { isSpecbuildError } from '../core/index.js';
import { fetchTree, type ActionCache, type Cas } from '../cas/index.js';
import {
  digestKey,
  fromPb,
  parseDigestString,
  TreeSchema,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import { loadSpeculativeActions, readAction } from './actions.js';

export interface PrimingData {
  /** Blobs to upload (Actions, Commands, Directories, results' outputs). */
  blobs: Digest[];
  /** Action-cache entries to write once the blobs are there. */
  results: { action: Digest; result: ActionResult }[];
  /** Actions left out because a blob of theirs has left the local CAS. */
  skipped: number;
}

/** The blobs an ActionResult refers to (outputs, their Trees and files, stdout, stderr). */
export async function resultBlobs(cas: Cas, r: ActionResult): Promise<Digest[]> {
  const out: Digest[] = r.outputFiles.map((f) => fromPb(f.digest));
  for (const dir of r.outputDirectories) {
    const td = fromPb(dir.treeDigest);
    out.push(td);
    const tree = fromBinary(TreeSchema, await cas.readBlob(td));
    for (const d of [tree.root, ...tree.children])
      for (const f of d?.files ?? []) out.push(fromPb(f.digest));
  }
  if (r.stdoutDigest !== undefined) out.push(fromPb(r.stdoutDigest));
  if (r.stderrDigest !== undefined) out.push(fromPb(r.stderrDigest));
  return out;
}

/** Priming data of the SpeculativeActions blob `sa`, read from `cas` and `ac`. */
export async function primingData(cas: Cas, ac: ActionCache, sa: Digest): Promise<PrimingData> {
  const actions = await loadSpeculativeActions(cas, sa);
  const blobs = new Map<string, Digest>();
  const results = new Map<string, { action: Digest; result: ActionResult }>();
  let skipped = 0;
  const addResult = async (action: Digest): Promise<void> => {
    if (results.has(digestKey(action))) return;
    const result = await ac.getActionResult(action);
    if (result === undefined) return;
    const held = await resultBlobs(cas, result);
    for (const d of held) blobs.set(digestKey(d), d);
    results.set(digestKey(action), { action, result });
  };
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
      for (const d of [base, command]) blobs.set(digestKey(d), d);
      for (const k of tree.directories.keys()) blobs.set(k, parseDigestString(k, 'tree'));
      await addResult(base);
      for (const o of a.overlays)
        if (o.sourceActionDigest !== undefined) await addResult(fromPb(o.sourceActionDigest));
    } catch (e) {
      if (!isSpecbuildError(e, 'cas/not-found')) throw e;
      skipped++;
    }
  }
  return { blobs: [...blobs.values()], results: [...results.values()], skipped };
}
