// A real specbuild REAPI server on a real socket (TCP port 0 or a temporary
// unix socket) over a real local store, and a client connected to it. Its
// teardown fails the test if a call was left running on the server.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache, LocalAssetStore, LocalCas } from '../../src/cas/index.js';
import { LocalExecutor } from '../../src/exec/index.js';
import { RemoteEndpoint, type EndpointOptions } from '../../src/remote/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { tempDir, type TempDir } from './tmp.js';

export type Transport = 'tcp' | 'unix';

export interface ServerFixture extends AsyncDisposable {
  dir: TempDir;
  cas: LocalCas;
  ac: LocalActionCache;
  assets: LocalAssetStore;
  server: RunningServer;
  endpoint: RemoteEndpoint;
  /** Opens another client to the same server. */
  connect(opts?: Partial<EndpointOptions>): Promise<RemoteEndpoint>;
}

export async function startFixture(
  transport: Transport,
  opts: {
    instance?: string;
    quotaBytes?: number;
    maxBatchBytes?: number;
    tls?: { cert: Buffer; key: Buffer };
    token?: string;
    /** The asset index's clock (ms since 1970), for expiry and push times. */
    now?: () => number;
    /** Serve the instance without the Remote Asset API. */
    noAssets?: boolean;
    /** Execute actions on this machine (the embedded executor, 2 jobs), as `specbuild server` does. */
    executes?: boolean;
    /** Options of the first client (e.g. tokenFile, caFile, a grpcs:// target). */
    client?: Partial<EndpointOptions>;
  } = {},
): Promise<ServerFixture> {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: join(dir.path, 'cache'), quotaBytes: opts.quotaBytes });
  const ac = await LocalActionCache.open(join(dir.path, 'cache'), cas);
  const assets = await LocalAssetStore.open({ dir: join(dir.path, 'cache'), cas, now: opts.now });
  const instance = opts.instance ?? '';
  const server = await startServer({
    listen: transport === 'tcp' ? '127.0.0.1:0' : `unix:${join(dir.path, 's.sock')}`,
    instances: new Map([
      [
        instance,
        {
          cas,
          ac,
          assets: opts.noAssets === true ? undefined : assets,
          executor:
            opts.executes === true
              ? new LocalExecutor({ cas, ac, workDir: join(dir.path, 'exec'), jobs: 2 })
              : undefined,
        },
      ],
    ]),
    maxBatchBytes: opts.maxBatchBytes,
    tls: opts.tls,
    token: opts.token,
  });
  const clients: RemoteEndpoint[] = [];
  const connect = async (o: Partial<EndpointOptions> = {}): Promise<RemoteEndpoint> => {
    const target =
      opts.tls === undefined
        ? server.address
        : `grpcs://localhost:${server.address.split(':').pop() ?? ''}`;
    const ep = await RemoteEndpoint.connect({ target, instance, ...o });
    clients.push(ep);
    return ep;
  };
  const endpoint = await connect(opts.client);
  return {
    dir,
    cas,
    ac,
    assets,
    server,
    endpoint,
    connect,
    async [Symbol.asyncDispose]() {
      for (const c of clients) c.close();
      // Give cancelled streams a moment to unwind on the server before checking.
      for (let i = 0; i < 50 && server.context.activeCalls > 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const leaked = server.context.activeCalls;
      await server.close();
      await dir[Symbol.asyncDispose]();
      assert.equal(leaked, 0, `${leaked} server call(s) still running at teardown`);
    },
  };
}
