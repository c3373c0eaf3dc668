// The Cas and ActionCache contracts on the remote client, talking to a real
// `specbuild server` over TCP and over a unix socket.
import { unlink } from 'node:fs/promises';
import { startFixture, type Transport } from '../helpers/server-fixture.js';
import { casContract } from '../cas/cas-contract.js';
import { acContract } from '../cas/ac-contract.js';
import type { Digest } from '../../src/reapi/index.js';

for (const transport of ['tcp', 'unix'] as Transport[]) {
  const rig = async () => {
    const f = await startFixture(transport);
    return {
      cas: f.endpoint.cas,
      ac: f.endpoint.actionCache,
      evict: (d: Digest) => unlink(f.cas.pathOf(d)),
      [Symbol.asyncDispose]: () => f[Symbol.asyncDispose](),
    };
  };
  casContract(`remote over ${transport}`, rig);
  acContract(`remote over ${transport}`, rig);
}
