// The file-system work FsPool's worker threads do, as synchronous functions:
// staging a planned tree, importing a file into the local CAS, writing a
// blob, removing a tree. In a worker a synchronous call costs nothing but
// that thread's time, where on the event loop it holds every request (a
// compile's input root took 30 ms of mkdir there). Each worker loads this
// file, so it imports nothing but Node, core and disk-error.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { errnoCode, SpecbuildError } from '../core/index.js';
import { writeError } from './disk-error.js';
import { readSmallFile } from './small-file.js';
import type { StagePlan } from './stage-plan.js';

/** Prefix of temporary files in the CAS; never a valid hash, so never taken for a blob. */
export const TEMP_PREFIX = '.tmp-';

/** Where a local CAS keeps its blobs: what a worker needs to write one. */
export interface CasLayout {
  /** `cas/objects`: blobs at `objects/<first two hex digits>/<hash>`. */
  objects: string;
  /** `cas/tmp`: temporary files whose hash is not known yet. */
  tmp: string;
}

/** What staging a plan made. */
export interface StageCounts {
  files: number;
  linked: number;
  directories: number;
  symlinks: number;
}

/** A file imported into the CAS: its digest, and whether this call stored it. */
export interface ImportedBlob {
  hash: string;
  size: number;
  /** False when the blob was already there (nothing written). */
  created: boolean;
}

/** Thrown by a task that saw its cancellation flag; FsPool answers with the signal's reason. */
export class TaskAborted extends Error {
  constructor() {
    super('file system task cancelled');
  }
}

/** Plan files may be hard-linked from `source`; otherwise they are copied from it. */
export const FILE_LINK = 1;
export const FILE_EXECUTABLE = 2;

const WRITABLE_DIR_MODE = 0o777;
/** Copies and imports go through a buffer of this size; files up to it are imported whole. */
const CHUNK = 1 << 20;

export function objectPath(layout: CasLayout, hash: string): string {
  return join(layout.objects, hash.slice(0, 2), hash);
}

function tempName(dir: string): string {
  // The pid (a worker's is its process's) lets a later open remove what a crash left.
  return join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
}

function notFound(hash: string, size: number): SpecbuildError {
  return new SpecbuildError('cas/not-found', `blob ${hash}/${size} is not in the local CAS`);
}

/**
 * Lays out a planned tree (see planStage): the directories `before`, then,
 * in the empty `dest`, every directory, file and symlink, created
 * exclusively (never following or replacing an entry), then the writable
 * parents. Checks `aborted` before each entry and each copied chunk.
 */
export function runStagePlan(plan: StagePlan, aborted: () => boolean): StageCounts {
  for (const b of plan.before) mkdirSync(b.path, { recursive: true, mode: b.mode });
  if (readdirSync(plan.dest).length > 0) {
    throw new SpecbuildError('cas/stage-conflict', `staging directory ${plan.dest} is not empty`);
  }
  if (plan.writableDirectories) chmodSync(plan.dest, WRITABLE_DIR_MODE);
  const counts: StageCounts = { files: 0, linked: 0, directories: 0, symlinks: 0 };
  const paths: string[] = [];
  const dirPath = (i: number): string => (i < 0 ? plan.dest : (paths[i] ?? plan.dest));
  const check = (): void => {
    if (aborted()) throw new TaskAborted();
  };
  for (let i = 0; i < plan.dirNames.length; i++) {
    check();
    const path = join(dirPath(plan.dirParents[i] ?? -1), plan.dirNames[i] ?? '');
    mkdirSync(path); // not recursive: fails if anything is already there
    if (plan.writableDirectories) chmodSync(path, WRITABLE_DIR_MODE);
    paths.push(path);
    counts.directories++;
  }
  for (let i = 0; i < plan.fileNames.length; i++) {
    check();
    const target = join(dirPath(plan.fileParents[i] ?? -1), plan.fileNames[i] ?? '');
    const source = plan.fileSources[i] ?? '';
    const flags = plan.fileFlags[i] ?? 0;
    if ((flags & FILE_LINK) !== 0) {
      try {
        linkSync(source, target);
        counts.files++;
        counts.linked++;
        continue;
      } catch (e) {
        if (!copyInstead(e)) throw e;
      }
    }
    const executable = (flags & FILE_EXECUTABLE) !== 0;
    copyBlobFile(source, plan.fileSizes[i] ?? 0, target, executable, plan.writableFiles, check);
    counts.files++;
  }
  for (let i = 0; i < plan.symlinkNames.length; i++) {
    check();
    const path = join(dirPath(plan.symlinkParents[i] ?? -1), plan.symlinkNames[i] ?? '');
    symlinkSync(plan.symlinkTargets[i] ?? '', path);
    counts.symlinks++;
  }
  for (const rel of plan.writableParents) mkdirWritableSync(plan.dest, rel);
  return counts;
}

/** A hard link that failed for one of these reasons becomes a copy (as stageTree's). */
function copyInstead(e: unknown): boolean {
  // Cross-device, too many links, gone, or not allowed (protected hard links).
  const code = errnoCode(e);
  return code === 'EXDEV' || code === 'EMLINK' || code === 'ENOENT' || code === 'EPERM';
}

/** Copies a stored blob to a new file, as stageTree's copyBlob does through readStream. */
function copyBlobFile(
  source: string,
  size: number,
  target: string,
  executable: boolean,
  writableFiles: boolean,
  check: () => void,
): void {
  const hash = basename(source);
  let src: number;
  try {
    src = openSync(source, 'r');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw notFound(hash, size);
    throw new SpecbuildError('cas/io', `opening blob ${hash}/${size}: ${String(e)}`, { cause: e });
  }
  try {
    // A stored file of another size is torn or asked for with a wrong size: not here.
    if (fstatSync(src).size !== size) throw notFound(hash, size);
    const out = openSync(target, 'wx', executable ? 0o755 : 0o644); // O_CREAT|O_EXCL
    try {
      if (writableFiles) fchmodSync(out, executable ? 0o777 : 0o666);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(size, 1)));
      for (let done = 0; done < size;) {
        check();
        const n = readSync(src, buf, 0, Math.min(buf.byteLength, size - done), done);
        if (n === 0) throw notFound(hash, size); // shrank meanwhile
        writeAll(out, buf.subarray(0, n));
        done += n;
      }
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(src);
  }
}

/** mkdirWritable's synchronous twin: creates `rel` under `dest`, stopping at a non-directory. */
function mkdirWritableSync(dest: string, rel: string): void {
  let path = dest;
  for (const name of rel.split('/')) {
    if (name === '' || name === '.') continue;
    path = join(path, name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st === undefined) {
      mkdirSync(path);
      chmodSync(path, WRITABLE_DIR_MODE);
    } else if (!st.isDirectory()) {
      return;
    }
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.byteLength;) off += writeSync(fd, data, off);
}

/** True when the blob `hash` is stored with `size` bytes. */
function stored(layout: CasLayout, hash: string, size: number): boolean {
  return statSync(objectPath(layout, hash), { throwIfNoEntry: false })?.size === size;
}

/** Makes a complete temporary file visible as blob `hash` (atomic rename); removes it on failure. */
function commit(layout: CasLayout, tmp: string, hash: string, size: number): void {
  const dest = objectPath(layout, hash);
  try {
    try {
      renameSync(tmp, dest);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      mkdirSync(join(layout.objects, hash.slice(0, 2)), { recursive: true });
      renameSync(tmp, dest);
    }
  } catch (e) {
    removeQuietly(tmp);
    throw writeError(e, `blob ${hash}/${size}`);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Stores `data` as blob `hash` (which the caller computed): a temporary
 * file in the blob's shard, then a rename. On failure nothing is left.
 */
export function writeBlobFile(layout: CasLayout, data: Uint8Array, hash: string): void {
  const what = `blob ${hash}/${data.byteLength}`;
  const tmp = tempName(join(layout.objects, hash.slice(0, 2)));
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o444);
  } catch (e) {
    throw writeError(e, what);
  }
  try {
    writeAll(fd, data);
    closeSync(fd);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // closed above, or cannot be
    }
    removeQuietly(tmp);
    throw writeError(e, what);
  }
  commit(layout, tmp, hash, data.byteLength);
}

function importError(path: string, e: unknown): SpecbuildError {
  return new SpecbuildError('cas/io', `importing ${path}: ${String(e)}`, { cause: e });
}

/**
 * Imports the file at `path` into the CAS, as LocalCas.writeFile does: a
 * file of up to 1 MiB is read whole and written only when its blob is not
 * stored yet; a larger one is copied to a temporary file while hashed.
 */
export function importFile(layout: CasLayout, path: string, aborted: () => boolean): ImportedBlob {
  let small: Buffer | undefined;
  try {
    small = readSmallFile(path, CHUNK);
  } catch (e) {
    throw importError(path, e);
  }
  if (small !== undefined) {
    const hash = createHash('sha256').update(small).digest('hex');
    if (stored(layout, hash, small.byteLength))
      return { hash, size: small.byteLength, created: false };
    writeBlobFile(layout, small, hash);
    return { hash, size: small.byteLength, created: true };
  }
  const tmp = tempName(layout.tmp);
  const hasher = createHash('sha256');
  let size = 0;
  let src: number | undefined;
  let out: number | undefined;
  try {
    try {
      src = openSync(path, 'r');
    } catch (e) {
      throw importError(path, e);
    }
    try {
      out = openSync(tmp, 'wx', 0o444);
    } catch (e) {
      throw writeError(e, 'an imported file');
    }
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      if (aborted()) throw new TaskAborted();
      let n: number;
      try {
        n = readSync(src, buf, 0, CHUNK, null);
      } catch (e) {
        throw importError(path, e);
      }
      if (n === 0) break;
      hasher.update(buf.subarray(0, n));
      try {
        writeAll(out, buf.subarray(0, n));
      } catch (e) {
        throw writeError(e, 'an imported file');
      }
      size += n;
    }
  } catch (e) {
    if (out !== undefined) closeSync(out);
    removeQuietly(tmp);
    throw e;
  } finally {
    if (src !== undefined) closeSync(src);
  }
  closeSync(out);
  const hash = hasher.digest('hex');
  if (stored(layout, hash, size)) {
    removeQuietly(tmp);
    return { hash, size, created: false };
  }
  commit(layout, tmp, hash, size);
  return { hash, size, created: true };
}

/** Removes a tree (a finished action's staging directory); errors are the caller's to ignore. */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
