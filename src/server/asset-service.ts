// Remote Asset services, Fetch and Push, over each instance's AssetStore.
// A pure push/fetch cache: nothing is fetched from origin, so a name nobody
// pushed (or whose content has left the CAS) is NOT_FOUND, as a gRPC error
// (what BuildStream's and Bazel's clients test for). Qualifiers of any name
// are accepted and matched exactly.
import { create } from '@bufbuild/protobuf';
import { status as Status, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import {
  checkAssetNames,
  type AssetKind,
  type AssetPush,
  type AssetQuery,
  type AssetStore,
  type FetchedAsset,
} from '../cas/index.js';
import {
  assetPb,
  DigestFunction_Value,
  fromPb,
  parseTimestamp,
  toPb,
  toTimestamp,
  type PbDigest,
} from '../reapi/index.js';
import type { ServerContext } from './context.js';
import { rpcStatus } from './status.js';

export function fetchService(ctx: ServerContext): UntypedServiceImplementation {
  return {
    fetchBlob: ctx.unary(async (req: assetPb.FetchBlobRequest) => {
      const assets = assetsOf(ctx, req);
      const query = parseQuery(req);
      const found = await assets.fetchBlob(query);
      if (found === undefined) throw notFound('blob', query);
      return create(assetPb.FetchBlobResponseSchema, {
        ...answer(found),
        blobDigest: toPb(found.digest),
      });
    }),

    fetchDirectory: ctx.unary(async (req: assetPb.FetchDirectoryRequest) => {
      const assets = assetsOf(ctx, req);
      const query = parseQuery(req);
      const found = await assets.fetchDirectory(query);
      if (found === undefined) throw notFound('directory', query);
      return create(assetPb.FetchDirectoryResponseSchema, {
        ...answer(found),
        rootDirectoryDigest: toPb(found.digest),
      });
    }),
  };
}

export function pushService(ctx: ServerContext): UntypedServiceImplementation {
  return {
    pushBlob: ctx.unary(async (req: assetPb.PushBlobRequest) => {
      const assets = assetsOf(ctx, req);
      await assets.pushBlob(parsePush(req, fromPb(req.blobDigest, 'blob_digest')));
      return create(assetPb.PushBlobResponseSchema);
    }),

    pushDirectory: ctx.unary(async (req: assetPb.PushDirectoryRequest) => {
      const assets = assetsOf(ctx, req);
      const root = fromPb(req.rootDirectoryDigest, 'root_directory_digest');
      await assets.pushDirectory(parsePush(req, root));
      return create(assetPb.PushDirectoryResponseSchema);
    }),
  };
}

/** The instance's asset store, after the checks every REAPI service makes. */
function assetsOf(
  ctx: ServerContext,
  req: { instanceName: string; digestFunction: DigestFunction_Value },
): AssetStore {
  ctx.checkDigestFunction(req.digestFunction);
  const { assets } = ctx.instance(req.instanceName);
  if (assets === undefined) {
    throw new SpecbuildError(
      'server/no-assets',
      `instance "${req.instanceName.slice(0, 200)}" does not serve the Remote Asset API`,
    );
  }
  return assets;
}

/** The names of a request, validated: non-empty URIs, unique qualifier names. */
function parseNames(req: {
  uris: string[];
  qualifiers: assetPb.Qualifier[];
}): Pick<AssetQuery, 'uris' | 'qualifiers'> {
  const qualifiers = req.qualifiers.map((q) => ({ name: q.name, value: q.value }));
  checkAssetNames(req.uris, qualifiers);
  return { uris: req.uris, qualifiers };
}

function parseQuery(req: assetPb.FetchBlobRequest | assetPb.FetchDirectoryRequest): AssetQuery {
  // `timeout` bounds fetches from origin, which this server never makes.
  return {
    ...parseNames(req),
    oldestAcceptedMs: parseTimestamp(req.oldestContentAccepted, 'oldest_content_accepted'),
  };
}

function parsePush(
  req: assetPb.PushBlobRequest | assetPb.PushDirectoryRequest,
  digest: AssetPush['digest'],
): AssetPush {
  const digests = (list: PbDigest[], field: string) =>
    list.map((d, i) => fromPb(d, `${field}[${i}]`));
  return {
    ...parseNames(req),
    digest,
    expireAtMs: parseTimestamp(req.expireAt, 'expire_at'),
    referencesBlobs: digests(req.referencesBlobs, 'references_blobs'),
    referencesDirectories: digests(req.referencesDirectories, 'references_directories'),
  };
}

/** The fields both Fetch responses share. */
function answer(found: FetchedAsset) {
  return {
    status: rpcStatus(Status.OK),
    uri: found.uri ?? '',
    qualifiers: found.qualifiers.map((q) => create(assetPb.QualifierSchema, q)),
    expiresAt: found.expireAtMs === undefined ? undefined : toTimestamp(found.expireAtMs),
    digestFunction: DigestFunction_Value.SHA256,
  };
}

function notFound(kind: AssetKind, q: AssetQuery): SpecbuildError {
  const uris = q.uris
    .slice(0, 3)
    .map((u) => JSON.stringify(u.slice(0, 200)))
    .join(', ');
  const more = q.uris.length > 3 ? ` and ${q.uris.length - 3} more` : '';
  const quals = q.qualifiers?.length ? ` with ${q.qualifiers.length} qualifier(s)` : '';
  return new SpecbuildError(
    'cas/not-found',
    `no ${kind} is known as ${uris}${more}${quals} (never pushed, expired, older than oldest_content_accepted, or its content has left the CAS)`,
  );
}
