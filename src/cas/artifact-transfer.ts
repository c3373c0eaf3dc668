// Moving an artifact between two CASes (local and remote, either way): the
// record, every Directory and file of its trees, its log and its
// SpeculativeActions blob, plus whatever else the caller names (priming
// data). FindMissingBlobs first, so only what the receiver lacks is read and
// sent; small blobs go in batches, large ones as streams.
import { fromBinary } from '@bufbuild/protobuf';
import { isSpecbuildError, SpecbuildError } from '../core/index.js';
import {
  digestKey,
  fromPb,
  parseDigestString,
  specbuildPb,
  TreeSchema,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import type { Artifact, ArtifactCache } from './artifact-cache.js';
import { artifactUrn } from './artifact-urn.js';
import type { AssetStore } from './asset-store.js';
import type { CallOptions, Cas } from './cas.js';
import { decodeDirectory, fetchTree, filesOf } from './tree.js';

/** Blobs above this go as streams (ByteStream), not in batches. */
const STREAM_ABOVE = 1 << 20;
/** Bytes read from the sender per batch. */
const BATCH_BYTES = 2 << 20;

/** What a copy moved. */
export interface CopyStats {
  /** Distinct blobs asked about. */
  blobs: number;
  /** Blobs the receiver lacked and were sent. */
  copied: number;
  bytes: number;
}

/**
 * Copies the blobs among `digests` that `to` lacks from `from`. A blob `from`
 * lacks is `cas/not-found`.
 */
export async function copyBlobs(
  from: Cas,
  to: Cas,
  digests: readonly Digest[],
  opts: CallOptions = {},
): Promise<CopyStats> {
  const distinct = new Map<string, Digest>();
  for (const d of digests) distinct.set(digestKey(d), d);
  const lacking = await to.findMissingBlobs([...distinct.values()], opts);
  const stats: CopyStats = { blobs: distinct.size, copied: lacking.length, bytes: 0 };
  let batch: Digest[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const got = await from.readBlobs(batch, opts);
    const blobs = batch.map((d) => {
      const b = got.get(digestKey(d));
      if (b === undefined)
        throw new SpecbuildError('cas/not-found', `blob ${digestKey(d)} is not in the CAS`);
      return b;
    });
    await to.writeBlobs(blobs, opts);
    batch = [];
    batchBytes = 0;
  };
  for (const d of lacking) {
    stats.bytes += d.size;
    if (d.size > STREAM_ABOVE) {
      await to.writeStream(d, from.readStream(d, {}, opts), opts);
      continue;
    }
    if (batchBytes + d.size > BATCH_BYTES) await flush();
    batch.push(d);
    batchBytes += d.size;
  }
  await flush();
  return stats;
}

/** The blobs an ActionResult refers to (outputs, their Trees and files, stdout, stderr); its Trees are read from `cas`. */
export async function resultBlobs(
  cas: Cas,
  r: ActionResult,
  opts: CallOptions = {},
): Promise<Digest[]> {
  const out: Digest[] = r.outputFiles.map((f) => fromPb(f.digest));
  for (const dir of r.outputDirectories) {
    const td = fromPb(dir.treeDigest);
    out.push(td);
    const tree = fromBinary(TreeSchema, await cas.readBlob(td, opts));
    for (const d of [tree.root, ...tree.children])
      for (const f of d?.files ?? []) out.push(fromPb(f.digest));
  }
  if (r.stdoutDigest !== undefined) out.push(fromPb(r.stdoutDigest));
  if (r.stderrDigest !== undefined) out.push(fromPb(r.stderrDigest));
  return out;
}

/**
 * Copies an ActionResult's blobs from `from` to `to`: the Trees of its
 * output directories first (their files are found by reading them), then
 * the rest.
 */
export async function copyResult(
  from: Cas,
  to: Cas,
  r: ActionResult,
  opts: CallOptions = {},
): Promise<CopyStats> {
  const trees = r.outputDirectories.map((d) => fromPb(d.treeDigest));
  const first = await copyBlobs(from, to, trees, opts);
  const rest = await copyBlobs(from, to, await resultBlobs(to, r, opts), opts);
  return {
    blobs: first.blobs + rest.blobs,
    copied: first.copied + rest.copied,
    bytes: first.bytes + rest.bytes,
  };
}

/** Every blob of an artifact (record excluded): trees' Directories and files, log, SpeculativeActions. */
export async function artifactBlobs(
  cas: Cas,
  art: Artifact,
  opts: CallOptions = {},
): Promise<Digest[]> {
  const out: Digest[] = [];
  for (const t of [art.files, art.sources]) {
    if (t === undefined) continue;
    const tree = await fetchTree(cas, fromPb(t), opts);
    if (tree.missing.length > 0)
      throw new SpecbuildError(
        'cas/not-found',
        `Directory ${digestKey(tree.missing[0] ?? tree.root)} of tree ${digestKey(tree.root)} is not in the CAS`,
      );
    out.push(...[...tree.directories.keys()].map((k) => parseDigestString(k, 'tree')));
    out.push(...filesOf(tree.directories.values()));
  }
  if (art.buildLog !== undefined) out.push(fromPb(art.buildLog));
  if (art.speculativeActions !== undefined) out.push(fromPb(art.speculativeActions));
  return out;
}

export interface PushArtifact {
  local: Cas;
  remote: Cas;
  assets: AssetStore;
  project: string;
  /** The element's normal name. */
  element: string;
  record: Digest;
  artifact: Artifact;
  /** More blobs to upload with it (priming data); each must be in `local`. */
  extra?: readonly Digest[];
}

/**
 * Uploads the artifact and `extra`, then names the record under its strong
 * and weak keys, referencing its trees and blobs (so the server answers the
 * name only while all of them are there).
 */
export async function pushArtifact(p: PushArtifact, opts: CallOptions = {}): Promise<CopyStats> {
  const blobs = await artifactBlobs(p.local, p.artifact, opts);
  const stats = await copyBlobs(p.local, p.remote, [...blobs, ...(p.extra ?? []), p.record], opts);
  const a = p.artifact;
  await p.assets.pushBlob(
    {
      uris: [
        artifactUrn(p.project, p.element, a.strongKey),
        artifactUrn(p.project, p.element, a.weakKey),
      ],
      digest: p.record,
      referencesBlobs: [a.buildLog, a.speculativeActions].flatMap((d) =>
        d === undefined ? [] : [fromPb(d)],
      ),
      referencesDirectories: [a.files, a.sources].flatMap((d) =>
        d === undefined ? [] : [fromPb(d)],
      ),
    },
    opts,
  );
  return stats;
}

export interface PullArtifact {
  local: ArtifactCache;
  remote: Cas;
  assets: AssetStore;
  project: string;
  element: string;
  /** The strong key wanted. */
  key: string;
}

export type PullOutcome =
  { pulled: true; artifact: Artifact; stats: CopyStats } | { pulled: false; why: string };

/**
 * Fetches the record named by the strong key and everything it references
 * into the local CAS, checks it is whole, then writes the local refs. A name
 * the remote does not know, or whose content is partly gone, is a miss.
 */
export async function pullArtifact(p: PullArtifact, opts: CallOptions = {}): Promise<PullOutcome> {
  const urn = artifactUrn(p.project, p.element, p.key);
  const found = await p.assets.fetchBlob({ uris: [urn] }, opts);
  if (found === undefined) return { pulled: false, why: 'the remote does not know it' };
  const local = p.local.cas;
  try {
    const bytes = await p.remote.readBlob(found.digest, opts);
    let art: Artifact;
    try {
      art = fromBinary(specbuildPb.ArtifactSchema, bytes);
    } catch (e) {
      throw new SpecbuildError('remote/protocol', `the record named ${urn} does not parse`, {
        cause: e,
      });
    }
    if (art.strongKey !== p.key)
      throw new SpecbuildError(
        'remote/protocol',
        `the record named ${urn} is of key ${art.strongKey}, not ${p.key}`,
      );
    const stats = await copyBlobs(p.remote, local, [found.digest], opts);
    // Directories first (the walk reads them locally), then files and the rest.
    await copyTrees(
      p.remote,
      local,
      [art.files, art.sources].flatMap((t) => (t === undefined ? [] : [fromPb(t)])),
      stats,
      opts,
    );
    add(stats, await copyBlobs(p.remote, local, await artifactBlobs(local, art, opts), opts));
    if (!(await p.local.complete(art)))
      return { pulled: false, why: 'what was downloaded is incomplete' };
    const d = await p.local.store(p.project, p.element, art);
    if (digestKey(d) !== digestKey(found.digest))
      throw new Error(`bug: record ${digestKey(found.digest)} stored as ${digestKey(d)}`);
    return { pulled: true, artifact: art, stats };
  } catch (e) {
    if (isSpecbuildError(e, 'cas/not-found') || isSpecbuildError(e, 'remote/not-found'))
      return { pulled: false, why: `its content is partly gone from the remote (${e.message})` };
    throw e;
  }
}

/**
 * Copies the Directories of the trees `roots` level by level (all roots at
 * once, each Directory once), each level read back from `to` to find the
 * next; what moved is added to `stats`.
 */
export async function copyTrees(
  from: Cas,
  to: Cas,
  roots: readonly Digest[],
  stats: CopyStats,
  opts: CallOptions = {},
): Promise<void> {
  const seen = new Set<string>();
  let level: Digest[] = [];
  for (const r of roots)
    if (!seen.has(digestKey(r))) {
      seen.add(digestKey(r));
      level.push(r);
    }
  while (level.length > 0) {
    add(stats, await copyBlobs(from, to, level, opts));
    const got = await to.readBlobs(level, opts);
    const next: Digest[] = [];
    for (const d of level) {
      const bytes = got.get(digestKey(d));
      if (bytes === undefined)
        throw new SpecbuildError('cas/not-found', `Directory ${digestKey(d)} is not in the CAS`);
      for (const sub of decodeDirectory(bytes, d).directories) {
        const sd = fromPb(sub.digest);
        if (seen.has(digestKey(sd))) continue;
        seen.add(digestKey(sd));
        next.push(sd);
      }
    }
    level = next;
  }
}

function add(a: CopyStats, b: CopyStats): void {
  a.blobs += b.blobs;
  a.copied += b.copied;
  a.bytes += b.bytes;
}
