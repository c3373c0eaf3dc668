// The local asset index: Remote Asset names of content in a CAS, one small
// JSON file per (kind, URI, qualifiers) under DIR/assets/entries/, written to
// a temporary file, synced and renamed into place before a push is
// acknowledged, so a crash never loses an acknowledged name. A name resolves
// only while its content, and everything the push said it references, is
// still in the CAS: eviction turns it into a miss, never into a dangling
// answer.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isSpecbuildError, processAlive, SpecbuildError } from '../core/index.js';
import { digestKey, parseDigestString, type Digest } from '../reapi/index.js';
import {
  checkAssetNames,
  sortQualifiers,
  type AssetKind,
  type AssetPush,
  type AssetQuery,
  type AssetStore,
  type FetchedAsset,
  type Qualifier,
} from './asset-store.js';
import type { CallOptions, Cas } from './cas.js';
import { writeError } from './disk-error.js';
import { fetchTree, filesOf } from './tree.js';

export interface LocalAssetStoreOptions {
  /** The cache directory; the index lives in its `assets/`. */
  dir: string;
  /** Where the named content lives. */
  cas: Cas;
  /** The clock (ms since 1970), for push times and expiry; tests set it. */
  now?: () => number;
}

/** One name, as stored: the file's JSON. */
interface Entry {
  kind: AssetKind;
  uri: string;
  /** Sorted (sortQualifiers). */
  qualifiers: Qualifier[];
  digest: Digest;
  pushedMs: number;
  expireAtMs: number | undefined;
  referencesBlobs: Digest[];
  referencesDirectories: Digest[];
}

/** Version of the entry file format (its `v` field). */
const FORMAT = 1;

/** Why content cannot be named or returned: the field at fault and what is wrong. */
interface Problem {
  field: string;
  message: string;
}

export class LocalAssetStore implements AssetStore {
  private readonly entries: string;
  private readonly tmp: string;
  private readonly cas: Cas;
  private readonly now: () => number;

  private constructor(opts: LocalAssetStoreOptions) {
    this.entries = join(opts.dir, 'assets', 'entries');
    this.tmp = join(opts.dir, 'assets', 'tmp');
    this.cas = opts.cas;
    this.now = opts.now ?? Date.now;
  }

  /** Opens (creating if needed) the index under `DIR/assets/`; removes what dead writers left. */
  static async open(opts: LocalAssetStoreOptions): Promise<LocalAssetStore> {
    const store = new LocalAssetStore(opts);
    await mkdir(store.entries, { recursive: true });
    await mkdir(store.tmp, { recursive: true });
    for (const name of await readdir(store.tmp)) {
      const pid = Number(name.split('-')[0]);
      if (Number.isInteger(pid) && (pid === process.pid || processAlive(pid))) continue;
      await unlink(join(store.tmp, name)).catch(() => undefined);
    }
    return store;
  }

  fetchBlob(query: AssetQuery, opts?: CallOptions): Promise<FetchedAsset | undefined> {
    return this.fetch('blob', query, opts);
  }

  fetchDirectory(query: AssetQuery, opts?: CallOptions): Promise<FetchedAsset | undefined> {
    return this.fetch('directory', query, opts);
  }

  pushBlob(push: AssetPush, opts?: CallOptions): Promise<void> {
    return this.push('blob', push, opts);
  }

  pushDirectory(push: AssetPush, opts?: CallOptions): Promise<void> {
    return this.push('directory', push, opts);
  }

  private async fetch(
    kind: AssetKind,
    q: AssetQuery,
    opts?: CallOptions,
  ): Promise<FetchedAsset | undefined> {
    checkAssetNames(q.uris, q.qualifiers);
    const qualifiers = sortQualifiers(q.qualifiers);
    const now = this.now();
    for (const uri of q.uris) {
      const e = await this.read(kind, uri, qualifiers);
      if (e === undefined) continue;
      if (e.expireAtMs !== undefined && e.expireAtMs <= now) continue;
      if (q.oldestAcceptedMs !== undefined && e.pushedMs < q.oldestAcceptedMs) continue;
      if ((await this.problem(e, opts)) !== undefined) continue;
      return { uri, digest: e.digest, qualifiers: e.qualifiers, expireAtMs: e.expireAtMs };
    }
    return undefined;
  }

  private async push(kind: AssetKind, p: AssetPush, opts?: CallOptions): Promise<void> {
    checkAssetNames(p.uris, p.qualifiers);
    const base = {
      kind,
      qualifiers: sortQualifiers(p.qualifiers),
      digest: p.digest,
      pushedMs: this.now(),
      expireAtMs: p.expireAtMs,
      referencesBlobs: [...(p.referencesBlobs ?? [])],
      referencesDirectories: [...(p.referencesDirectories ?? [])],
    };
    const problem = await this.problem({ ...base, uri: '' }, opts);
    if (problem !== undefined) {
      throw new SpecbuildError('asset/missing-content', `${problem.field}: ${problem.message}`, {
        hint: 'upload the content, and everything it references, to the CAS before pushing its name',
      });
    }
    for (const uri of new Set(p.uris)) await this.write({ ...base, uri });
  }

  /**
   * The first reason the entry's content is not whole in the CAS: its blob or
   * tree, then each referenced blob, then each referenced tree. Undefined
   * when everything is present.
   */
  private async problem(e: Entry, opts?: CallOptions): Promise<Problem | undefined> {
    const blobs: [string, Digest][] = e.referencesBlobs.map((d, i) => [
      `references_blobs[${i}]`,
      d,
    ]);
    const trees: [string, Digest][] = e.referencesDirectories.map((d, i) => [
      `references_directories[${i}]`,
      d,
    ]);
    if (e.kind === 'blob') blobs.unshift(['blob_digest', e.digest]);
    else trees.unshift(['root_directory_digest', e.digest]);
    const absent = await this.cas.findMissingBlobs(
      blobs.map(([, d]) => d),
      opts,
    );
    const missing = new Set(absent.map(digestKey));
    const gone = blobs.find(([, d]) => missing.has(digestKey(d)));
    if (gone !== undefined) {
      return { field: gone[0], message: `blob ${digestKey(gone[1])} is not in the CAS` };
    }
    for (const [field, root] of trees) {
      const message = await this.treeProblem(root, opts);
      if (message !== undefined) return { field, message };
    }
    return undefined;
  }

  /** What is wrong with the tree under `root` (absent, incomplete, invalid), if anything. */
  private async treeProblem(root: Digest, opts?: CallOptions): Promise<string | undefined> {
    try {
      const tree = await fetchTree(this.cas, root, opts);
      const [first] = tree.missing;
      if (first !== undefined) {
        return digestKey(first) === digestKey(root)
          ? `directory ${digestKey(root)} is not in the CAS`
          : `the tree of ${digestKey(root)} is incomplete: directory ${digestKey(first)} is not in the CAS`;
      }
      const files = filesOf(tree.directories.values());
      const absent = await this.cas.findMissingBlobs(files, opts);
      const [file] = absent;
      if (file !== undefined) {
        return `the tree of ${digestKey(root)} is incomplete: ${absent.length} of its ${files.length} files are not in the CAS (e.g. ${digestKey(file)})`;
      }
      return undefined;
    } catch (e) {
      if (isSpecbuildError(e) && e.code.startsWith('reapi/')) {
        return `${digestKey(root)} is not a valid Directory tree: ${e.message}`;
      }
      throw e;
    }
  }

  /** The file of a name: a hash of kind, URI and sorted qualifiers, sharded by its first byte. */
  private pathOf(kind: AssetKind, uri: string, qualifiers: readonly Qualifier[]): string {
    const key = JSON.stringify([kind, uri, qualifiers.map((q) => [q.name, q.value])]);
    const h = createHash('sha256').update(key).digest('hex');
    return join(this.entries, h.slice(0, 2), h);
  }

  private async read(
    kind: AssetKind,
    uri: string,
    qualifiers: readonly Qualifier[],
  ): Promise<Entry | undefined> {
    let text: string;
    try {
      text = await readFile(this.pathOf(kind, uri, qualifiers), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new SpecbuildError('cas/io', `cannot read the asset entry of ${uri.slice(0, 200)}`, {
        cause: e,
      });
    }
    const e = parseEntry(text);
    // A damaged file, or (never seen) another name with the same hash: a miss.
    if (
      e?.kind !== kind ||
      e.uri !== uri ||
      JSON.stringify(e.qualifiers) !== JSON.stringify(qualifiers)
    )
      return undefined;
    return e;
  }

  private async write(e: Entry): Promise<void> {
    const dest = this.pathOf(e.kind, e.uri, e.qualifiers);
    const shard = join(dest, '..');
    const tmp = join(this.tmp, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const what = `the asset entry of ${e.uri.slice(0, 200)}`;
    try {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(`${JSON.stringify(formatEntry(e))}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await rename(tmp, dest);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        await mkdir(shard, { recursive: true });
        await rename(tmp, dest);
      }
      // The rename itself survives a power cut only once its directory is synced.
      const dir = await open(shard, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw writeError(err, what);
    }
  }
}

function formatEntry(e: Entry): Record<string, unknown> {
  return {
    v: FORMAT,
    kind: e.kind,
    uri: e.uri,
    qualifiers: e.qualifiers,
    digest: digestKey(e.digest),
    pushed_ms: e.pushedMs,
    ...(e.expireAtMs === undefined ? {} : { expire_at_ms: e.expireAtMs }),
    references_blobs: e.referencesBlobs.map(digestKey),
    references_directories: e.referencesDirectories.map(digestKey),
  };
}

/** An entry file's contents, validated; undefined when anything is off (a damaged file is a miss). */
function parseEntry(text: string): Entry | undefined {
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const kind = j.kind;
    if (j.v !== FORMAT || (kind !== 'blob' && kind !== 'directory')) return undefined;
    if (typeof j.uri !== 'string' || !isMs(j.pushed_ms)) return undefined;
    const expireAtMs = j.expire_at_ms;
    if (expireAtMs !== undefined && !isMs(expireAtMs)) return undefined;
    if (!Array.isArray(j.qualifiers)) return undefined;
    const qualifiers = j.qualifiers.map((q: unknown): Qualifier => {
      const { name, value } = (q ?? {}) as Record<string, unknown>;
      if (typeof name !== 'string' || typeof value !== 'string') throw new Error('qualifier');
      return { name, value };
    });
    const digests = (v: unknown): Digest[] => {
      if (!Array.isArray(v)) throw new Error('digests');
      return v.map((s: unknown) => parseDigestString(String(s)));
    };
    return {
      kind,
      uri: j.uri,
      qualifiers,
      digest: parseDigestString(String(j.digest)),
      pushedMs: j.pushed_ms,
      expireAtMs,
      referencesBlobs: digests(j.references_blobs),
      referencesDirectories: digests(j.references_directories),
    };
  } catch {
    return undefined;
  }
}

function isMs(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}
