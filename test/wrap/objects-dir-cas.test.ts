// The server's CAS seen through its blob directory (a `specbuild server` on
// this machine, reached through a unix socket): presence by stat must say
// what the server's FindMissingBlobs says, and the server must still hear,
// once per TOLD_FRESH_MS, of the present blobs used (its LRU eviction).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cas, CallOptions } from '../../src/cas/index.js';
import { digestKey, digestOf, EMPTY_DIGEST, type Digest } from '../../src/reapi/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { localBlobPath, ObjectsDirCas, storeCas, TOLD_FRESH_MS } from '../../src/wrap/index.js';
import { startCliServer } from '../helpers/cli-server.js';
import { tempDir } from '../helpers/tmp.js';

/** The real remote CAS, with the digests of each FindMissingBlobs call written down. */
function askedOf(cas: Cas): { cas: Cas; asked: string[][] } {
  const asked: string[][] = [];
  const seen: Cas = Object.create(cas) as Cas;
  seen.findMissingBlobs = (ds: readonly Digest[], o?: CallOptions) => {
    asked.push(ds.map(digestKey).sort());
    return cas.findMissingBlobs(ds, o);
  };
  return { cas: seen, asked };
}

const keys = (ds: readonly Digest[]): string[] => ds.map(digestKey).sort();

describe('ObjectsDirCas', () => {
  it('finds the blobs missing from a server on this machine as the server does, asking it only of present blobs not used lately', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const ep = await RemoteEndpoint.connect({ target: server.address });
    try {
      const objects = ep.localObjects;
      assert.ok(objects !== undefined);
      const stored = [Buffer.from('int a;\n'), Buffer.from('int b;\n'), Buffer.from('int c;\n')];
      await ep.cas.writeBlobs(stored);
      const [a, b, c] = stored.map(digestOf);
      assert.ok(a !== undefined && b !== undefined && c !== undefined);
      const absent = digestOf(Buffer.from('never stored'));
      // The hash of a stored blob with another size: not that blob.
      const wrongSize = { ...a, size: a.size + 1 };
      const all = [a, b, c, absent, wrongSize, EMPTY_DIGEST];

      let now = 1_000_000;
      const seen = askedOf(ep.cas);
      const cas = new ObjectsDirCas(seen.cas, objects, false, () => now);
      const server1 = await ep.cas.findMissingBlobs(all);
      assert.deepEqual(keys(await cas.findMissingBlobs(all)), keys(server1));
      assert.deepEqual(keys(server1), keys([absent, wrongSize]));
      // The present blobs were asked of the server once (their use counts there) ...
      assert.deepEqual(seen.asked, [keys([a, b, c])]);
      // ... and not again within TOLD_FRESH_MS, where the stats answer alone.
      now += TOLD_FRESH_MS - 1;
      assert.deepEqual(keys(await cas.findMissingBlobs(all)), keys([absent, wrongSize]));
      assert.equal(seen.asked.length, 1);
      // A blob written through it counts as told; after the interval, the others are asked again.
      const [d] = await cas.writeBlobs([Buffer.from('int d;\n')]);
      assert.ok(d !== undefined);
      now += 2;
      assert.deepEqual(keys(await cas.findMissingBlobs([a, b, d])), []);
      assert.deepEqual(seen.asked.slice(1), [keys([a, b])]);

      // A blob removed from the directory behind the client's back is missing
      // at once, told or not, and written again by an upload.
      rmSync(localBlobPath(objects, b));
      assert.deepEqual(keys(await cas.findMissingBlobs([a, b])), keys([b]));
      assert.deepEqual(keys(await ep.cas.findMissingBlobs([a, b])), keys([b]));
      await cas.writeBlobs([Buffer.from('int b;\n')]);
      assert.deepEqual(await ep.cas.findMissingBlobs([a, b]), []);
      // A file of the right name but the wrong size (torn) is missing too.
      writeFileSync(localBlobPath(objects, c), 'int');
      assert.deepEqual(keys(await cas.findMissingBlobs([c])), keys([c]));
    } finally {
      ep.close();
      await server.stop();
    }
  });

  it('asks the server of a blob whose file it cannot stat (not only when there is none)', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const ep = await RemoteEndpoint.connect({ target: server.address });
    try {
      const blob = Buffer.from('int e;\n');
      const [e] = await ep.cas.writeBlobs([blob]);
      assert.ok(e !== undefined);
      // A directory seen here whose shard is no directory: the stat fails
      // with ENOTDIR (as it would with EACCES for a directory of another
      // user's server), which says nothing of the blob.
      const objects = join(dir.path, 'elsewhere');
      mkdirSync(objects);
      writeFileSync(join(objects, e.hash.slice(0, 2)), 'not a directory');
      const seen = askedOf(ep.cas);
      const cas = new ObjectsDirCas(seen.cas, objects, false, () => 0);
      assert.deepEqual(await cas.findMissingBlobs([e]), []);
      assert.deepEqual(seen.asked, [keys([e])]);
    } finally {
      ep.close();
      await server.stop();
    }
  });

  it('is used only where the server said where its blobs are', async () => {
    await using dir = await tempDir();
    const unix = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const tcp = await startCliServer(join(dir.path, 'cache-tcp'));
    const here = await RemoteEndpoint.connect({ target: unix.address });
    const there = await RemoteEndpoint.connect({ target: tcp.address });
    try {
      assert.ok(storeCas(here) instanceof ObjectsDirCas);
      assert.equal(storeCas(here), storeCas(here), 'one per endpoint');
      assert.equal(storeCas(there), there.cas);
    } finally {
      here.close();
      there.close();
      await unix.stop();
      await tcp.stop();
    }
  });
});
