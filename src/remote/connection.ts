// One gRPC channel to a REAPI endpoint, with typed calls over protobuf-es
// messages: deadlines and cancellation from AbortSignals, bearer token,
// TLS, retries, and gRPC statuses turned into specbuild errors.
import { readFileSync } from 'node:fs';
import {
  Client,
  connectivityState,
  credentials as grpcCredentials,
  Metadata,
  status as Status,
  type CallOptions as GrpcCallOptions,
  type ClientReadableStream,
  type ClientWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import { create, toBinary } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import {
  isSpecbuildError,
  SPECBUILD_VERSION,
  SpecbuildError,
  type ErrorCode,
} from '../core/index.js';
import { RequestMetadataSchema, methodDefinition } from '../reapi/index.js';
import {
  backoffMs,
  DEFAULT_RETRY,
  isRetryable,
  retryInfoDelayMs,
  sleep,
  type RetryPolicy,
} from './retry.js';
import { parseTarget, type Target } from './target.js';
import { tlsFailure, TlsError } from './tls-failure.js';

/** HTTP/2 flow-control window for data the client receives. */
export const FLOW_CONTROL_WINDOW = 16 * 1024 * 1024;

export interface ConnectionOptions {
  target: string;
  /** File holding a bearer token sent as `authorization: Bearer …`. */
  tokenFile?: string;
  /** PEM file of CA certificates for grpcs:// (default: the system's). */
  caFile?: string;
  /** PEM client certificate chain and its key, for mutual TLS (both or neither). */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Deadline of each unary call in ms (default 60 s). */
  callTimeoutMs?: number;
  retry?: RetryPolicy;
  /** Largest message received (default 64 MiB). */
  maxMessageBytes?: number;
  /**
   * A connection of its own: by default grpc-js shares one between every
   * channel of this process to the same target with the same options.
   * Several connections reach several serving processes of a server.
   */
  ownConnection?: boolean;
  /** Sent with every call as REAPI RequestMetadata (some servers require it). */
  requestMetadata?: {
    /** Default "specbuild". */
    toolName?: string;
    /** Default: a new UUID per connection. */
    toolInvocationId?: string;
    correlatedInvocationsId?: string;
  };
}

/** The header REAPI defines for RequestMetadata (binary, hence -bin). */
export const REQUEST_METADATA_HEADER = 'build.bazel.remote.execution.v2.requestmetadata-bin';

export interface CallOpts {
  signal?: AbortSignal;
  /** Overrides the connection's unary deadline. */
  timeoutMs?: number;
  /** Overrides whether this call is retried. */
  retry?: boolean;
  /** Told the response headers of a unary call (of its last attempt). */
  onMetadata?: (md: Metadata) => void;
}

/** Maps a gRPC status code to our error code. */
export function errorCodeOf(code: Status | undefined): ErrorCode {
  switch (code) {
    case Status.UNAVAILABLE:
    case Status.RESOURCE_EXHAUSTED:
    case Status.CANCELLED:
      return 'remote/unavailable';
    case Status.DEADLINE_EXCEEDED:
      return 'remote/deadline';
    case Status.UNAUTHENTICATED:
    case Status.PERMISSION_DENIED:
      return 'remote/permission';
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
      return 'remote/invalid-argument';
    case Status.NOT_FOUND:
      return 'remote/not-found';
    case Status.FAILED_PRECONDITION:
      return 'remote/failed-precondition';
    case Status.UNIMPLEMENTED:
      return 'remote/unsupported';
    default:
      return 'remote/protocol';
  }
}

export class RemoteCallError extends SpecbuildError {
  constructor(
    readonly grpcCode: Status,
    message: string,
    readonly metadata: Metadata | undefined,
    target: string,
    /** Whether trying again may help; by default decided by the code. */
    retryable = isRetryable(grpcCode),
  ) {
    super(errorCodeOf(grpcCode), `${target}: ${message}`, {
      temporary: retryable,
      hint: grpcCode === Status.UNAVAILABLE ? `is a REAPI server running at ${target}?` : undefined,
    });
  }
}

export class Connection {
  readonly target: Target;
  private readonly client: Client;
  private readonly token: string | undefined;
  private readonly caFile: string | undefined;
  private readonly requestMetadata: Buffer;
  private readonly callTimeoutMs: number;
  readonly retryPolicy: RetryPolicy;

  constructor(opts: ConnectionOptions) {
    this.target = parseTarget(opts.target);
    this.token = opts.tokenFile === undefined ? undefined : readToken(opts.tokenFile);
    this.caFile = opts.caFile;
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
    this.retryPolicy = opts.retry ?? DEFAULT_RETRY;
    const rm = opts.requestMetadata;
    this.requestMetadata = Buffer.from(
      toBinary(
        RequestMetadataSchema,
        create(RequestMetadataSchema, {
          toolDetails: { toolName: rm?.toolName ?? 'specbuild', toolVersion: SPECBUILD_VERSION },
          toolInvocationId: rm?.toolInvocationId ?? randomUUID(),
          correlatedInvocationsId: rm?.correlatedInvocationsId ?? '',
        }),
      ),
    );
    const creds = this.target.tls
      ? grpcCredentials.createSsl(
          opts.caFile === undefined ? null : readFileSync(opts.caFile),
          opts.clientKeyFile === undefined ? null : readFileSync(opts.clientKeyFile),
          opts.clientCertFile === undefined ? null : readFileSync(opts.clientCertFile),
        )
      : grpcCredentials.createInsecure();
    const max = opts.maxMessageBytes ?? 64 * 1024 * 1024;
    this.client = new Client(this.target.address, creds, {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      'grpc.enable_retries': 0,
      // A connection that goes silent (a dropped network) is found within
      // ~50 s, so that streams without a deadline do not wait forever.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 20_000,
      // HTTP/2 receive window (per stream and connection). The 64 KiB default
      // caps ByteStream reads and large batch replies on loopback.
      'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW,
      ...(opts.ownConnection === true ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
    });
  }

  close(): void {
    this.client.close();
  }

  /**
   * Calls `dropped` once, when the channel is no longer READY: the server
   * went away (stopped, restarted, a GOAWAY), the connection broke, or it
   * went idle. What its Capabilities said may no longer hold (a server
   * restarted at the same address with a quota, or another cache
   * directory). For a channel that has been ready (a call succeeded on it):
   * one that is not ready any more when this is called is called at once.
   * Nothing is called for a channel closed here.
   */
  onceDropped(dropped: () => void): void {
    const channel = this.client.getChannel();
    let wasReady = true;
    const watch = (): void => {
      const state = channel.getConnectivityState(false);
      if (state === connectivityState.SHUTDOWN) return;
      if (state === connectivityState.READY) wasReady = true;
      else if (wasReady) {
        dropped();
        return;
      }
      // No deadline: a watcher holds no timer, so it keeps no process alive.
      channel.watchConnectivityState(state, Infinity, (e) => {
        if (e === undefined) watch();
      });
    };
    watch();
  }

  private metadata(): Metadata {
    const md = new Metadata();
    md.set(REQUEST_METADATA_HEADER, this.requestMetadata);
    if (this.token !== undefined) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  /** Our error for a failed call; a refused TLS handshake is a TlsError, never retried. */
  private error(e: ServiceError): RemoteCallError | TlsError {
    const details = e.details || e.message;
    const tls = this.target.tls && e.code === Status.UNAVAILABLE ? tlsFailure(details) : undefined;
    if (tls !== undefined) return new TlsError(tls, this.target.text, this.caFile);
    return new RemoteCallError(e.code, details, e.metadata, this.target.text);
  }

  /** A grpc-js completion callback that settles a promise, turning errors into ours. */
  private settle<T>(
    resolve: (v: T) => void,
    reject: (e: Error) => void,
    before: () => void,
  ): (err: ServiceError | null, res?: T) => void {
    return (err, res) => {
      before();
      if (err !== null) reject(this.error(err));
      else if (res === undefined) reject(new SpecbuildError('remote/protocol', 'empty response'));
      else resolve(res);
    };
  }

  /**
   * Waits before retry number `attempt` after `e`: exponential backoff, or
   * the delay the server asked for in RetryInfo. Every retry loop uses it.
   */
  backoff(attempt: number, e: unknown, signal?: AbortSignal): Promise<void> {
    const asked = e instanceof RemoteCallError ? retryInfoDelayMs(e.metadata) : undefined;
    return sleep(backoffMs(this.retryPolicy, Math.max(1, attempt), asked), signal);
  }

  /**
   * In a retry loop's catch: throws `e` unless it is temporary, attempts are
   * left and the call was not cancelled; otherwise waits before the next try.
   */
  async retryOrThrow(e: unknown, attempt: number, signal?: AbortSignal): Promise<void> {
    const temporary = isSpecbuildError(e) && e.temporary;
    if (!temporary || attempt >= this.retryPolicy.attempts || signal?.aborted === true) throw e;
    await this.backoff(attempt, e, signal);
  }

  /** Runs `attempt` with retries on temporary failures. */
  async withRetry<T>(opts: CallOpts, attempt: () => Promise<T>): Promise<T> {
    const policy = this.retryPolicy;
    const attempts = opts.retry === false ? 1 : policy.attempts;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof RemoteCallError) || !isRetryable(e.grpcCode) || n >= attempts) throw e;
        if (opts.signal?.aborted === true) throw e;
        await this.backoff(n, e, opts.signal);
      }
    }
  }

  private callOptions(opts: CallOpts, unary: boolean): GrpcCallOptions {
    const timeout = opts.timeoutMs ?? (unary ? this.callTimeoutMs : undefined);
    return timeout === undefined ? {} : { deadline: Date.now() + timeout };
  }

  private cancelOnAbort(opts: CallOpts, call: { cancel(): void }): () => void {
    const signal = opts.signal;
    if (signal === undefined) return () => undefined;
    const onAbort = (): void => {
      call.cancel();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return () => {
      signal.removeEventListener('abort', onAbort);
    };
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    req: MessageInitShape<I>,
    opts: CallOpts = {},
  ): Promise<MessageShape<O>> {
    const def = methodDefinition(method);
    const msg = create(method.input, req);
    return this.withRetry(opts, () => {
      opts.signal?.throwIfAborted();
      return new Promise<MessageShape<O>>((resolve, reject) => {
        const call = this.client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize as (b: Buffer) => MessageShape<O>,
          msg,
          this.metadata(),
          this.callOptions(opts, true),
          this.settle(resolve, reject, () => {
            detach();
          }),
        );
        const onMetadata = opts.onMetadata;
        if (onMetadata !== undefined) call.on('metadata', onMetadata);
        const detach = this.cancelOnAbort(opts, call);
      });
    });
  }

  /** A server-streaming call as an async iterable (no automatic retry: callers resume). */
  async *serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    req: MessageInitShape<I>,
    opts: CallOpts = {},
  ): AsyncIterable<MessageShape<O>> {
    const def = methodDefinition(method);
    opts.signal?.throwIfAborted();
    const call: ClientReadableStream<MessageShape<O>> = this.client.makeServerStreamRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize as (b: Buffer) => MessageShape<O>,
      create(method.input, req),
      this.metadata(),
      this.callOptions(opts, false),
    );
    const detach = this.cancelOnAbort(opts, call);
    let finished = false;
    try {
      for await (const msg of call) yield msg as MessageShape<O>;
      finished = true;
    } catch (e) {
      finished = true;
      if (isServiceError(e)) throw this.error(e);
      throw e;
    } finally {
      detach();
      // Cancel only a stream the caller left early: resetting a finished one
      // counts as an invalid frame, and servers close the connection after many.
      if (!finished) call.cancel();
    }
  }

  /** A client-streaming call: sends every message of `requests` with backpressure. */
  async clientStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    requests: AsyncIterable<MessageInitShape<I>>,
    opts: CallOpts = {},
  ): Promise<MessageShape<O>> {
    const def = methodDefinition(method);
    opts.signal?.throwIfAborted();
    let call: ClientWritableStream<MessageShape<I>> | undefined;
    let detach = (): void => undefined;
    const response = new Promise<MessageShape<O>>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize as (b: Buffer) => MessageShape<O>,
        this.metadata(),
        this.callOptions(opts, false),
        this.settle(resolve, reject, () => {
          detach();
        }),
      );
    });
    if (call === undefined) throw new Error('bug: no call');
    const c = call;
    detach = this.cancelOnAbort(opts, c);
    const state = { finished: false };
    void response
      .catch(() => undefined)
      .finally(() => {
        state.finished = true;
      });
    try {
      for await (const req of requests) {
        if (state.finished) break; // the server answered early (e.g. blob already present)
        if (!c.write(create(method.input, req))) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              c.off('drain', done);
              c.off('close', done);
              c.off('error', done);
              resolve();
            };
            c.on('drain', done);
            c.on('close', done);
            c.on('error', done);
          });
        }
      }
    } catch (e) {
      c.cancel();
      await response.catch(() => undefined);
      throw e;
    }
    c.end();
    return response;
  }
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && 'code' in e && typeof e.code === 'number' && 'metadata' in e;
}

function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new SpecbuildError('remote/token-file', `cannot read token file ${file}: ${String(e)}`, {
      hint: 'pass --token-file a readable file that holds the bearer token',
    });
  }
  if (text === '' || /\s/.test(text)) {
    throw new SpecbuildError(
      'remote/token-file',
      `token file ${file} must hold one token without spaces`,
    );
  }
  return text;
}
