// The server's unix socket is its owner's only (0600) whatever the umask,
// unless another mode is asked for; nothing of its binding is left beside it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { startServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';

/** Runs `fn` with the process umask set to `mask`. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

describe('unix socket mode', () => {
  for (const [asked, want] of [
    [undefined, 0o600],
    [0o660, 0o660],
  ] as const) {
    const name = asked === undefined ? 'the default' : asked.toString(8);
    it(`is ${want.toString(8)} with ${name} under umask 0`, async () => {
      await using dir = await tempDir();
      const cas = await LocalCas.open({ dir: join(dir.path, 'cache') });
      const ac = await LocalActionCache.open(join(dir.path, 'cache'), cas);
      const sock = join(dir.path, 'reapi.sock');
      const server = await withUmask(0, () =>
        startServer({
          listen: `unix:${sock}`,
          instances: new Map([['', { cas, ac }]]),
          socketMode: asked,
        }),
      );
      try {
        const st = await stat(sock);
        assert.ok(st.isSocket());
        assert.equal((st.mode & 0o7777).toString(8), want.toString(8));
        assert.deepEqual(
          (await readdir(dir.path)).sort(),
          ['cache', 'reapi.sock'],
          'nothing of the binding is left beside the socket',
        );
        const ep = await RemoteEndpoint.connect({ target: `unix:${sock}` });
        const d = await ep.cas.writeBlob(Buffer.from('through the socket'));
        assert.equal(cas.has(d), true);
        ep.close();
      } finally {
        await server.close();
      }
      assert.equal(existsSync(sock), false, 'the socket is removed when the server stops');
    });
  }
});
