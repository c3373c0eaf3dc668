// Checks a cache directory the way a crash test needs: every blob under
// cas/objects hashes to its name (and has its size), and no ref names an
// artifact that is not whole (the record and every blob it needs present),
// nor a failed build's log that is gone. Returns the problems found.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactCache, LocalCas, RefStore } from '../../src/cas/index.js';
import { parseDigestString } from '../../src/reapi/index.js';

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function verifyCache(cacheDir: string): Promise<string[]> {
  const problems: string[] = [];
  const objects = join(cacheDir, 'cas', 'objects');
  for (const shard of await readdir(objects)) {
    for (const name of await readdir(join(objects, shard))) {
      if (name.startsWith('.tmp-')) continue; // a write in flight when killed: not a blob
      const actual = await sha256(join(objects, shard, name));
      if (actual !== name || !name.startsWith(shard))
        problems.push(`cas/objects/${shard}/${name} holds ${actual}`);
    }
  }
  const cas = await LocalCas.open({ dir: cacheDir });
  const refs = new RefStore(join(cacheDir, 'refs', 'artifacts'));
  const artifacts = new ArtifactCache(cas, refs);
  for (const ref of await refs.list()) {
    const [project, element, key] = ref.split('/');
    if (project === undefined || element === undefined || key === undefined) {
      problems.push(`ref ${ref} is not PROJECT/ELEMENT/KEY`);
      continue;
    }
    if ((await artifacts.lookup(project, element, key)) === undefined)
      problems.push(`ref ${ref} without its whole artifact`);
  }
  const failed = new RefStore(join(cacheDir, 'refs', 'failed'));
  for (const ref of await failed.list()) {
    const text = await readFile(join(failed.dir, ref), 'utf8');
    const log = parseDigestString(text.trim(), ref);
    if ((await cas.findMissingBlobs([log])).length > 0)
      problems.push(`failure ref ${ref} without its log`);
  }
  return problems;
}
