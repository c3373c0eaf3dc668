// The REAPI gRPC server: binds Capabilities, CAS, ByteStream, ActionCache,
// Execution and Operations, and Remote Asset's Fetch and Push, over the stores
// of each instance, on TCP or a unix socket.
import type { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import {
  ActionCache as ActionCacheDesc,
  assetPb,
  Capabilities as CapabilitiesDesc,
  ContentAddressableStorage as CasDesc,
  bytestream,
  Execution as ExecutionDesc,
  longrunning,
  serviceDefinition,
} from '../reapi/index.js';
import { actionCacheService } from './action-cache-service.js';
import { fetchService, pushService } from './asset-service.js';
import { ByteStreamService } from './bytestream-service.js';
import { capabilitiesService } from './capabilities-service.js';
import { ExecutionService } from './execution-service.js';
import { casService } from './cas-service.js';
import { maxMessageBytes, ServerContext, type InstanceStores } from './context.js';
import { bindUnixSocket, DEFAULT_SOCKET_MODE, type UnixSocket } from './unix-socket.js';

export interface ServerOptions {
  /** `HOST:PORT` (port 0 picks a free one), `[::1]:PORT`, or `unix:/path/to.sock`. */
  listen: string;
  instances: ReadonlyMap<string, InstanceStores>;
  maxBatchBytes?: number;
  /**
   * Serve TLS with this PEM certificate chain and private key; with
   * `clientCa`, require client certificates signed by one of its PEM CA
   * certificates (mutual TLS): others are refused in the handshake.
   */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Require `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Permissions of a unix socket (default 0600: its owner only). */
  socketMode?: number;
  /**
   * A serving process of several: listen on the address as given, sharing
   * the socket its primary owns (no socket file of its own to make or remove).
   */
  sharedSocket?: boolean;
}

export interface RunningServer {
  /** The address clients can use, e.g. `127.0.0.1:40123` or `unix:/tmp/s.sock`. */
  readonly address: string;
  readonly context: ServerContext;
  /** Partial ByteStream uploads held for resumption. */
  readonly partialUploads: number;
  /** Executions still running (they outlive the calls that started them). */
  readonly runningExecutions: number;
  /** Stops accepting calls, gives running ones a moment, then drops every connection. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const ctx = new ServerContext(opts.instances, opts.maxBatchBytes, opts.token);
  // Room for a batch over the limit, so that its handler can refuse it properly.
  const maxMessage = maxMessageBytes(ctx.maxBatchBytes);
  const server = new Server({
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
    // Nothing reads channelz here, and keeping it costs every call: trackers,
    // timestamps and a closure per call on the event loop.
    'grpc.enable_channelz': 0,
  });
  const bs = new ByteStreamService(ctx);
  server.addService(serviceDefinition(CapabilitiesDesc), capabilitiesService(ctx));
  server.addService(serviceDefinition(CasDesc), casService(ctx));
  server.addService(serviceDefinition(bytestream.ByteStream), bs.implementation());
  server.addService(serviceDefinition(ActionCacheDesc), actionCacheService(ctx));
  const execution = new ExecutionService(ctx);
  server.addService(serviceDefinition(ExecutionDesc), execution.implementation());
  server.addService(
    serviceDefinition(longrunning.Operations),
    execution.operationsImplementation(),
  );
  server.addService(serviceDefinition(assetPb.Fetch), fetchService(ctx));
  server.addService(serviceDefinition(assetPb.Push), pushService(ctx));

  const listen = opts.listen.startsWith('unix://') ? `unix:${opts.listen.slice(7)}` : opts.listen;
  const creds =
    opts.tls === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(
          opts.tls.clientCa ?? null,
          [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }],
          opts.tls.clientCa !== undefined,
        );
  const bind = (address: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      server.bindAsync(address, creds, (err, p) => {
        if (err === null) resolve(p);
        else {
          reject(
            new SpecbuildError('server/listen', `cannot listen on ${opts.listen}: ${err.message}`, {
              hint: 'choose another --listen address or stop the process using it',
            }),
          );
        }
      });
    });
  let port = 0;
  let socket: UnixSocket | undefined;
  try {
    if (listen.startsWith('unix:') && opts.sharedSocket !== true) {
      socket = await bindUnixSocket(
        listen.slice(5),
        opts.socketMode ?? DEFAULT_SOCKET_MODE,
        async (path) => {
          await bind(`unix:${path}`);
        },
      );
    } else {
      port = await bind(listen);
    }
  } catch (e) {
    server.forceShutdown();
    throw e;
  }
  raiseReceiveWindow(server, RECEIVE_WINDOW_BYTES);
  const address = listen.startsWith('unix:')
    ? listen
    : `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    address,
    context: ctx,
    get partialUploads() {
      return bs.partialUploads;
    },
    get runningExecutions() {
      return execution.running;
    },
    close(graceMs = 1000) {
      closed ??= (async () => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        // tryShutdown waits for idle clients to leave; make sure none holds us.
        server.forceShutdown();
        await socket?.release();
        await bs.close();
      })();
      return closed;
    },
  };
}

/** HTTP/2 flow-control window for data the server receives (ByteStream Write, batches). */
const RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;
/** Largest HTTP/2 DATA frame clients may send us (fewer, larger frames per 1 MiB message). */
const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * grpc-js (≤ 1.14) leaves the server's HTTP/2 receive window at 64 KiB and has
 * no option for it (grpc/grpc-node#3058 adds 'grpc-node.flow_control_window'
 * for servers); until then, raise it on each new session ourselves.
 */
function raiseReceiveWindow(server: Server, bytes: number): void {
  const h2 = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(h2 instanceof Map)) return; // grpc-js internals changed: keep the defaults
  for (const s of h2.keys()) {
    s.on('session', (session: Http2Session) => {
      session.settings({ initialWindowSize: bytes, maxFrameSize: MAX_FRAME_BYTES });
      session.setLocalWindowSize(bytes);
    });
  }
}
