// The AssetStore interface: names (URIs plus qualifiers) for blobs and
// Directory trees in a CAS, as the Remote Asset API defines them. The local
// index, the remote client and the gRPC service all meet at it.
import { SpecbuildError } from '../core/index.js';
import type { Digest } from '../reapi/index.js';
import type { CallOptions } from './cas.js';

/** What a name denotes: FetchBlob/PushBlob or FetchDirectory/PushDirectory. */
export type AssetKind = 'blob' | 'directory';

export interface Qualifier {
  readonly name: string;
  readonly value: string;
}

export interface AssetQuery {
  /** At least one URI; the first (in this order) that names acceptable content answers. */
  readonly uris: readonly string[];
  /** Matched exactly, in any order; names are unique. */
  readonly qualifiers?: readonly Qualifier[];
  /** Content pushed before this moment (ms since 1970) is not accepted. */
  readonly oldestAcceptedMs?: number;
}

export interface AssetPush {
  /** At least one URI; the content can be fetched by any of them. */
  readonly uris: readonly string[];
  readonly qualifiers?: readonly Qualifier[];
  /** The blob, or the root Directory of the tree. It must already be in the CAS. */
  readonly digest: Digest;
  /** After this moment (ms since 1970) the name no longer resolves. */
  readonly expireAtMs?: number;
  /** Blobs and trees the content refers to; a name resolves only while they are all present. */
  readonly referencesBlobs?: readonly Digest[];
  readonly referencesDirectories?: readonly Digest[];
}

export interface FetchedAsset {
  /** The requested URI that answered, when known (a remote server may not say). */
  readonly uri: string | undefined;
  readonly digest: Digest;
  /** The qualifiers the content is known under. */
  readonly qualifiers: readonly Qualifier[];
  /** When the name stops resolving, if it was pushed with an expiry. */
  readonly expireAtMs: number | undefined;
}

export interface AssetStore {
  /** The blob named so, or undefined when none is known or its content has left the CAS. */
  fetchBlob(query: AssetQuery, opts?: CallOptions): Promise<FetchedAsset | undefined>;
  /** The root of the tree named so, or undefined when none is known or the tree is incomplete. */
  fetchDirectory(query: AssetQuery, opts?: CallOptions): Promise<FetchedAsset | undefined>;
  /** Names a blob already in the CAS (a later push of the same name replaces this one). */
  pushBlob(push: AssetPush, opts?: CallOptions): Promise<void>;
  /** Names a Directory tree whose every directory and file is already in the CAS. */
  pushDirectory(push: AssetPush, opts?: CallOptions): Promise<void>;
}

/**
 * Checks the names of a request: at least one URI, none empty, qualifier
 * names unique. Errors name the protocol field, since they reach clients.
 */
export function checkAssetNames(
  uris: readonly string[],
  qualifiers: readonly Qualifier[] = [],
): void {
  if (uris.length === 0) {
    throw new SpecbuildError('reapi/invalid-message', 'uris: at least one URI is required');
  }
  uris.forEach((u, i) => {
    if (u === '') throw new SpecbuildError('reapi/invalid-message', `uris[${i}] is empty`);
  });
  const seen = new Map<string, number>();
  qualifiers.forEach((q, i) => {
    const first = seen.get(q.name);
    if (first !== undefined) {
      throw new SpecbuildError(
        'reapi/invalid-message',
        `qualifiers[${i}].name "${q.name.slice(0, 100)}" repeats qualifiers[${first}].name`,
        { hint: 'qualifier names must be unique' },
      );
    }
    seen.set(q.name, i);
  });
}

/** Qualifiers in one order (by name, then value), for exact matching whatever order they came in. */
export function sortQualifiers(qualifiers: readonly Qualifier[] = []): Qualifier[] {
  return qualifiers
    .map((q) => ({ name: q.name, value: q.value }))
    .sort((a, b) => cmp(a.name, b.name) || cmp(a.value, b.value));
}

/** Code-unit order (not locale order), so the same qualifiers sort the same everywhere. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
