// Trees laid out on disk once per digest, as hard links to read-only CAS
// blobs, and reused as overlay layers by every sandbox that stages them
// (builds' dependency artifacts, actions' chrootRootDigest): staging twenty
// dependencies costs nothing after the first time.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalCas } from './local-cas.js';
import { stageTree } from './stage.js';
import { layerTrees } from './tree-edit.js';
import { digestKey, EMPTY_HASH, type Digest } from '../reapi/index.js';

/**
 * Layers passed to the sandbox at most: each costs its directory's path
 * (~150 bytes) in the one page (4,096 bytes) of overlay options of every
 * top-level directory it has; 160 dependencies with files failed a build.
 */
export const MAX_LAYERS = 16;

export class ExtractCache {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly cas: LocalCas,
    private readonly dir: string,
  ) {}

  /**
   * The directories of `trees` (lowest first) as overlay layers, lowest
   * first: an empty tree brings nothing, and a tree that comes twice only
   * its highest place (the lower copy is hidden by the same files above it).
   * The sandbox takes at most 512 layers and one page of overlay options per
   * directory, and a build scope of 1,000 elements (bench:load) is mostly
   * artifacts with no files: passing each as a layer failed such builds.
   */
  async layers(trees: readonly Digest[], signal?: AbortSignal): Promise<string[]> {
    const highest = new Map<string, number>();
    trees.forEach((t, i) => highest.set(digestKey(t), i));
    let kept = trees.filter((t, i) => t.hash !== EMPTY_HASH && highest.get(digestKey(t)) === i);
    if (kept.length > MAX_LAYERS) {
      // More than one page of overlay options holds: the lowest ones merged
      // into one tree (later ones win, as in the overlay), extracted once
      // per such set and reused like any other.
      const cut = kept.length - (MAX_LAYERS - 1);
      const merged = await layerTrees(
        this.cas,
        kept.slice(0, cut).map((root) => ({ path: '', root })),
        { signal },
      );
      kept = [merged, ...kept.slice(cut)];
    }
    return Promise.all(kept.map((t) => this.extract(t, signal)));
  }

  /** The directory holding the tree `root` (made once; concurrent callers share it). */
  extract(root: Digest, signal?: AbortSignal): Promise<string> {
    const target = join(this.dir, `${root.hash}-${root.size}`);
    let p = this.pending.get(target);
    if (p === undefined) {
      p = this.make(root, target, signal).finally(() => this.pending.delete(target));
      this.pending.set(target, p);
    }
    return p;
  }

  private async make(root: Digest, target: string, signal?: AbortSignal): Promise<string> {
    if ((await stat(target).catch(() => undefined))?.isDirectory() === true) return target;
    await mkdir(this.dir, { recursive: true });
    // Laid out beside, then renamed: a crash leaves no half-extracted tree under the real name.
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await mkdir(tmp);
    try {
      await stageTree(this.cas, root, tmp, { localPath: (d) => this.cas.pathOf(d), signal });
      await rename(tmp, target).catch(async (e: unknown) => {
        // Another process made it first: theirs will do.
        if ((await stat(target).catch(() => undefined))?.isDirectory() !== true) throw e;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    return target;
  }
}
