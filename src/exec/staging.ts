// Lays out an action's staging directory: its input root (hard links to the
// CAS, directories 0777), `upper` and `scratch` for the sandbox, its
// chrootRootDigest's tree if any, and the parents of its outputs. With an
// FsPool the directories, the tree and the parents are one task of a worker
// thread, and the event loop only checks the inputs and flattens the tree;
// without one, all of it is done here.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fetchTree,
  filesOf,
  MissingBlobsError,
  mkdirWritable,
  planStage,
  stageTree,
  type ExtractCache,
  type FetchedTree,
  type FsPool,
  type LocalCas,
} from '../cas/index.js';
import type { Digest } from '../reapi/index.js';
import { checkInputSize } from './input-limit.js';

/** The parts of one action's private staging directory. */
export interface StagingDirs {
  /** Mode 0700: the staged tree's directories are 0777, so no other user may reach them. */
  dir: string;
  /** The input root, an overlay layer above the host root (or the chroot's tree). */
  layer: string;
  upper: string;
  scratch: string;
}

export function stagingDirs(dir: string): StagingDirs {
  return {
    dir,
    layer: join(dir, 'root'),
    upper: join(dir, 'upper'),
    scratch: join(dir, 'scratch'),
  };
}

export interface StagingContext {
  cas: LocalCas;
  pool: FsPool | undefined;
  /** chrootRootDigest trees, laid out once each. */
  roots: ExtractCache;
  maxInputEntries: number;
}

export interface StageRequest {
  inputRoot: Digest;
  chroot: Digest | undefined;
  /** Directories relative to the input root that must exist (outputs' parents, the working directory). */
  writableParents: readonly string[];
  signal: AbortSignal | undefined;
}

/**
 * Creates `dirs` and stages the action's inputs; returns the chroot's tree
 * directory, if it has one. Input files are pinned from the check that they
 * exist until they are staged. On failure the caller removes `dirs.dir`.
 */
export async function stageAction(
  ctx: StagingContext,
  dirs: StagingDirs,
  req: StageRequest,
): Promise<string | undefined> {
  const { cas, pool } = ctx;
  const { layer, upper, scratch } = dirs;
  if (pool === undefined) {
    await mkdir(dirs.dir, { recursive: true, mode: 0o700 });
    await Promise.all([layer, upper, scratch].map((d) => mkdir(d, { recursive: true })));
  }
  const { tree, release } = await checkInputs(cas, req.inputRoot, ctx.maxInputEntries);
  let rootDir: string | undefined;
  try {
    if (req.chroot !== undefined) {
      const held = await checkInputs(cas, req.chroot, ctx.maxInputEntries);
      try {
        rootDir = await ctx.roots.extract(req.chroot, req.signal);
      } finally {
        held.release();
      }
    }
    if (pool !== undefined) {
      const plan = planStage(tree, layer, {
        localPath: (d) => cas.pathOf(d),
        maxEntries: Number.MAX_SAFE_INTEGER, // checkInputs has checked the size
        writableDirectories: true, // the command runs as a uid of its own
        before: [
          { path: dirs.dir, mode: 0o700 },
          ...[layer, upper, scratch].map((path) => ({ path, mode: 0o777 })),
        ],
        writableParents: req.writableParents,
      });
      await pool.stage(plan, req.signal);
      return rootDir;
    }
    await stageTree(cas, req.inputRoot, layer, {
      tree,
      localPath: (d) => cas.pathOf(d),
      signal: req.signal,
      writableDirectories: true,
    });
  } finally {
    release(); // staged files are hard links or copies now: eviction may go on
  }
  for (const rel of req.writableParents) await mkdirWritable(layer, rel);
  return rootDir;
}

/**
 * Fetches the input tree and checks every file is present, pinned so that
 * eviction cannot take one before it is staged (call `release` after).
 */
async function checkInputs(
  cas: LocalCas,
  root: Digest,
  maxEntries: number,
): Promise<{ tree: FetchedTree; release: () => void }> {
  const tree = await fetchTree(cas, root);
  checkInputSize(tree, maxEntries);
  const files = filesOf(tree.directories.values());
  const release = cas.pin(files);
  try {
    const missing = [...tree.missing, ...(await cas.findMissingBlobs(files))];
    if (missing.length > 0) throw new MissingBlobsError(missing);
    return { tree, release };
  } catch (e) {
    release();
    throw e;
  }
}
