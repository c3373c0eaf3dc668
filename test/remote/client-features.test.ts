// The remote client's own promises: target parsing, retries with backoff that
// honour RetryInfo, deadlines and cancellation, bearer tokens and TLS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { anyPack, DurationSchema } from '@bufbuild/protobuf/wkt';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as Status,
  type ServerWritableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  Capabilities,
  CacheCapabilitiesSchema,
  DigestFunction_Value,
  Execution,
  digestOf,
  longrunning,
  ServerCapabilitiesSchema,
  rpc,
  rpcDetails,
  serviceDefinition,
} from '../../src/reapi/index.js';
import {
  backoffMs,
  Connection,
  parseTarget,
  RemoteCallError,
  RemoteEndpoint,
  RemoteExecution,
} from '../../src/remote/index.js';
import { startFixture } from '../helpers/server-fixture.js';
import { tempDir } from '../helpers/tmp.js';

/** A Capabilities server that fails its first `failures` calls (a fault a real server cannot be made to produce). */
async function flakyServer(
  failures: number,
  opts: {
    retryDelayMs?: number;
    code?: Status;
    hang?: boolean;
    /** The code of the error Execute's operation finishes with (default UNAVAILABLE). */
    operationCode?: Status;
    /**
     * Execute's stream breaks after naming its operation; WaitExecution then
     * does not know it ('unknown'), or answers it finished with an error.
     */
    lose?: 'unknown' | 'finished';
  } = {},
) {
  const server = new Server();
  const calls: { at: number; metadata: Metadata }[] = [];
  server.addService(serviceDefinition(Capabilities), {
    getCapabilities: (
      call: { metadata: Metadata },
      cb: (e: Partial<ServiceError> | null, r?: unknown) => void,
    ) => {
      calls.push({ at: Date.now(), metadata: call.metadata });
      if (opts.hang === true) return;
      if (calls.length <= failures) {
        const md = new Metadata();
        if (opts.retryDelayMs !== undefined) {
          const info = create(rpcDetails.RetryInfoSchema, {
            retryDelay: create(DurationSchema, { seconds: 0n, nanos: opts.retryDelayMs * 1e6 }),
          });
          const st = create(rpc.StatusSchema, {
            code: Status.UNAVAILABLE,
            message: 'busy',
            details: [anyPack(rpcDetails.RetryInfoSchema, info)],
          });
          md.set('grpc-status-details-bin', Buffer.from(toBinary(rpc.StatusSchema, st)));
        }
        cb({ code: opts.code ?? Status.UNAVAILABLE, details: 'try later', metadata: md });
        return;
      }
      cb(
        null,
        create(ServerCapabilitiesSchema, {
          cacheCapabilities: create(CacheCapabilitiesSchema, {
            digestFunctions: [DigestFunction_Value.SHA256],
          }),
        }),
      );
    },
  });
  // Execute answers with an operation that finished with an error (a fault
  // our own server never produces, so it is staged here).
  const executes: number[] = [];
  const writeFailed = (call: { write(op: unknown): void; end(): void }) => {
    call.write(
      create(longrunning.OperationSchema, {
        name: 'op-1',
        done: true,
        result: {
          case: 'error',
          value: create(rpc.StatusSchema, {
            code: opts.operationCode ?? Status.UNAVAILABLE,
            message: 'worker lost',
          }),
        },
      }),
    );
    call.end();
  };
  const failedOperation = (call: { write(op: unknown): void; end(): void }) => {
    executes.push(Date.now());
    writeFailed(call);
  };
  const waits: number[] = [];
  // An operation the server forgets: its stream breaks, and WaitExecution
  // does not know its name (a restarted server, or another of its processes).
  const lostOperation = (call: ServerWritableStream<unknown, unknown>) => {
    executes.push(Date.now());
    call.write(create(longrunning.OperationSchema, { name: `op-${String(executes.length)}` }));
    setTimeout(() => {
      call.emit('error', { code: Status.UNAVAILABLE, details: 'connection reset' });
    }, 5);
  };
  const unknownOperation = (call: ServerWritableStream<{ name: string }, unknown>) => {
    waits.push(Date.now());
    call.emit('error', {
      code: Status.NOT_FOUND,
      details: `no operation named ${call.request.name}`,
    });
  };
  server.addService(serviceDefinition(Execution), {
    execute: opts.lose === undefined ? failedOperation : lostOperation,
    waitExecution:
      opts.lose === 'unknown'
        ? unknownOperation
        : (call: ServerWritableStream<unknown, unknown>) => {
            waits.push(Date.now());
            writeFailed(call);
          },
  });
  const port = await new Promise<number>((res, rej) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => {
      if (e) rej(e);
      else res(p);
    });
  });
  return {
    target: `127.0.0.1:${port}`,
    calls,
    executes,
    waits,
    [Symbol.asyncDispose]: () => {
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}

describe('remote client', () => {
  it('parses targets', () => {
    assert.deepEqual(parseTarget('127.0.0.1:50051'), {
      address: '127.0.0.1:50051',
      tls: false,
      text: '127.0.0.1:50051',
    });
    assert.equal(parseTarget('grpc://build.example:8980').address, 'build.example:8980');
    assert.equal(parseTarget('grpcs://build.example:443').tls, true);
    assert.equal(parseTarget('unix:/run/s.sock').address, 'unix:/run/s.sock');
    assert.equal(parseTarget('unix:///run/s.sock').address, 'unix:/run/s.sock');
    assert.equal(parseTarget('[::1]:9000').address, '[::1]:9000');
    for (const bad of [
      'localhost',
      'ftp://x:1',
      'host:0',
      'host:99999',
      'unix:relative.sock',
      'a b:1',
    ]) {
      assert.throws(() => parseTarget(bad), { code: 'remote/invalid-target' }, bad);
    }
  });

  it("retries UNAVAILABLE and honours the server's RetryInfo delay", async () => {
    await using s = await flakyServer(2, { retryDelayMs: 300 });
    const ep = await RemoteEndpoint.connect({
      target: s.target,
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 1000 },
    });
    ep.close();
    assert.equal(s.calls.length, 3);
    const [a, b, c] = s.calls.map((x) => x.at);
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    assert.ok(b - a >= 250, `waited ${b - a} ms, asked 300`);
    assert.ok(c - b >= 250, `waited ${c - b} ms, asked 300`);
  });

  it('retries RESOURCE_EXHAUSTED with exponential backoff, then gives up', async () => {
    await using s = await flakyServer(100, { code: Status.RESOURCE_EXHAUSTED });
    await assert.rejects(
      RemoteEndpoint.connect({
        target: s.target,
        retry: { attempts: 4, baseDelayMs: 50, maxDelayMs: 1000 },
      }),
      { code: 'remote/unavailable', temporary: true },
    );
    assert.equal(s.calls.length, 4);
    // Timers never fire early, so lower bounds hold under any load: 50, 100, 200 ms less 20 % jitter.
    const gaps = s.calls.slice(1).map((c, i) => c.at - (s.calls[i]?.at ?? 0));
    [40, 80, 160].forEach((min, i) => {
      assert.ok((gaps[i] ?? 0) >= min - 5, `backoff ${String(i)}: ${gaps.join(', ')} ms`);
    });
  });

  it('computes exponential backoff within its jitter, capped, and defers to the server', () => {
    const policy = { attempts: 9, baseDelayMs: 100, maxDelayMs: 1000 };
    for (let i = 0; i < 200; i++) {
      for (const [attempt, base] of [
        [1, 100],
        [2, 200],
        [4, 800],
        [6, 1000],
      ] as const) {
        const ms = backoffMs(policy, attempt);
        assert.ok(
          ms >= base * 0.8 && ms <= base * 1.2,
          `attempt ${String(attempt)}: ${String(ms)}`,
        );
      }
    }
    assert.equal(backoffMs(policy, 1, 2500), 2500);
    assert.equal(backoffMs(policy, 1, 60_000), 6000, 'a server delay is capped too');
  });

  it("takes a finished operation's error as final: no retry, no wait loop", async () => {
    await using s = await flakyServer(0);
    const conn = new Connection({
      target: s.target,
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 5 },
    });
    try {
      const exec = new RemoteExecution(conn, '');
      await assert.rejects(exec.execute(digestOf(Buffer.from('action'))), {
        code: 'remote/unavailable',
        temporary: false,
      });
      assert.equal(s.executes.length, 1);
    } finally {
      conn.close();
    }
  });

  /** Executes an action against the staged server; how many Executes and WaitExecutions it saw. */
  async function executeLost(lose: 'unknown' | 'finished'): Promise<[number, number]> {
    await using s = await flakyServer(0, { operationCode: Status.NOT_FOUND, lose });
    const conn = new Connection({
      target: s.target,
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 5 },
    });
    try {
      await assert.rejects(new RemoteExecution(conn, '').execute(digestOf(Buffer.from('a'))), {
        code: 'remote/not-found',
      });
      return [s.executes.length, s.waits.length];
    } finally {
      conn.close();
    }
  }

  it("takes a finished operation's NOT_FOUND as final too: it does not execute again", async () => {
    // Execute, its stream broken; WaitExecution: the operation ended NOT_FOUND.
    assert.deepEqual(await executeLost('finished'), [1, 1]);
  });

  it('executes again when WaitExecution finds the operation gone, 3 times at most', async () => {
    // The first Execute and 3 more, each followed by a WaitExecution that fails.
    assert.deepEqual(await executeLost('unknown'), [4, 4]);
  });

  it('does not retry errors that retrying cannot fix', async () => {
    await using s = await flakyServer(1, { code: Status.INVALID_ARGUMENT });
    await assert.rejects(RemoteEndpoint.connect({ target: s.target }), {
      code: 'remote/invalid-argument',
    });
    assert.equal(s.calls.length, 1);
  });

  it('fails with remote/unavailable when nothing listens', async () => {
    await using dir = await tempDir();
    await assert.rejects(
      RemoteEndpoint.connect({
        target: `unix:${join(dir.path, 'none.sock')}`,
        retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 },
      }),
      { code: 'remote/unavailable' },
    );
  });

  it('enforces per-call deadlines and cancels on AbortSignal', async () => {
    await using s = await flakyServer(0, { hang: true });
    const conn = new Connection({ target: s.target });
    try {
      await assert.rejects(
        conn.unary(Capabilities.method.getCapabilities, {}, { timeoutMs: 200 }),
        { code: 'remote/deadline' },
      );
      const ac = new AbortController();
      setTimeout(() => {
        ac.abort();
      }, 100);
      // Cancelled, not timed out: the error is the cancellation, well before the deadline.
      const err = await conn
        .unary(Capabilities.method.getCapabilities, {}, { signal: ac.signal, timeoutMs: 30_000 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof RemoteCallError, String(err));
      assert.equal(err.grpcCode, Status.CANCELLED);
    } finally {
      conn.close();
    }
  });

  it('stops a ByteStream read when its signal aborts, leaving no call on the server', async () => {
    await using f = await startFixture('tcp');
    const data = randomBytes(8 * 1024 * 1024);
    const [d] = await f.endpoint.cas.writeBlobs([data]);
    assert.ok(d);
    const ac = new AbortController();
    let got = 0;
    await assert.rejects(async () => {
      for await (const chunk of f.endpoint.cas.readStream(d, {}, { signal: ac.signal })) {
        got += chunk.byteLength;
        ac.abort();
      }
    });
    assert.ok(got > 0 && got < data.byteLength);
  });

  it('sends a bearer token from --token-file, and the server requires it', async () => {
    await using dir = await tempDir();
    const tokenFile = join(dir.path, 'token');
    writeFileSync(tokenFile, 's3cret-token\n');
    await using f = await startFixture('tcp', { token: 's3cret-token', client: { tokenFile } });
    const d = await f.endpoint.cas.writeBlob(Buffer.from('authorised'));
    assert.equal(f.cas.has(d), true);
    await assert.rejects(f.connect({ tokenFile: undefined }), { code: 'remote/permission' });
    writeFileSync(tokenFile, 'wrong');
    await assert.rejects(f.connect({ tokenFile }), { code: 'remote/permission' });
    writeFileSync(tokenFile, '');
    await assert.rejects(f.connect({ tokenFile }), { code: 'remote/token-file' });
  });

  it('talks TLS to grpcs:// targets, verifying the server certificate', async () => {
    await using dir = await tempDir();
    const key = join(dir.path, 'key.pem');
    const cert = join(dir.path, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const tls = { cert: readFileSync(cert), key: readFileSync(key) };
    await using f = await startFixture('tcp', { tls, client: { caFile: cert } });
    const d = await f.endpoint.cas.writeBlob(Buffer.from('over TLS'));
    assert.equal(f.cas.has(d), true);
    assert.ok(f.endpoint.connection.target.tls);
    const fast = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
    // Without our CA the certificate is not trusted: a TLS error at once, not
    // retried; plain TCP is refused by a TLS server.
    const port = f.server.address.split(':').pop() ?? '';
    await assert.rejects(f.connect({ callTimeoutMs: 3000 }), {
      code: 'remote/tls',
      message: `grpcs://localhost:${port}: TLS handshake failed: the server's certificate is not trusted (self-signed certificate)`,
      hint: "the system's CA certificates do not vouch for it: give the PEM certificate of the CA that signed it",
    });
    await assert.rejects(
      f.connect({ target: f.server.address, retry: fast, callTimeoutMs: 3000 }),
      (e: { code?: string }) => ['remote/unavailable', 'remote/deadline'].includes(e.code ?? ''),
    );
  });
});
