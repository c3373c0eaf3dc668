// The AssetStore interface over a remote Remote Asset endpoint (Fetch, Push),
// with the connection's deadlines and retries. NOT_FOUND is a miss whether
// the server sends it as the call's status (as most do) or in the response's
// `status` field (as the API also allows); other non-OK statuses are errors.
import { status as Status } from '@grpc/grpc-js';
import type { AssetPush, AssetQuery, AssetStore, CallOptions, FetchedAsset } from '../cas/index.js';
import { checkAssetNames } from '../cas/index.js';
import { SpecbuildError } from '../core/index.js';
import {
  assetPb,
  DigestFunction_Value,
  fromPb,
  parseTimestamp,
  toPb,
  toTimestamp,
  type PbDigest,
  type rpc,
} from '../reapi/index.js';
import { RemoteCallError, type Connection } from './connection.js';

export class RemoteAsset implements AssetStore {
  constructor(
    private readonly conn: Connection,
    private readonly instance: string,
  ) {}

  async fetchBlob(query: AssetQuery, opts: CallOptions = {}): Promise<FetchedAsset | undefined> {
    const req = this.fetchRequest(query);
    const res = await this.found(() => this.conn.unary(assetPb.Fetch.method.fetchBlob, req, opts));
    return res && this.answer(query, res, res.blobDigest, 'blob_digest');
  }

  async fetchDirectory(
    query: AssetQuery,
    opts: CallOptions = {},
  ): Promise<FetchedAsset | undefined> {
    const req = this.fetchRequest(query);
    const res = await this.found(() =>
      this.conn.unary(assetPb.Fetch.method.fetchDirectory, req, opts),
    );
    return res && this.answer(query, res, res.rootDirectoryDigest, 'root_directory_digest');
  }

  async pushBlob(push: AssetPush, opts: CallOptions = {}): Promise<void> {
    const req = { ...this.pushRequest(push), blobDigest: toPb(push.digest) };
    await this.conn.unary(assetPb.Push.method.pushBlob, req, opts);
  }

  async pushDirectory(push: AssetPush, opts: CallOptions = {}): Promise<void> {
    const req = { ...this.pushRequest(push), rootDirectoryDigest: toPb(push.digest) };
    await this.conn.unary(assetPb.Push.method.pushDirectory, req, opts);
  }

  private fetchRequest(q: AssetQuery) {
    checkAssetNames(q.uris, q.qualifiers);
    return {
      instanceName: this.instance,
      uris: [...q.uris],
      qualifiers: [...(q.qualifiers ?? [])],
      oldestContentAccepted:
        q.oldestAcceptedMs === undefined ? undefined : toTimestamp(q.oldestAcceptedMs),
    };
  }

  private pushRequest(p: AssetPush) {
    checkAssetNames(p.uris, p.qualifiers);
    return {
      instanceName: this.instance,
      uris: [...p.uris],
      qualifiers: [...(p.qualifiers ?? [])],
      expireAt: p.expireAtMs === undefined ? undefined : toTimestamp(p.expireAtMs),
      referencesBlobs: (p.referencesBlobs ?? []).map(toPb),
      referencesDirectories: (p.referencesDirectories ?? []).map(toPb),
    };
  }

  /** The response, or undefined for NOT_FOUND in either form; other failures throw. */
  private async found<R extends { status?: rpc.Status }>(
    call: () => Promise<R>,
  ): Promise<R | undefined> {
    let res: R;
    try {
      res = await call();
    } catch (e) {
      if (e instanceof RemoteCallError && e.grpcCode === Status.NOT_FOUND) return undefined;
      throw e;
    }
    const st = res.status;
    if (st === undefined || st.code === Status.OK) return res;
    if (st.code === Status.NOT_FOUND) return undefined;
    throw new RemoteCallError(st.code, st.message, undefined, this.conn.target.text);
  }

  /** A response's answer, validated like anything else from the network. */
  private answer(
    q: AssetQuery,
    res: assetPb.FetchBlobResponse | assetPb.FetchDirectoryResponse,
    digest: PbDigest | undefined,
    field: string,
  ): FetchedAsset {
    const from = `${res.$typeName.split('.').pop() ?? ''} from ${this.conn.target.text}`;
    if (
      res.digestFunction !== DigestFunction_Value.UNKNOWN &&
      res.digestFunction !== DigestFunction_Value.SHA256
    ) {
      throw new SpecbuildError(
        'remote/unsupported',
        `${from}: digest function ${res.digestFunction} instead of SHA256`,
      );
    }
    return {
      // Only a URI we asked about is believed.
      uri: q.uris.includes(res.uri) ? res.uri : undefined,
      digest: fromPb(digest, `${from}: ${field}`),
      qualifiers: res.qualifiers.map((x) => ({ name: x.name, value: x.value })),
      expireAtMs: parseTimestamp(res.expiresAt, `${from}: expires_at`),
    };
  }
}
