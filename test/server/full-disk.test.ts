// A full cache disk, for real (a small tmpfs filled to the last page): every
// write through the server is RESOURCE_EXHAUSTED with a message that names no
// server path, leaves no temporary file, and works again once space is freed,
// with what was stored before intact.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import {
  ActionCache,
  bytestream,
  ContentAddressableStorage,
  digestOf,
  toPb,
} from '../../src/reapi/index.js';
import { RemoteCallError, RemoteEndpoint } from '../../src/remote/index.js';
import { startServer } from '../../src/server/index.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { tempDir } from '../helpers/tmp.js';

/** Fills the file system of `path` to its last page; returns the filler to delete later. */
function fill(path: string): string {
  const filler = join(path, 'filler');
  const fd = openSync(filler, 'w');
  const page = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, page);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** Every file under `dir` whose name marks it temporary, and what the tmp directories hold. */
async function temporaries(dir: string): Promise<string[]> {
  const all = await readdir(dir, { recursive: true });
  return all.filter(
    (p) => p.split('/').some((part) => part.startsWith('.tmp-')) || /^(cas|ac)\/tmp\/./.test(p),
  );
}

async function* once<T>(...items: T[]): AsyncIterable<T> {
  for (const i of items) {
    await Promise.resolve();
    yield i;
  }
}

it('answers RESOURCE_EXHAUSTED on a full disk, cleans up, and recovers', async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, 'cache');
  await using _fs = await mountTmpfs(cacheDir, { size: '2m' });
  const cas = await LocalCas.open({ dir: cacheDir });
  const ac = await LocalActionCache.open(cacheDir, cas);
  const server = await startServer({
    listen: '127.0.0.1:0',
    instances: new Map([['', { cas, ac }]]),
  });
  const ep = await RemoteEndpoint.connect({ target: server.address });
  const c = ep.connection;
  const noRetry = { retry: false };
  try {
    const before = randomBytes(100 * 1024);
    const beforeDigest = await ep.cas.writeBlob(before);
    const filler = fill(cacheDir);

    const small = randomBytes(10 * 1024);
    const large = randomBytes(300 * 1024);
    const result = { exitCode: 0, stdoutDigest: toPb(digestOf(small)) };
    const actionDigest = toPb(digestOf(Buffer.from('an action')));
    const writes = {
      batch: async (): Promise<{ code: number; message: string }> => {
        const res = await c.unary(
          ContentAddressableStorage.method.batchUpdateBlobs,
          { requests: [{ digest: toPb(digestOf(small)), data: small }] },
          noRetry,
        );
        const st = res.responses[0]?.status;
        return { code: st?.code ?? Status.OK, message: st?.message ?? '' };
      },
      byteStream: () => {
        const d = digestOf(large);
        const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
        return outcome(
          c.clientStream(
            bytestream.ByteStream.method.write,
            once(
              { resourceName, data: large.subarray(0, 100 * 1024) },
              { writeOffset: 100n * 1024n, data: large.subarray(100 * 1024), finishWrite: true },
            ),
            noRetry,
          ),
        );
      },
      partialByteStream: () => {
        // An upload left for a later resume (no finish_write).
        const d = digestOf(large);
        const resourceName = `uploads/${randomUUID()}/blobs/${d.hash}/${d.size}`;
        return outcome(
          c.clientStream(
            bytestream.ByteStream.method.write,
            once({ resourceName, data: large.subarray(0, 200 * 1024) }),
            noRetry,
          ),
        );
      },
      updateActionResult: () =>
        outcome(
          c.unary(
            ActionCache.method.updateActionResult,
            { actionDigest, actionResult: result },
            noRetry,
          ),
        ),
    };

    for (const [name, write] of Object.entries(writes)) {
      const { code, message } = await write();
      assert.equal(code, Status.RESOURCE_EXHAUSTED, `${name}: ${message}`);
      assert.ok(!message.includes(cacheDir), `${name} names a server path: ${message}`);
      assert.ok(!message.includes(dir.path), `${name} names a server path: ${message}`);
      assert.deepEqual(await temporaries(cacheDir), [], `${name} left temporary files`);
    }
    assert.equal(server.partialUploads, 0, 'a failed partial upload is not kept');
    // The store's in-process writers: the executor's outputs, copies from a remote.
    const output = join(dir.path, 'output.bin');
    await writeFile(output, randomBytes(50 * 1024));
    const other = randomBytes(50 * 1024);
    const inProcess = {
      writeFile: () => cas.writeFile(output),
      writeStream: () => cas.writeStream(digestOf(other), once(other)),
      writeBlobs: () => cas.writeBlobs([other]),
    };
    for (const [name, write] of Object.entries(inProcess)) {
      await assert.rejects(write(), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'cas/full', `${name}: ${e.message ?? ''}`);
        assert.ok(!(e.message ?? '').includes(cacheDir), `${name}: ${e.message ?? ''}`);
        return true;
      });
      assert.deepEqual(await temporaries(cacheDir), [], `${name} left temporary files`);
    }
    assert.equal(cas.has(digestOf(small)), false);
    assert.equal(cas.has(digestOf(large)), false);

    await unlink(filler);
    for (const [name, write] of Object.entries(writes)) {
      const { code, message } = await write();
      assert.equal(code, Status.OK, `${name} after space was freed: ${message}`);
    }
    assert.equal(cas.has(digestOf(small)), true);
    assert.equal(cas.has(digestOf(large)), true);
    assert.ok(await ep.actionCache.getActionResult(digestOf(Buffer.from('an action'))));
    assert.ok(Buffer.from(await ep.cas.readBlob(beforeDigest)).equals(before), 'intact');
  } finally {
    ep.close();
    await server.close();
  }
});

async function outcome(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: Status.OK, message: '' };
  } catch (e) {
    if (e instanceof RemoteCallError) return { code: e.grpcCode, message: e.message };
    throw e;
  }
}
