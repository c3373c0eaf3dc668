// What every service handler shares: the stores of each instance name, the
// advertised limits, and wrappers that turn thrown errors into gRPC statuses
// and count calls in flight (so tests can prove nothing leaked).
import { timingSafeEqual } from 'node:crypto';
import type {
  Metadata,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
} from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import type { ActionCache, AssetStore, Executor, UploadableCas } from '../cas/index.js';
import { DigestFunction_Value } from '../reapi/index.js';
import { toGrpcError } from './status.js';

export interface InstanceStores {
  cas: UploadableCas;
  ac: ActionCache;
  /** Present when this instance executes actions. */
  executor?: Executor;
  /** Present when this instance serves the Remote Asset API (Fetch, Push). */
  assets?: AssetStore;
  /** The highest REAPI version to advertise (`major.minor`), below this server's own (a forwarding session). */
  apiHigh?: string;
}

/** Largest total of blob bytes in one batch call (advertised in Capabilities). */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Room above the batch limit for the messages' own overhead (gRPC message limit). */
export const MESSAGE_OVERHEAD_BYTES = 1024 * 1024;

/**
 * The gRPC message limit for a batch limit. A batch over the advertised limit
 * must reach its handler, which refuses it with INVALID_ARGUMENT as REAPI
 * says; refused by the transport it would be RESOURCE_EXHAUSTED, which
 * clients retry (some forever). So the transport takes up to twice the limit
 * (plus overhead) and only refuses messages past that.
 */
export function maxMessageBytes(maxBatchBytes: number): number {
  return 2 * maxBatchBytes + MESSAGE_OVERHEAD_BYTES;
}
/** Size of the data in each ByteStream ReadResponse. */
export const READ_CHUNK_BYTES = 1024 * 1024;

export class ServerContext {
  activeCalls = 0;

  constructor(
    readonly instances: ReadonlyMap<string, InstanceStores>,
    readonly maxBatchBytes = DEFAULT_MAX_BATCH_BYTES,
    /** When set, every call must carry `authorization: Bearer <token>`. */
    private readonly token?: string,
  ) {}

  private authorize(metadata: Metadata): void {
    if (this.token === undefined) return;
    const got = metadata.get('authorization')[0];
    if (typeof got !== 'string' || !safeEqual(got, `Bearer ${this.token}`)) {
      throw new SpecbuildError('server/unauthenticated', 'missing or wrong bearer token', {
        hint: "pass the server's token with --token-file",
      });
    }
  }

  instance(name: string): InstanceStores {
    const stores = this.instances.get(name);
    if (stores === undefined) {
      const known = [...this.instances.keys()].map((n) => `"${n}"`).join(', ');
      throw new SpecbuildError(
        'server/unknown-instance',
        `unknown instance name "${name.slice(0, 200)}"`,
        {
          hint: `this server serves ${known}`,
        },
      );
    }
    return stores;
  }

  /** Rejects requests for digest functions other than SHA-256. */
  checkDigestFunction(value: DigestFunction_Value): void {
    if (value !== DigestFunction_Value.UNKNOWN && value !== DigestFunction_Value.SHA256) {
      throw new SpecbuildError(
        'reapi/invalid-digest',
        `digest function ${String(value)} is not supported`,
        { hint: 'this server supports SHA256 only' },
      );
    }
  }

  /**
   * Runs a handler: checks the caller's token, counts the call while it runs,
   * and reports a result or error exactly once. The handler runs inside a
   * promise so that a synchronous throw is reported, not lost.
   */
  private run<T>(
    metadata: Metadata,
    fn: () => Promise<T>,
    done: (e: unknown, res?: T) => void,
  ): void {
    this.activeCalls++;
    Promise.resolve()
      .then(() => {
        this.authorize(metadata);
        return fn();
      })
      .then(
        (res) => {
          this.activeCalls--;
          done(undefined, res);
        },
        (e: unknown) => {
          this.activeCalls--;
          done(e ?? new Error('handler failed'));
        },
      );
  }

  unary<Req, Res>(
    fn: (req: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  ): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      this.run(
        call.metadata,
        () => fn(call.request, call),
        (e, res) => {
          if (e === undefined) callback(null, res);
          else callback(toGrpcError(e));
        },
      );
    };
  }

  serverStream<Req, Res>(
    fn: (req: Req, call: ServerWritableStream<Req, Res>) => Promise<void>,
  ): handleServerStreamingCall<Req, Res> {
    return (call) => {
      this.run(
        call.metadata,
        () => fn(call.request, call),
        (e) => {
          if (e === undefined) call.end();
          else call.emit('error', toGrpcError(e));
        },
      );
    };
  }

  clientStream<Req, Res>(
    fn: (call: ServerReadableStream<Req, Res>) => Promise<Res>,
  ): handleClientStreamingCall<Req, Res> {
    return (call, callback) => {
      this.run(
        call.metadata,
        () => fn(call),
        (e, res) => {
          if (e === undefined) callback(null, res);
          else callback(toGrpcError(e));
        },
      );
    };
  }
}

/** Writes one message on a server stream, waiting for the stream to drain if needed. */
export async function writeMessage<T>(
  call: ServerWritableStream<unknown, T>,
  msg: T,
): Promise<void> {
  if (call.write(msg)) return;
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      call.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      call.off('drain', onDrain);
      reject(new SpecbuildError('server/client-gone', 'client went away'));
    };
    call.once('drain', onDrain);
    call.once('close', onClose);
  });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
