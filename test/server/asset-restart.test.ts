// Crash safety of `specbuild server`'s asset index: names acknowledged just
// before a kill -9 resolve after a restart on the same cache directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { DirectorySchema, digestMessage, toPb, type Digest } from '../../src/reapi/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { tempDir } from '../helpers/tmp.js';

const NAMES = 20;
const FAR = Date.UTC(2100, 0, 1);

test(
  'names pushed before a kill -9 resolve after the server restarts',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const cacheDir = join(dir.path, 'cache');
    const first = await startCliServer(cacheDir, { jobs: 0 });
    const blobs: Digest[] = [];
    let root: Digest | undefined;
    try {
      const ep = await RemoteEndpoint.connect({ target: first.address });
      try {
        for (let i = 0; i < NAMES; i++) {
          const d = await ep.cas.writeBlob(Buffer.from(`record ${i}`));
          await ep.assets.pushBlob({
            uris: [`urn:specbuild:v1:artifact:p/e${i}/${'0'.repeat(63)}${i % 10}`],
            qualifiers: [{ name: 'n', value: String(i) }],
            digest: d,
            expireAtMs: FAR,
          });
          blobs.push(d);
        }
        const file = await ep.cas.writeBlob(Buffer.from('file'));
        const dirMsg = digestMessage(
          DirectorySchema,
          create(DirectorySchema, { files: [{ name: 'f', digest: toPb(file) }] }),
        );
        await ep.cas.writeBlob(dirMsg.bytes);
        root = dirMsg.digest;
        await ep.assets.pushDirectory({ uris: ['urn:x:tree'], digest: root });
      } finally {
        ep.close();
      }
    } finally {
      // At once after the last acknowledgement, as a crash would.
      assert.deepEqual(await first.kill(), { code: null, signal: 'SIGKILL' });
    }

    const second = await startCliServer(cacheDir, { jobs: 0 });
    try {
      const ep = await RemoteEndpoint.connect({ target: second.address });
      try {
        for (let i = 0; i < NAMES; i++) {
          const uri = `urn:specbuild:v1:artifact:p/e${i}/${'0'.repeat(63)}${i % 10}`;
          const qualifiers = [{ name: 'n', value: String(i) }];
          assert.deepEqual(await ep.assets.fetchBlob({ uris: [uri], qualifiers }), {
            uri,
            digest: blobs[i],
            qualifiers,
            expireAtMs: FAR,
          });
        }
        assert.deepEqual((await ep.assets.fetchDirectory({ uris: ['urn:x:tree'] }))?.digest, root);
        assert.deepEqual(await readdir(join(cacheDir, 'assets', 'tmp')), []);
      } finally {
        ep.close();
      }
      await assertStopsCleanly(second);
    } finally {
      await second.stop();
    }
  },
);
