// Reading Directory trees out of a CAS: breadth-first, in batches, each
// Directory validated as untrusted input before anything uses it.
import { fromBinary } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import {
  decodeValidDirectory,
  DirectorySchema,
  digestKey,
  fromPb,
  validateDirectory,
  type Digest,
  type Directory,
} from '../reapi/index.js';
import type { CallOptions, Cas } from './cas.js';

export interface FetchedTree {
  root: Digest;
  /** Every distinct Directory of the tree by digestKey, validated. */
  directories: Map<string, Directory>;
  /** Digests missing from the CAS (the tree is incomplete when non-empty). */
  missing: Digest[];
}

/** Upper bound on distinct directories in one tree, against hostile input. */
export const MAX_TREE_DIRECTORIES = 1_000_000;

/**
 * A Directory read from a CAS, decoded and validated (as untrusted input).
 * Well-formed Directories of the common shape take decodeValidDirectory's
 * single pass; anything else goes through fromBinary and validateDirectory,
 * which say what is wrong with it.
 */
export function decodeDirectory(bytes: Uint8Array, d: Digest): Directory {
  const fast = decodeValidDirectory(bytes);
  if (fast !== undefined) return fast;
  let dir: Directory;
  try {
    dir = fromBinary(DirectorySchema, bytes);
  } catch (e) {
    throw new SpecbuildError(
      'reapi/invalid-directory',
      `Directory ${digestKey(d)} does not parse: ${String(e)}`,
      {
        cause: e,
      },
    );
  }
  validateDirectory(dir, `Directory ${digestKey(d)}`);
  return dir;
}

/** One directory of a walk: its message, or `missing` when the CAS lacks it. */
export type WalkedDirectory =
  | { digest: Digest; dir: Directory; size: number; missing?: undefined }
  | { digest: Digest; missing: true };

/**
 * Each distinct directory reachable from `root`, breadth-first, in a stable
 * order (page tokens of GetTree count them), read one batch per level and
 * validated. A missing directory is reported once and its subtree skipped.
 * Trees of more than MAX_TREE_DIRECTORIES directories are refused.
 */
export async function* walkTree(
  cas: Cas,
  root: Digest,
  opts?: CallOptions,
): AsyncIterable<WalkedDirectory> {
  const seen = new Set<string>([digestKey(root)]);
  let level: Digest[] = [root];
  while (level.length > 0) {
    const blobs = await cas.readBlobs(level, opts);
    const next: Digest[] = [];
    for (const d of level) {
      const bytes = blobs.get(digestKey(d));
      if (bytes === undefined) {
        yield { digest: d, missing: true };
        continue;
      }
      const dir = decodeDirectory(bytes, d);
      for (const sub of dir.directories) {
        const sd = fromPb(sub.digest);
        const sk = digestKey(sd);
        if (seen.has(sk)) continue;
        seen.add(sk);
        next.push(sd);
      }
      if (seen.size > MAX_TREE_DIRECTORIES) {
        throw new SpecbuildError(
          'reapi/invalid-directory',
          `tree ${digestKey(root)} has too many directories`,
        );
      }
      yield { digest: d, dir, size: bytes.byteLength };
    }
    level = next;
  }
}

/** Fetches all Directory messages reachable from `root`, one batch per level. */
export async function fetchTree(cas: Cas, root: Digest, opts?: CallOptions): Promise<FetchedTree> {
  const directories = new Map<string, Directory>();
  const missing: Digest[] = [];
  for await (const w of walkTree(cas, root, opts)) {
    if (w.missing === true) missing.push(w.digest);
    else directories.set(digestKey(w.digest), w.dir);
  }
  return { root, directories, missing };
}

/** The distinct file digests referenced by a set of directories. */
export function filesOf(directories: Iterable<Directory>): Digest[] {
  const out = new Map<string, Digest>();
  for (const dir of directories) {
    for (const f of dir.files) {
      const d = fromPb(f.digest);
      out.set(digestKey(d), d);
    }
  }
  return [...out.values()];
}
