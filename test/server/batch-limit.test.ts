// A batch over the advertised max_batch_total_size_bytes reaches the handler
// and is refused with INVALID_ARGUMENT (REAPI), once: never the transport's
// RESOURCE_EXHAUSTED, which clients take as "try again".
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { ContentAddressableStorage, digestOf, toPb } from '../../src/reapi/index.js';
import { RemoteCallError, RemoteEndpoint } from '../../src/remote/index.js';
import { startServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';

/** An instance map that counts lookups: one per call that reached a handler. */
class CountingMap<K, V> extends Map<K, V> {
  lookups = 0;
  override get(key: K): V | undefined {
    this.lookups++;
    return super.get(key);
  }
}

const MiB = 1024 * 1024;
/** The server's default advertised limit. */
const LIMIT = 4 * MiB;

for (const transport of ['tcp', 'unix'] as const) {
  it(`refuses batches over the limit with INVALID_ARGUMENT, not retried (${transport})`, async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: join(dir.path, 'cache') });
    const ac = await LocalActionCache.open(join(dir.path, 'cache'), cas);
    const instances = new CountingMap([['', { cas, ac }]]);
    const server = await startServer({
      listen: transport === 'tcp' ? '127.0.0.1:0' : `unix:${join(dir.path, 's.sock')}`,
      instances,
    });
    // The client's retry policy is on, with backoff short enough to see retries.
    const ep = await RemoteEndpoint.connect({
      target: server.address,
      retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    });
    try {
      // Just over the limit, half as much again (past limit + overhead), twice the limit.
      const batches = [[LIMIT + 1], [3 * MiB, 3 * MiB], [LIMIT, LIMIT]];
      for (const sizes of batches) {
        const blobs = sizes.map((n) => randomBytes(n));
        const before = instances.lookups;
        const err = await ep.connection
          .unary(ContentAddressableStorage.method.batchUpdateBlobs, {
            requests: blobs.map((b) => ({ digest: toPb(digestOf(b)), data: b })),
          })
          .then(
            () => assert.fail(`a batch of ${sizes.join('+')} bytes was accepted`),
            (e: unknown) => e,
          );
        assert.ok(err instanceof RemoteCallError, String(err));
        assert.equal(
          err.grpcCode,
          Status.INVALID_ARGUMENT,
          `batch of ${sizes.join('+')} bytes: ${err.message}`,
        );
        assert.match(err.message, new RegExp(`max_batch_total_size_bytes ${LIMIT}`));
        assert.equal(err.temporary, false);
        assert.equal(instances.lookups - before, 1, 'the call reached the server once');
        for (const b of blobs) assert.equal(cas.has(digestOf(b)), false);

        const reads = await ep.connection
          .unary(ContentAddressableStorage.method.batchReadBlobs, {
            digests: blobs.map((b) => toPb(digestOf(b))),
          })
          .then(
            () => assert.fail('an over-limit read was accepted'),
            (e: unknown) => e,
          );
        assert.ok(reads instanceof RemoteCallError, String(reads));
        assert.equal(reads.grpcCode, Status.INVALID_ARGUMENT);
        assert.match(reads.message, new RegExp(`max_batch_total_size_bytes ${LIMIT}`));
      }
      // The client's own writes split by the advertised limit and go through.
      const blobs = [randomBytes(3 * MiB), randomBytes(3 * MiB)];
      await ep.cas.writeBlobs(blobs);
      for (const b of blobs) assert.equal(cas.has(digestOf(b)), true);
    } finally {
      ep.close();
      await server.close();
    }
    assert.equal(server.context.activeCalls, 0);
  });
}
