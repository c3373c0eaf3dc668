// A writer killed in the middle of a blob leaves the cache consistent: no
// partial blob is visible, every visible blob hashes to its name, and the
// leftovers of the dead writer are cleaned up when the cache is next opened.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalCas } from '../../src/cas/index.js';
import { digestOf } from '../../src/reapi/index.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

async function allFiles(dir: string): Promise<{ shard: string; name: string }[]> {
  const out = [];
  for (const shard of await readdir(dir)) {
    for (const name of await readdir(join(dir, shard))) out.push({ shard, name });
  }
  return out;
}

it('a writer killed mid-blob leaves the cache consistent', async () => {
  await using tmp = await tempDir();
  const size = 4 * 1024 * 1024;
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'dist', 'test', 'helpers', 'slow-writer.js'), tmp.path, String(size)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (s: string) => {
      out += s;
      if (out.includes('half')) resolve();
    });
    child.once('exit', () => {
      reject(new Error(`writer exited early: ${out}`));
    });
  });
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(!out.includes('done'), 'the writer was killed before it finished');

  const objects = join(tmp.path, 'cas', 'objects');
  const leftovers = (await allFiles(objects)).filter((f) => f.name.startsWith('.tmp-'));
  assert.ok(leftovers.length >= 1, 'the killed writer left a temporary file behind');

  const full = digestOf(Buffer.alloc(size, 7));
  const cas = await LocalCas.open({ dir: tmp.path });
  assert.equal(cas.has(full), false, 'no partial blob is visible under its digest');
  const files = await allFiles(objects);
  assert.deepEqual(
    files.filter((f) => f.name.startsWith('.tmp-')),
    [],
    "reopening removed the dead writer's temporary files",
  );
  for (const f of files) {
    const data = await readFile(join(objects, f.shard, f.name));
    assert.equal(digestOf(data).hash, f.name, `${f.name} hashes to its name`);
  }
  assert.ok(files.length >= 2, 'the complete blob and the empty blob survive');
  let total = 0;
  for (const f of files) total += (await readFile(join(objects, f.shard, f.name))).byteLength;
  // A store with a quota indexes every blob as it opens (without one it
  // indexes as it goes: local-store.test.ts).
  const withQuota = await LocalCas.open({ dir: tmp.path, quotaBytes: 1 << 30 });
  assert.equal(withQuota.sizeBytes, total, 'the index counts exactly the visible blobs');
  // The same blob can be written again afterwards.
  await cas.writeBlob(Buffer.alloc(size, 7));
  assert.equal(cas.has(full), true);
});
