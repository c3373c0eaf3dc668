// Scratch space of the tar and git sources (an archive is unpacked, a commit
// checked out, in a fresh directory under sourceDir/tmp that is removed
// afterwards), and the upload of such a directory as a tree into the CAS.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { uploadMissing, type Uploads } from '../../cas/index.js';
import { treeFromDirectory, type Digest } from '../../reapi/index.js';
import type { SourceEnv } from './source.js';

/** Runs `fn` with a new empty directory, removed when it ends (whatever the outcome). */
export async function withScratchDir<T>(
  env: SourceEnv,
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const base = join(env.sourceDir, 'tmp');
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, `${process.pid}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Stores the tree of `dir` in env.cas; returns its root. */
export async function uploadDirectory(env: SourceEnv, dir: string): Promise<Digest> {
  const t = await treeFromDirectory(dir);
  const uploads: Uploads = new Map();
  for (const [k, d] of t.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
  for (const [k, f] of t.files) uploads.set(k, { digest: f.digest, path: f.path });
  await uploadMissing(env.cas, uploads, { signal: env.signal });
  return t.root;
}
