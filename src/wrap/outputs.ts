// Writes an ActionResult's outputs into place: each file or directory is
// written beside its destination first and renamed over it, so a reader
// never sees half an output. Only outputs the action declared are written:
// a result from a server cannot put files anywhere else.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { stageTreeMessage, type Cas } from '../cas/index.js';
import { SpecbuildError } from '../core/index.js';
import { TreeSchema, checkActionResult, fromPb, type ActionResult } from '../reapi/index.js';

function tempBeside(path: string): string {
  return join(dirname(path), `.${randomBytes(6).toString('hex')}.specbuild-tmp`);
}

export async function writeOutputs(
  cas: Cas,
  result: ActionResult,
  workDir: string,
  declared: readonly string[],
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
    const fh = await open(tmp, 'wx', f.isExecutable ? 0o755 : 0o644);
    try {
      for await (const chunk of cas.readStream(fromPb(f.digest, `output ${f.path}`)))
        await fh.write(chunk);
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    await chmod(tmp, f.isExecutable ? 0o755 : 0o644);
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
