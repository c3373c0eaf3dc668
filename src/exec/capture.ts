// Reads an action's outputs from the file system the command saw: files with
// their executable bit, directories as Tree messages, symlinks; everything
// stored in the CAS.
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { LocalCas } from '../cas/index.js';
import {
  decodeDirectoryMessage,
  OutputDirectorySchema,
  OutputFileSchema,
  OutputSymlinkSchema,
  TreeSchema,
  digestKey,
  digestMessage,
  toPb,
  treeFromDirectory,
  type ActionResult,
  type Command,
  type Digest,
} from '../reapi/index.js';

export interface OutputRequest {
  /** Paths relative to the working directory. */
  paths: readonly string[];
  /** Legacy lists (REAPI < 2.1): capture as file or as directory only. */
  legacy: boolean;
  files: ReadonlySet<string>;
  directories: ReadonlySet<string>;
}

/**
 * What a command asks to capture, and the directories (relative to the input
 * root) that must exist before it runs: its outputs' parents and its
 * working directory (REAPI).
 */
export function outputRequest(command: Command): { request: OutputRequest; parents: string[] } {
  /* eslint-disable @typescript-eslint/no-deprecated -- legacy output lists (REAPI < 2.1) */
  const legacy = command.outputPaths.length === 0;
  const paths = legacy
    ? [...command.outputFiles, ...command.outputDirectories]
    : [...command.outputPaths];
  const request = {
    paths,
    legacy,
    files: new Set(command.outputFiles),
    directories: new Set(command.outputDirectories),
  };
  /* eslint-enable @typescript-eslint/no-deprecated */
  const wd = command.workingDirectory;
  const parents = paths.map((p) => join(wd, p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : ''));
  parents.push(wd);
  return { request, parents };
}

/** Captures outputs under `workDir` (a host path) into `result`. Missing outputs are skipped. */
export async function captureOutputs(
  cas: LocalCas,
  workDir: string,
  req: OutputRequest,
  result: ActionResult,
): Promise<void> {
  for (const path of req.paths) {
    const full = join(workDir, path);
    const st = await lstat(full).catch(() => undefined);
    if (st === undefined) continue;
    if (st.isSymbolicLink()) {
      const link = create(OutputSymlinkSchema, { path, target: await readlink(full) });
      result.outputSymlinks.push(link);
      /* eslint-disable @typescript-eslint/no-deprecated -- legacy fields for REAPI < 2.1 clients */
      if (req.legacy && req.files.has(path)) result.outputFileSymlinks.push(link);
      if (req.legacy && req.directories.has(path)) result.outputDirectorySymlinks.push(link);
      /* eslint-enable @typescript-eslint/no-deprecated */
    } else if (st.isFile()) {
      if (req.legacy && !req.files.has(path)) continue;
      const digest = await cas.writeFile(full);
      result.outputFiles.push(
        create(OutputFileSchema, {
          path,
          digest: toPb(digest),
          isExecutable: (st.mode & 0o111) !== 0,
        }),
      );
    } else if (st.isDirectory()) {
      if (req.legacy && !req.directories.has(path)) continue;
      const treeDigest = await captureTree(cas, full);
      result.outputDirectories.push(
        create(OutputDirectorySchema, { path, treeDigest: toPb(treeDigest) }),
      );
    }
  }
}

/** Stores a directory's files and its Tree message; returns the Tree's digest. */
async function captureTree(cas: LocalCas, dir: string): Promise<Digest> {
  const tree = await treeFromDirectory(dir, { hashFile: (p) => cas.writeFile(p) });
  const root = tree.directories.get(digestKey(tree.root));
  if (root === undefined) throw new Error('bug: tree without its root');
  const children = [...tree.directories.entries()]
    .filter(([k]) => k !== digestKey(tree.root))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, d]) => decodeDirectoryMessage(d.bytes));
  const msg = create(TreeSchema, { root: decodeDirectoryMessage(root.bytes), children });
  const { bytes } = digestMessage(TreeSchema, msg);
  return cas.writeBlob(bytes);
}
