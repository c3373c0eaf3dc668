// The host platform: each toolchain binary hashed once (cc and gcc are one
// file), with the stat it was hashed under; and what one thread computed is
// taken as it is by another (a wrapper daemon's workers).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import {
  digestKey,
  digestOfFile,
  hostPlatform,
  hostSnapshot,
  hostToolchainFiles,
  TOOLCHAIN_BINARIES,
  TOOLCHAIN_PROPERTY,
} from '../../src/reapi/index.js';

describe('hostPlatform', () => {
  it('hashes each real binary once, with the stat it had throughout', async () => {
    const files = await hostToolchainFiles();
    // os-release, then each binary in its order, absent ones included.
    assert.deepEqual(
      files.map((f) => f.path),
      ['/etc/os-release', ...TOOLCHAIN_BINARIES],
    );
    const gcc = files.find((f) => f.path === '/usr/bin/gcc');
    assert.ok(gcc?.real !== undefined && gcc.digest !== undefined && gcc.stat !== undefined);
    assert.equal(gcc.real, realpathSync('/usr/bin/gcc'));
    assert.equal(digestKey(gcc.digest), digestKey(await digestOfFile(gcc.real)));
    const st = statSync(gcc.real, { bigint: true });
    assert.deepEqual(gcc.stat, {
      size: Number(st.size),
      mtimeNs: st.mtimeNs.toString(),
      ctimeNs: st.ctimeNs.toString(),
      ino: Number(st.ino),
      nlink: Number(st.nlink),
    });
    // Every path to one real file has its one digest: the same object, hashed once.
    const cc = files.find((f) => f.path === '/usr/bin/cc');
    assert.equal(cc?.real, gcc.real, 'cc is gcc on this machine');
    assert.ok(cc.digest === gcc.digest && cc.stat === gcc.stat);
    for (const f of files)
      for (const g of files)
        if (f.real !== undefined && f.real === g.real) assert.ok(f.digest === g.digest, f.path);
  });

  it('is taken as given by another thread seeded with it, which hashes nothing', async () => {
    const snapshot = await hostSnapshot();
    assert.deepEqual(new Map(snapshot.properties), await hostPlatform());
    // A value no hashing gives: the worker reports it, so it computed nothing.
    const seeded = {
      ...snapshot,
      properties: snapshot.properties.map(([k, v]): [string, string] =>
        k === TOOLCHAIN_PROPERTY ? [k, 'seeded-0123456789'] : [k, v],
      ),
    };
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.url).then(async (m) => {
        m.seedHostPlatform(workerData.seeded);
        const files = await m.hostToolchainFiles();
        parentPort.postMessage({ props: [...(await m.hostPlatform())], files });
      });`;
    const url = new URL('../../src/reapi/index.js', import.meta.url).href;
    const got = await new Promise<{ props: [string, string][]; files: unknown[] }>(
      (resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { url, seeded } });
        w.once('message', (m: { props: [string, string][]; files: unknown[] }) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      },
    );
    assert.deepEqual(got.props, seeded.properties);
    assert.deepEqual(got.files, snapshot.files);
  });
});
