// Staging a tar or git source means unpacking it; doing that again for the
// same key would give the same tree. So the root digest of each staged tree
// is recorded under sourceDir/staged/, named by the hash of the source's
// kind and key, and reused while the whole tree is still in the CAS.
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, writeFileAtomic } from '../../core/index.js';
import { fetchTree, filesOf, type Cas } from '../../cas/index.js';
import { digestKey, parseDigestString, type Digest } from '../../reapi/index.js';
import type { Plain } from '../yaml.js';
import type { SourceEnv } from './source.js';

function recordPath(env: SourceEnv, kind: string, key: Plain): string {
  const name = createHash('sha256')
    .update(JSON.stringify([kind, key]))
    .digest('hex');
  return join(env.sourceDir, 'staged', name);
}

/** True when every Directory and file of the tree is in `cas`. */
export async function treeInCas(cas: Cas, root: Digest, signal?: AbortSignal): Promise<boolean> {
  const t = await fetchTree(cas, root, { signal });
  if (t.missing.length > 0) return false;
  const files = filesOf(t.directories.values());
  return (await cas.findMissingBlobs(files, { signal })).length === 0;
}

/** The recorded tree of this key, if it is recorded and still complete in the CAS. */
export async function lookupStaged(
  env: SourceEnv,
  kind: string,
  key: Plain,
): Promise<Digest | undefined> {
  let text: string;
  try {
    text = await readFile(recordPath(env, kind, key), 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  let root: Digest;
  try {
    root = parseDigestString(text.trim(), 'staged tree record');
  } catch {
    return undefined; // a damaged record is a miss; staging rewrites it
  }
  return (await treeInCas(env.cas, root, env.signal)) ? root : undefined;
}

export async function recordStaged(
  env: SourceEnv,
  kind: string,
  key: Plain,
  root: Digest,
): Promise<void> {
  await mkdir(join(env.sourceDir, 'staged'), { recursive: true });
  await writeFileAtomic(recordPath(env, kind, key), `${digestKey(root)}\n`);
}

/** The recorded tree of the key, else `produce()`'s (then recorded). */
export async function stageCached(
  env: SourceEnv,
  kind: string,
  key: Plain,
  produce: () => Promise<Digest>,
): Promise<Digest> {
  const hit = await lookupStaged(env, kind, key);
  if (hit !== undefined) return hit;
  const root = await produce();
  await recordStaged(env, kind, key, root);
  return root;
}
