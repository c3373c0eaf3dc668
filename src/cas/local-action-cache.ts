// The local action cache: ActionResult messages by action digest, stored as
// files written atomically. An entry whose blobs have left the CAS is a miss.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { errnoCode, isSpecbuildError, processAlive, SpecbuildError } from '../core/index.js';
import {
  ActionResultSchema,
  checkActionResult,
  digestKey,
  encodeCanonical,
  TreeSchema,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import type { ActionCache, CallOptions, Cas } from './cas.js';
import { actionEntryPath, actionTempPath } from './direct-store.js';
import { writeError } from './disk-error.js';
import { readSmallFile } from './small-file.js';
import { filesOf } from './tree.js';

export class LocalActionCache implements ActionCache {
  /** `DIR/ac`: entries at `entries/<first two hex digits>/<hash>-<size>`, temporary files in `tmp` (direct-store.ts). */
  readonly localDir: string;
  private readonly entries: string;
  private readonly tmp: string;

  private constructor(
    dir: string,
    private readonly cas: Cas,
  ) {
    this.localDir = join(dir, 'ac');
    this.entries = join(this.localDir, 'entries');
    this.tmp = join(this.localDir, 'tmp');
  }

  /** Opens the action cache under `DIR/ac/`, checking entries against `cas`. */
  static async open(dir: string, cas: Cas): Promise<LocalActionCache> {
    const ac = new LocalActionCache(dir, cas);
    await mkdir(ac.entries, { recursive: true });
    await mkdir(ac.tmp, { recursive: true });
    // Shards are made once, the last one after all the others (as the CAS's):
    // otherwise each of the first entries made a directory, and a directory
    // is an inode, as costly to make as the entry's file on this VM's ext4.
    // A shard removed since is made again by the writer that needs it.
    // A cache this process cannot write (read-only, another user's) still
    // opens, as before: its readers need no shards made.
    if (!existsSync(join(ac.entries, 'ff'))) {
      try {
        await Promise.all(
          Array.from({ length: 255 }, (_, i) =>
            mkdir(join(ac.entries, i.toString(16).padStart(2, '0')), { recursive: true }),
          ),
        );
        await mkdir(join(ac.entries, 'ff'), { recursive: true });
      } catch {
        // made by each writer as it needs one
      }
    }
    // What writers that died left (this process's and other live ones' stay):
    // with direct writes (direct-store.ts) every wrapper daemon writes here too.
    for (const name of await readdir(ac.tmp)) {
      // Only names of this layout (actionTempPath): anything else is not ours to remove.
      const m = /^(\d+)-[0-9a-f]+$/.exec(name);
      if (m === null) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || processAlive(pid)) continue;
      await unlink(join(ac.tmp, name)).catch(() => undefined);
    }
    return ac;
  }

  private pathOf(d: Digest): string {
    return actionEntryPath(this.localDir, d);
  }

  async getActionResult(
    actionDigest: Digest,
    opts?: CallOptions,
  ): Promise<ActionResult | undefined> {
    let bytes: Buffer;
    try {
      // Entries are small: read synchronously (a cached Execute spent 17% of
      // the server's time in fs.promises' readFile, mostly opening FileHandles).
      const path = this.pathOf(actionDigest);
      bytes = readSmallFile(path) ?? (await readFile(path));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new SpecbuildError('cas/io', `reading action cache entry: ${String(e)}`, { cause: e });
    }
    let result: ActionResult;
    try {
      result = fromBinary(ActionResultSchema, bytes);
      const refs = checkActionResult(result);
      if (!(await this.complete(refs.blobs, refs.trees, opts))) return undefined;
    } catch (e) {
      if (isSpecbuildError(e) && e.code.startsWith('cas/')) throw e;
      // A damaged entry is a miss; remove it so that it is rebuilt.
      await unlink(this.pathOf(actionDigest)).catch(() => undefined);
      return undefined;
    }
    return result;
  }

  /** True when every blob the result references, including files inside output trees, exists. */
  private async complete(blobs: Digest[], trees: Digest[], opts?: CallOptions): Promise<boolean> {
    if ((await this.cas.findMissingBlobs([...blobs, ...trees], opts)).length > 0) return false;
    if (trees.length === 0) return true;
    // The files inside every output tree, asked about in one call.
    const read = await this.cas.readBlobs(trees, opts);
    const dirs = [...read.values()].flatMap((bytes) => {
      const tree = fromBinary(TreeSchema, bytes);
      return tree.root === undefined ? tree.children : [tree.root, ...tree.children];
    });
    return (
      read.size === new Set(trees.map(digestKey)).size &&
      (await this.cas.findMissingBlobs(filesOf(dirs), opts)).length === 0
    );
  }

  async updateActionResult(
    actionDigest: Digest,
    result: ActionResult,
    _opts?: CallOptions,
  ): Promise<void> {
    checkActionResult(result);
    const dest = this.pathOf(actionDigest);
    const tmp = actionTempPath(this.localDir);
    try {
      await writeFile(tmp, encodeCanonical(ActionResultSchema, result), { flag: 'wx' });
      try {
        await rename(tmp, dest);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        await mkdir(join(this.entries, actionDigest.hash.slice(0, 2)), { recursive: true });
        await rename(tmp, dest);
      }
    } catch (e) {
      await unlink(tmp).catch(() => undefined); // at once, not at the next start
      throw writeError(e, `the action cache entry of ${digestKey(actionDigest)}`);
    }
  }
}
