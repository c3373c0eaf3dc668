// The RemoteAsset client against a staged Fetch server: answers our own server
// never gives (NOT_FOUND and other errors inline in the response's status, a
// bad digest, a URI nobody asked about) and a transient UNAVAILABLE retried.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, status as Status, type ServiceError } from '@grpc/grpc-js';
import {
  assetPb,
  digestOf,
  DigestFunction_Value,
  serviceDefinition,
  toPb,
  toTimestamp,
} from '../../src/reapi/index.js';
import { Connection, RemoteAsset, RemoteCallError } from '../../src/remote/index.js';

type Answer = Partial<ServiceError> | assetPb.FetchBlobResponse;

/** A Fetch server that gives each call the next of `answers` and records the requests. */
async function stagedServer(answers: Answer[]) {
  const server = new Server();
  const requests: assetPb.FetchBlobRequest[] = [];
  server.addService(serviceDefinition(assetPb.Fetch), {
    fetchBlob: (
      call: { request: assetPb.FetchBlobRequest },
      cb: (e: Partial<ServiceError> | null, r?: unknown) => void,
    ) => {
      requests.push(call.request);
      const a = answers[requests.length - 1];
      if (a === undefined || '$typeName' in a) cb(null, a);
      else cb(a);
    },
  });
  const port = await new Promise<number>((res, rej) => {
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => {
      if (e) rej(e);
      else res(p);
    });
  });
  const conn = new Connection({
    target: `127.0.0.1:${port}`,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
  return {
    client: new RemoteAsset(conn, 'inst'),
    requests,
    [Symbol.asyncDispose]: () => {
      conn.close();
      server.forceShutdown();
      return Promise.resolve();
    },
  };
}

const blob = digestOf(Buffer.from('x'));
const ok = (init: Parameters<typeof create<typeof assetPb.FetchBlobResponseSchema>>[1]) =>
  create(assetPb.FetchBlobResponseSchema, { blobDigest: toPb(blob), ...init });

describe('RemoteAsset client', () => {
  it('sends the query as the protocol says and validates the answer', async () => {
    await using s = await stagedServer([
      ok({
        uri: 'urn:b',
        qualifiers: [{ name: 'k', value: 'v' }],
        expiresAt: toTimestamp(1_700_000_000_123),
      }),
      ok({ uri: 'urn:somewhere-else' }),
    ]);
    const query = {
      uris: ['urn:a', 'urn:b'],
      qualifiers: [{ name: 'k', value: 'v' }],
      oldestAcceptedMs: 1_600_000_000_500,
    };
    assert.deepEqual(await s.client.fetchBlob(query), {
      uri: 'urn:b',
      digest: blob,
      qualifiers: [{ name: 'k', value: 'v' }],
      expireAtMs: 1_700_000_000_123,
    });
    const [req] = s.requests;
    assert.equal(req?.instanceName, 'inst');
    assert.deepEqual(req.uris, ['urn:a', 'urn:b']);
    assert.deepEqual(
      req.qualifiers.map((q) => [q.name, q.value]),
      [['k', 'v']],
    );
    assert.deepEqual(req.oldestContentAccepted, toTimestamp(1_600_000_000_500));
    // A URI we did not ask about is not believed.
    assert.equal((await s.client.fetchBlob({ uris: ['urn:a'] }))?.uri, undefined);
  });

  it('takes NOT_FOUND in the response status, or as the call status, as a miss', async () => {
    await using s = await stagedServer([
      create(assetPb.FetchBlobResponseSchema, { status: { code: Status.NOT_FOUND } }),
      { code: Status.NOT_FOUND, details: 'no such asset' },
    ]);
    assert.equal(await s.client.fetchBlob({ uris: ['urn:a'] }), undefined);
    assert.equal(await s.client.fetchBlob({ uris: ['urn:a'] }), undefined);
  });

  it('fails on other inline statuses, a foreign digest function or a malformed digest', async () => {
    await using s = await stagedServer([
      create(assetPb.FetchBlobResponseSchema, {
        status: { code: Status.PERMISSION_DENIED, message: 'origin refused' },
      }),
      ok({ digestFunction: DigestFunction_Value.SHA1 }),
      create(assetPb.FetchBlobResponseSchema, { blobDigest: { hash: 'zz', sizeBytes: 1n } }),
    ]);
    await assert.rejects(
      s.client.fetchBlob({ uris: ['urn:a'] }),
      (e: unknown) =>
        e instanceof RemoteCallError &&
        e.grpcCode === Status.PERMISSION_DENIED &&
        e.code === 'remote/permission' &&
        e.message.endsWith('origin refused'),
    );
    await assert.rejects(s.client.fetchBlob({ uris: ['urn:a'] }), { code: 'remote/unsupported' });
    await assert.rejects(s.client.fetchBlob({ uris: ['urn:a'] }), {
      code: 'reapi/invalid-digest',
    });
  });

  it('retries UNAVAILABLE with the connection policy', async () => {
    await using s = await stagedServer([
      { code: Status.UNAVAILABLE, details: 'restarting' },
      { code: Status.UNAVAILABLE, details: 'restarting' },
      ok({ uri: 'urn:a' }),
    ]);
    assert.deepEqual((await s.client.fetchBlob({ uris: ['urn:a'] }))?.digest, blob);
    assert.equal(s.requests.length, 3);
  });

  it('checks names before sending anything', async () => {
    await using s = await stagedServer([]);
    await assert.rejects(s.client.fetchBlob({ uris: [] }), { code: 'reapi/invalid-message' });
    await assert.rejects(
      s.client.pushBlob({
        uris: ['u'],
        qualifiers: [
          { name: 'a', value: '1' },
          { name: 'a', value: '2' },
        ],
        digest: blob,
      }),
      { code: 'reapi/invalid-message' },
    );
    assert.equal(s.requests.length, 0);
  });
});
