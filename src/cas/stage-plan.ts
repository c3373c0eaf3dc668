// A tree to stage, flattened for a worker thread (FsPool.stage): directories
// (parents first), files and symlinks as parallel arrays of names, parent
// indexes and sources, which a structured clone copies cheaply and which
// the worker lays out with synchronous calls (runStagePlan). The event loop
// only walks the Directory messages it already holds.
import { SpecbuildError } from '../core/index.js';
import { digestKey, fromPb, type Digest, type Directory } from '../reapi/index.js';
import type { FetchedTree } from './tree.js';
import { FILE_EXECUTABLE, FILE_LINK } from './fs-tasks.js';
import type { StageOptions } from './stage.js';

export interface StagePlan {
  /** Directories made (recursively) before anything else, with their mode (less the umask). */
  before: { path: string; mode: number }[];
  /** The directory the tree goes into; it must exist (or be in `before`) and be empty. */
  dest: string;
  writableDirectories: boolean;
  writableFiles: boolean;
  /** Directories under `dest`, each after its parent: the parent's index (-1: `dest`) and name. */
  dirParents: number[];
  dirNames: string[];
  /** Files: parent index, name, the blob's file in the CAS, its size, FILE_* flags. */
  fileParents: number[];
  fileNames: string[];
  fileSources: string[];
  fileSizes: number[];
  fileFlags: number[];
  symlinkParents: number[];
  symlinkNames: string[];
  symlinkTargets: string[];
  /** Paths relative to `dest` made afterwards as mkdirWritable does (an action's output parents). */
  writableParents: string[];
}

export interface PlanOptions extends Pick<
  StageOptions,
  'maxEntries' | 'writableDirectories' | 'writableFiles'
> {
  /** Where each blob's file is in the local CAS. */
  localPath: (d: Digest) => string;
  before?: { path: string; mode: number }[];
  writableParents?: readonly string[];
}

/**
 * The plan that stages `tree` (fetched and checked complete) into `dest`.
 * A tree that expands to more than `maxEntries` entries is refused before
 * anything is written.
 */
export function planStage(tree: FetchedTree, dest: string, opts: PlanOptions): StagePlan {
  const firstMissing = tree.missing[0];
  if (firstMissing !== undefined) {
    throw new SpecbuildError(
      'cas/not-found',
      `Directory ${digestKey(firstMissing)} of tree ${digestKey(tree.root)} is missing`,
    );
  }
  const root = tree.directories.get(digestKey(tree.root));
  if (root === undefined) throw new Error('bug: fetched tree lacks its root');
  const plan: StagePlan = {
    before: opts.before ?? [],
    dest,
    writableDirectories: opts.writableDirectories === true,
    writableFiles: opts.writableFiles === true,
    dirParents: [],
    dirNames: [],
    fileParents: [],
    fileNames: [],
    fileSources: [],
    fileSizes: [],
    fileFlags: [],
    symlinkParents: [],
    symlinkNames: [],
    symlinkTargets: [],
    writableParents: [...(opts.writableParents ?? [])],
  };
  const maxEntries = opts.maxEntries ?? 5_000_000;
  const writableFiles = opts.writableFiles === true;
  let entries = 0;
  const stack: { dir: Directory; index: number }[] = [{ dir: root, index: -1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const { dir, index } = top;
    entries += dir.files.length + dir.directories.length + dir.symlinks.length;
    if (entries > maxEntries) {
      throw new SpecbuildError(
        'reapi/invalid-directory',
        `the tree expands to over ${maxEntries} entries`,
      );
    }
    for (const f of dir.files) {
      const d = fromPb(f.digest);
      plan.fileParents.push(index);
      plan.fileNames.push(f.name);
      plan.fileSources.push(opts.localPath(d));
      plan.fileSizes.push(d.size);
      // Executables and writable files are copies; the rest hard links to read-only blobs.
      const link = !f.isExecutable && !writableFiles;
      plan.fileFlags.push((link ? FILE_LINK : 0) | (f.isExecutable ? FILE_EXECUTABLE : 0));
    }
    for (const s of dir.symlinks) {
      plan.symlinkParents.push(index);
      plan.symlinkNames.push(s.name);
      plan.symlinkTargets.push(s.target);
    }
    for (const sub of dir.directories) {
      const key = digestKey(fromPb(sub.digest));
      const child = tree.directories.get(key);
      if (child === undefined)
        throw new SpecbuildError('cas/not-found', `Directory ${key} is not part of the tree`);
      plan.dirParents.push(index);
      plan.dirNames.push(sub.name);
      stack.push({ dir: child, index: plan.dirNames.length - 1 });
    }
  }
  return plan;
}
