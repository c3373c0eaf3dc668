// A connected remote REAPI endpoint: reads Capabilities first, then offers the
// Cas and ActionCache interfaces configured by what the server advertised,
// and the Remote Asset client over the same connection.
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import {
  Capabilities,
  DigestFunction_Value,
  CAS_OBJECTS_HEADER,
  DIRECT_STORE_HEADER,
  EXECUTES_HERE_HEADER,
  type ServerCapabilities,
} from '../reapi/index.js';
import { Connection, type CallOpts, type ConnectionOptions } from './connection.js';
import { RemoteActionCache } from './remote-action-cache.js';
import { RemoteAsset } from './remote-asset.js';
import { RemoteCas } from './remote-cas.js';
import { RemoteExecution } from './remote-execution.js';
import { RemoteExecutor } from './remote-executor.js';

export interface EndpointOptions extends ConnectionOptions {
  /** REAPI instance name (default ""). */
  instance?: string;
}

export class RemoteEndpoint {
  /** The Executor interface over `execution`. */
  readonly executor: RemoteExecutor;
  /**
   * Remote Asset (Fetch, Push) at the same target and instance. Capabilities
   * do not advertise it: a server without it answers UNIMPLEMENTED.
   */
  readonly assets: RemoteAsset;

  private constructor(
    readonly connection: Connection,
    readonly instance: string,
    readonly capabilities: ServerCapabilities,
    readonly cas: RemoteCas,
    readonly actionCache: RemoteActionCache,
    readonly execution: RemoteExecution,
    /**
     * The server executes on this machine (it said so, and is reached
     * through a unix socket, so it shares this kernel): a command may run
     * in place and its result be stored instead of executed there.
     */
    readonly executesHere: boolean,
    /**
     * The directory of the server's blob files, when it said where they are,
     * is reached through a unix socket, and that directory is visible here.
     */
    readonly localObjects: string | undefined,
    /**
     * The directory of the server's action cache entries, when it also said
     * so (its store has no quota) and both directories are this user's: a
     * client may then store blobs and results by writing those files
     * (cas/direct-store.ts) instead of calling the server.
     */
    readonly localActionCache: string | undefined,
  ) {
    this.executor = new RemoteExecutor(execution, cas, actionCache, connection.target.text);
    this.assets = new RemoteAsset(connection, instance);
  }

  /** True when the server advertises remote execution. */
  get canExecute(): boolean {
    return this.capabilities.executionCapabilities?.execEnabled === true;
  }

  /**
   * Reads the server's Capabilities and makes the endpoint; `over`, an
   * existing connection to the same target, is used instead of a new one
   * (asking again after the server came back), and is not closed on failure.
   */
  static async connect(
    opts: EndpointOptions,
    call: CallOpts = {},
    over?: Connection,
  ): Promise<RemoteEndpoint> {
    const conn = over ?? new Connection(opts);
    const instance = opts.instance ?? '';
    try {
      // Set by the response headers (a callback: a plain boolean would read as never changed).
      const said: { here: boolean; objects: string | undefined; ac: string | undefined } = {
        here: false,
        objects: undefined,
        ac: undefined,
      };
      const caps = await conn.unary(
        Capabilities.method.getCapabilities,
        { instanceName: instance },
        {
          ...call,
          onMetadata: (md) => {
            said.here = md.get(EXECUTES_HERE_HEADER)[0] === '1';
            const objects = md.get(CAS_OBJECTS_HEADER)[0];
            // Absolute, and made normal (no trailing slash, no "..": blob paths are joined as strings).
            if (typeof objects === 'string' && objects.startsWith('/'))
              said.objects = resolve(objects);
            const ac = md.get(DIRECT_STORE_HEADER)[0];
            if (typeof ac === 'string' && ac.startsWith('/')) said.ac = resolve(ac);
          },
        },
      );
      const cache = caps.cacheCapabilities;
      if (
        cache !== undefined &&
        cache.digestFunctions.length > 0 &&
        !cache.digestFunctions.includes(DigestFunction_Value.SHA256)
      ) {
        throw new SpecbuildError(
          'remote/unsupported',
          `${conn.target.text} does not support SHA-256 digests`,
          {
            hint: 'specbuild needs a server configured for SHA256',
          },
        );
      }
      const maxBatch = Number(cache?.maxBatchTotalSizeBytes ?? 0n);
      // A unix socket: the server shares this machine's kernel.
      const local = conn.target.address.startsWith('unix:');
      const objects =
        local && said.objects !== undefined && (await isDirectory(said.objects))
          ? said.objects
          : undefined;
      // Their real paths, checked once here: a link named by the server and
      // pointed elsewhere later does not move where this process writes.
      const objectsReal = objects === undefined ? undefined : await realOrUndefined(objects);
      const acReal = said.ac === undefined ? undefined : await realOrUndefined(said.ac);
      const writable =
        objectsReal !== undefined &&
        acReal !== undefined &&
        (await ownWritableDirectory(objectsReal)) &&
        (await ownWritableDirectory(join(acReal, 'entries'))) &&
        (await ownWritableDirectory(join(acReal, 'tmp')));
      return new RemoteEndpoint(
        conn,
        instance,
        caps,
        new RemoteCas(conn, instance, maxBatch),
        new RemoteActionCache(conn, instance),
        new RemoteExecution(conn, instance),
        said.here && local,
        writable ? objectsReal : objects,
        writable ? acReal : undefined,
      );
    } catch (e) {
      if (over === undefined) conn.close();
      throw e;
    }
  }

  /** The API version range the server speaks, as `major.minor`. */
  get apiVersion(): { low: string; high: string } {
    const v = (s: ServerCapabilities['lowApiVersion']): string =>
      s === undefined ? '2.0' : `${s.major}.${s.minor}`;
    return { low: v(this.capabilities.lowApiVersion), high: v(this.capabilities.highApiVersion) };
  }

  close(): void {
    this.connection.close();
  }
}

async function realOrUndefined(path: string): Promise<string | undefined> {
  return realpath(path).catch(() => undefined);
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() === true;
}

/**
 * A directory of this process's own user that it may write: files written
 * there stay this user's, as the server's own are (a server of another
 * user is called instead).
 */
async function ownWritableDirectory(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory() !== true || st.uid !== process.geteuid?.()) return false;
  return access(path, constants.W_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
}
