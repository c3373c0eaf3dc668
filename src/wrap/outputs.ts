// Writes an ActionResult's outputs into place: each file or directory is
// written beside its destination first and renamed over it, so a reader
// never sees half an output. Only outputs the action declared are written:
// a result from a server cannot put files anywhere else.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  open,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { stageTreeMessage, type Cas } from '../cas/index.js';
import { SpecbuildError } from '../core/index.js';
import {
  TreeSchema,
  checkActionResult,
  fromPb,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';

/** Outputs up to this size are read whole (one call) rather than streamed. */
const WHOLE_READ_MAX = 4 * 1024 * 1024;

/**
 * Copies a blob from the server's blob directory on this machine (a copy,
 * never a link: the blob must stay as it is); false when it is not there
 * or not of the size named (the output is then read over gRPC).
 */
async function copyLocalBlob(objects: string, d: Digest, dest: string): Promise<boolean> {
  const src = join(objects, d.hash.slice(0, 2), d.hash);
  try {
    await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  } catch {
    await rm(dest, { force: true });
    return false;
  }
  if ((await stat(dest)).size === d.size) return true;
  await rm(dest, { force: true });
  return false;
}

function tempBeside(path: string): string {
  return join(dirname(path), `.${randomBytes(6).toString('hex')}.specbuild-tmp`);
}

export async function writeOutputs(
  cas: Cas,
  result: ActionResult,
  workDir: string,
  declared: readonly string[],
  /** The server's blob directory on this machine, when it is visible here. */
  localObjects?: string,
): Promise<void> {
  checkActionResult(result);
  const allowed = new Set(declared);
  /* eslint-disable @typescript-eslint/no-deprecated -- older peers' symlink lists */
  const links = [
    ...result.outputSymlinks,
    ...result.outputFileSymlinks,
    ...result.outputDirectorySymlinks,
  ];
  /* eslint-enable @typescript-eslint/no-deprecated */
  for (const o of [...result.outputFiles, ...result.outputDirectories, ...links]) {
    if (!allowed.has(o.path))
      throw new SpecbuildError(
        'remote/protocol',
        `the result names output "${o.path}", which the action did not declare`,
      );
  }
  for (const f of result.outputFiles) {
    const dest = join(workDir, f.path);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = tempBeside(dest);
    const d = fromPb(f.digest, `output ${f.path}`);
    const mode = f.isExecutable ? 0o755 : 0o644;
    if (
      (localObjects !== undefined && (await copyLocalBlob(localObjects, d, tmp))) ||
      (d.size <= WHOLE_READ_MAX &&
        (await writeFile(tmp, await cas.readBlob(d), { flag: 'wx', mode }).then(() => true)))
    ) {
      await chmod(tmp, mode);
      await rename(tmp, dest);
      continue;
    }
    const fh = await open(tmp, 'wx', mode);
    try {
      for await (const chunk of cas.readStream(d)) await fh.write(chunk);
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await chmod(tmp, mode);
    await rename(tmp, dest);
  }
  for (const d of result.outputDirectories) {
    const dest = join(workDir, d.path);
    await mkdir(dirname(dest), { recursive: true });
    const tree = fromBinary(
      TreeSchema,
      await cas.readBlob(fromPb(d.treeDigest, `output ${d.path}`)),
    );
    const tmp = tempBeside(dest);
    await mkdir(tmp);
    try {
      await stageTreeMessage(cas, tree, tmp);
      await rm(dest, { recursive: true, force: true });
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  for (const l of links) {
    const dest = join(workDir, l.path);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = tempBeside(dest);
    await symlink(l.target, tmp);
    await rename(tmp, dest);
  }
}
