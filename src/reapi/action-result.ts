// Validation of ActionResult messages and the list of blobs they reference,
// so that a result from the network is checked once and a cache can tell
// whether everything it points at still exists.
import { SpecbuildError } from '../core/index.js';
import { fromPb, type Digest } from './digest.js';
import { checkRelPath } from './names.js';
import type { ActionResult } from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

export interface ResultBlobs {
  /** Blobs referenced directly (output files, stdout/stderr). */
  blobs: Digest[];
  /** Tree messages of output directories (their files must exist too). */
  trees: Digest[];
}

/** Validates paths and digests of a result; returns the blobs it references. */
export function checkActionResult(result: ActionResult, where = 'ActionResult'): ResultBlobs {
  const blobs: Digest[] = [];
  const trees: Digest[] = [];
  for (const f of result.outputFiles) {
    checkRelPath(f.path, `${where}: output file`);
    blobs.push(fromPb(f.digest, `${where}: output file "${f.path}"`));
  }
  for (const d of result.outputDirectories) {
    checkRelPath(d.path, `${where}: output directory`);
    trees.push(fromPb(d.treeDigest, `${where}: output directory "${d.path}"`));
  }
  // The legacy symlink lists are deprecated but still sent by older peers.
  /* eslint-disable @typescript-eslint/no-deprecated */
  const links = [
    ...result.outputSymlinks,
    ...result.outputFileSymlinks,
    ...result.outputDirectorySymlinks,
  ];
  /* eslint-enable @typescript-eslint/no-deprecated */
  for (const l of links) {
    checkRelPath(l.path, `${where}: output symlink`);
    if (l.target === '') {
      throw new SpecbuildError(
        'reapi/invalid-message',
        `${where}: output symlink "${l.path}" has no target`,
      );
    }
  }
  if (result.stdoutDigest !== undefined)
    blobs.push(fromPb(result.stdoutDigest, `${where}: stdout`));
  if (result.stderrDigest !== undefined)
    blobs.push(fromPb(result.stderrDigest, `${where}: stderr`));
  return { blobs, trees };
}
