// Staging a Directory tree from a CAS onto disk. Every name is validated before
// use and entries are created exclusively, so a hostile tree can never write
// outside the staging directory.
import { chmodSync, linkSync, mkdirSync, symlinkSync } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, Limiter, SpecbuildError } from '../core/index.js';
import {
  DirectorySchema,
  digestKey,
  digestMessage,
  fromPb,
  validateDirectory,
  type Digest,
  type Directory,
  type Tree,
} from '../reapi/index.js';
import type { CallOptions, Cas } from './cas.js';
import { fetchTree, type FetchedTree } from './tree.js';

export interface StageOptions extends CallOptions {
  /**
   * Where a blob already sits on this machine as a read-only file, so that
   * non-executable files can be hard-linked instead of copied.
   */
  localPath?: (d: Digest) => string | undefined;
  /** Upper bound on entries written, against trees that expand exponentially. */
  maxEntries?: number;
  /** The tree, already fetched (and checked complete) by the caller. */
  tree?: FetchedTree;
  /**
   * Directories (`dest` included) mode 0777, so that a sandboxed command
   * running as a uid of its own can create its outputs in them. Only for a
   * `dest` inside a private (0700) directory, which keeps other users out.
   * Files stay as they are: hard links to read-only blobs.
   */
  writableDirectories?: boolean;
  /**
   * Files are copies (never hard links) that anyone may write (0666, 0777
   * for executables): an element's build directory, which the build edits
   * as a uid of its own. Same privacy condition as writableDirectories.
   */
  writableFiles?: boolean;
}

/** The mode of `writableDirectories` (set with chmod: mkdir's is cut by the umask). */
const WRITABLE_DIR_MODE = 0o777;

/**
 * Trees with at most this many entries are laid out with synchronous calls
 * (a compile's few hundred headers: a millisecond instead of several); larger
 * ones asynchronously, so that a big tree does not block the event loop.
 */
const SYNC_STAGE_MAX_ENTRIES = 2000;

export interface StageStats {
  files: number;
  linked: number;
  directories: number;
  symlinks: number;
}

/**
 * Writes the tree `root` into `dest`, which must be an existing empty
 * directory. Missing blobs fail with `cas/not-found`.
 */
export async function stageTree(
  cas: Cas,
  root: Digest,
  dest: string,
  opts: StageOptions = {},
): Promise<StageStats> {
  const tree =
    opts.tree !== undefined && digestKey(opts.tree.root) === digestKey(root)
      ? opts.tree
      : await fetchTree(cas, root, opts);
  const firstMissing = tree.missing[0];
  if (firstMissing !== undefined) {
    throw new SpecbuildError(
      'cas/not-found',
      `Directory ${digestKey(firstMissing)} of tree ${digestKey(root)} is missing`,
    );
  }
  const rootDir = tree.directories.get(digestKey(root));
  if (rootDir === undefined) throw new Error('bug: fetched tree lacks its root');
  return stageDirectories(cas, rootDir, tree.directories, dest, opts);
}

/**
 * Writes a Tree message (an output directory) into `dest`, an existing empty
 * directory. Its directories are validated like any Directory from outside.
 */
export async function stageTreeMessage(
  cas: Cas,
  tree: Tree,
  dest: string,
  opts: StageOptions = {},
): Promise<StageStats> {
  if (tree.root === undefined)
    throw new SpecbuildError('reapi/invalid-directory', 'Tree has no root');
  const dirs = new Map<string, Directory>();
  for (const child of tree.children) {
    const { digest } = digestMessage(DirectorySchema, child);
    validateDirectory(child, `Tree child ${digestKey(digest)}`);
    dirs.set(digestKey(digest), child);
  }
  validateDirectory(tree.root, 'Tree root');
  return stageDirectories(cas, tree.root, dirs, dest, opts);
}

async function stageDirectories(
  cas: Cas,
  rootDir: Directory,
  directories: ReadonlyMap<string, Directory>,
  dest: string,
  opts: StageOptions,
): Promise<StageStats> {
  const existing = await readdir(dest);
  if (existing.length > 0) {
    throw new SpecbuildError('cas/stage-conflict', `staging directory ${dest} is not empty`);
  }
  if (opts.writableDirectories === true) await chmod(dest, WRITABLE_DIR_MODE);
  const stats: StageStats = { files: 0, linked: 0, directories: 0, symlinks: 0 };
  const maxEntries = opts.maxEntries ?? 5_000_000;
  const expanded = expandedEntries(rootDir, directories, SYNC_STAGE_MAX_ENTRIES);
  if (expanded <= SYNC_STAGE_MAX_ENTRIES && expanded <= maxEntries)
    return stageSmall(cas, rootDir, directories, dest, opts, stats);
  let entries = 0;
  const limiter = new Limiter(32);
  const jobs: Promise<void>[] = [];

  const visit = async (dir: Directory, path: string): Promise<void> => {
    opts.signal?.throwIfAborted(); // a cancelled action stops staging at once
    entries += dir.files.length + dir.directories.length + dir.symlinks.length;
    if (entries > maxEntries) {
      throw new SpecbuildError(
        'reapi/invalid-directory',
        `the tree expands to over ${maxEntries} entries`,
      );
    }
    for (const f of dir.files) {
      const d = fromPb(f.digest);
      const target = join(path, f.name);
      jobs.push(limiter.run(() => writeFileNode(cas, d, target, f.isExecutable, stats, opts)));
    }
    for (const s of dir.symlinks) {
      await symlink(s.target, join(path, s.name));
      stats.symlinks++;
    }
    for (const sub of dir.directories) {
      const child = childOf(directories, sub.digest);
      const childPath = join(path, sub.name);
      await mkdir(childPath); // not recursive: fails if anything is already there
      if (opts.writableDirectories === true) await chmod(childPath, WRITABLE_DIR_MODE);
      stats.directories++;
      await visit(child, childPath);
    }
  };

  let walkError: Error | undefined;
  await visit(rootDir, dest).catch((e: unknown) => {
    walkError = e instanceof Error ? e : new Error(String(e));
  });
  // Wait for every started write so none outlives a failure.
  const results = await Promise.allSettled(jobs);
  if (walkError !== undefined) throw walkError;
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason as Error;
  return stats;
}

/**
 * Creates `rel` and its missing parents in a tree staged at `dest`, mode 0777
 * like `writableDirectories`. Stops at an entry that is not a directory, so a
 * symlink of the tree (say `out -> /etc`) never leads this process, which
 * runs on the host, out of it; the sandboxed command meets the entry as is.
 */
export async function mkdirWritable(dest: string, rel: string): Promise<void> {
  let path = dest;
  for (const name of rel.split('/')) {
    if (name === '' || name === '.') continue;
    path = join(path, name);
    const st = await lstat(path).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    });
    if (st === undefined) {
      await mkdir(path);
      await chmod(path, WRITABLE_DIR_MODE);
    } else if (!st.isDirectory()) {
      return;
    }
  }
}

async function writeFileNode(
  cas: Cas,
  d: Digest,
  target: string,
  executable: boolean,
  stats: StageStats,
  opts: StageOptions,
): Promise<void> {
  const local = executable || opts.writableFiles === true ? undefined : opts.localPath?.(d);
  if (local !== undefined) {
    try {
      await link(local, target);
      stats.files++;
      stats.linked++;
      return;
    } catch (e) {
      if (!copyInstead(e)) throw e;
    }
  }
  await copyBlob(cas, d, target, executable, opts);
  stats.files++;
}

/** A hard link that failed for one of these reasons becomes a copy. */
function copyInstead(e: unknown): boolean {
  // Cross-device, too many links, gone, or not allowed (protected hard links).
  const code = errnoCode(e);
  return code === 'EXDEV' || code === 'EMLINK' || code === 'ENOENT' || code === 'EPERM';
}

/** Writes a blob to a new file (never following or replacing an existing entry). */
async function copyBlob(
  cas: Cas,
  d: Digest,
  target: string,
  executable: boolean,
  opts: StageOptions,
): Promise<void> {
  // 'wx' = O_CREAT|O_EXCL
  const fh = await open(target, 'wx', executable ? 0o755 : 0o644);
  try {
    if (opts.writableFiles === true) await fh.chmod(executable ? 0o777 : 0o666);
    for await (const chunk of cas.readStream(d, {}, opts)) await fh.write(chunk);
  } finally {
    await fh.close();
  }
}

/** The Directory a DirectoryNode names; it must be part of the fetched tree. */
function childOf(
  directories: ReadonlyMap<string, Directory>,
  digest: Parameters<typeof fromPb>[0],
): Directory {
  const d = fromPb(digest);
  const child = directories.get(digestKey(d));
  if (child === undefined)
    throw new SpecbuildError('cas/not-found', `Directory ${digestKey(d)} is not part of the tree`);
  return child;
}

/**
 * Entries (files, directories, symlinks) the tree expands to, counting a
 * shared subtree once per place it appears; stops counting past `cap`.
 */
function expandedEntries(
  root: Directory,
  directories: ReadonlyMap<string, Directory>,
  cap: number,
): number {
  let n = 0;
  const stack: Directory[] = [root];
  while (stack.length > 0 && n <= cap) {
    const dir = stack.pop();
    if (dir === undefined) break;
    n += dir.files.length + dir.directories.length + dir.symlinks.length;
    for (const sub of dir.directories) {
      const child = directories.get(digestKey(fromPb(sub.digest)));
      if (child !== undefined) stack.push(child);
    }
  }
  return n;
}

/**
 * The small-tree path: directories, symlinks and hard links made with
 * synchronous calls (the same exclusive-create rules); files that must be
 * copied are written afterwards, asynchronously.
 */
async function stageSmall(
  cas: Cas,
  rootDir: Directory,
  directories: ReadonlyMap<string, Directory>,
  dest: string,
  opts: StageOptions,
  stats: StageStats,
): Promise<StageStats> {
  const copies: { d: Digest; target: string; executable: boolean }[] = [];
  const visit = (dir: Directory, path: string): void => {
    for (const f of dir.files) {
      const d = fromPb(f.digest);
      const target = join(path, f.name);
      const local = f.isExecutable || opts.writableFiles === true ? undefined : opts.localPath?.(d);
      if (local !== undefined) {
        try {
          linkSync(local, target);
          stats.files++;
          stats.linked++;
          continue;
        } catch (e) {
          if (!copyInstead(e)) throw e;
        }
      }
      copies.push({ d, target, executable: f.isExecutable });
    }
    for (const sl of dir.symlinks) {
      symlinkSync(sl.target, join(path, sl.name));
      stats.symlinks++;
    }
    for (const sub of dir.directories) {
      const child = childOf(directories, sub.digest);
      const childPath = join(path, sub.name);
      mkdirSync(childPath); // not recursive: fails if anything is already there
      if (opts.writableDirectories === true) chmodSync(childPath, WRITABLE_DIR_MODE);
      stats.directories++;
      visit(child, childPath);
    }
  };
  visit(rootDir, dest);
  const limiter = new Limiter(32);
  const results = await Promise.allSettled(
    copies.map((c) =>
      limiter.run(async () => {
        await copyBlob(cas, c.d, c.target, c.executable, opts);
        stats.files++;
      }),
    ),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason as Error;
  return stats;
}
