// Editing Directory trees inside a CAS without staging them to disk: laying
// trees over each other at paths (an element's sources, dependency layers),
// taking a subtree (an import element's `source`), and listing every file
// (the digest indexes of speculative actions). New Directory blobs are
// written; unchanged subtrees are shared by digest.
import { create } from '@bufbuild/protobuf';
import {
  compareNames,
  digestKey,
  digestMessage,
  DirectorySchema,
  EncodedDirectory,
  fromPb,
  toPb,
  type Digest,
  type Directory,
} from '../reapi/index.js';
import type { CallOptions, Cas } from './cas.js';
import { decodeDirectory } from './tree.js';

/** Reads Directory messages, each digest once (trees share most subtrees). */
export class DirectoryReader {
  private readonly cache = new Map<string, Promise<Directory>>();
  private readonly encodedCache = new Map<string, Promise<EncodedDirectory | undefined>>();

  constructor(
    private readonly cas: Cas,
    private readonly opts: CallOptions = {},
  ) {}

  read(d: Digest): Promise<Directory> {
    const key = digestKey(d);
    let p = this.cache.get(key);
    if (p === undefined) {
      p = this.cas.readBlob(d, this.opts).then((bytes) => decodeDirectory(bytes, d));
      this.cache.set(key, p);
    }
    return p;
  }

  /**
   * The Directory as its bytes, validated and indexed for edits, when they
   * are a canonical encoding of the common shape; undefined for the rest,
   * which read() decodes (and refuses, if invalid, saying why).
   */
  encoded(d: Digest): Promise<EncodedDirectory | undefined> {
    const key = digestKey(d);
    let p = this.encodedCache.get(key);
    if (p === undefined) {
      p = this.cas.readBlob(d, this.opts).then((bytes) => EncodedDirectory.from(bytes));
      this.encodedCache.set(key, p);
    }
    return p;
  }
}

/** The empty Directory's digest (written to `cas`). */
export async function emptyTree(cas: Cas): Promise<Digest> {
  return cas.writeBlob(digestMessage(DirectorySchema, create(DirectorySchema, {})).bytes);
}

async function writeDirectory(cas: Cas, dir: Directory): Promise<Digest> {
  const sort = <T extends { name: string }>(xs: T[]): T[] =>
    xs.sort((a, b) => compareNames(a.name, b.name));
  const msg = create(DirectorySchema, {
    files: sort([...dir.files]),
    directories: sort([...dir.directories]),
    symlinks: sort([...dir.symlinks]),
  });
  return cas.writeBlob(digestMessage(DirectorySchema, msg).bytes);
}

/** `upper` laid over `lower`: upper's files and symlinks win; directories merge. */
async function overlay(
  cas: Cas,
  r: DirectoryReader,
  lower: Digest,
  upper: Digest,
): Promise<Digest> {
  if (lower.hash === upper.hash) return upper;
  const [lo, up] = await Promise.all([r.read(lower), r.read(upper)]);
  const files = new Map(lo.files.map((f) => [f.name, f]));
  const dirs = new Map(lo.directories.map((x) => [x.name, x]));
  const links = new Map(lo.symlinks.map((x) => [x.name, x]));
  for (const f of up.files) {
    dirs.delete(f.name);
    links.delete(f.name);
    files.set(f.name, f);
  }
  for (const l of up.symlinks) {
    dirs.delete(l.name);
    files.delete(l.name);
    links.set(l.name, l);
  }
  for (const x of up.directories) {
    files.delete(x.name);
    links.delete(x.name);
    const below = dirs.get(x.name);
    const merged =
      below === undefined
        ? fromPb(x.digest)
        : await overlay(cas, r, fromPb(below.digest), fromPb(x.digest));
    dirs.set(x.name, { ...x, digest: toPb(merged) });
  }
  return writeDirectory(cas, {
    ...up,
    files: [...files.values()],
    directories: [...dirs.values()],
    symlinks: [...links.values()],
  });
}

/** A tree holding `root` at the relative `path` ('' for the top). */
async function graft(cas: Cas, path: string, root: Digest): Promise<Digest> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let d = root;
  for (const name of parts.reverse()) {
    d = await writeDirectory(
      cas,
      create(DirectorySchema, { directories: [{ name, digest: toPb(d) }] }),
    );
  }
  return d;
}

/**
 * The trees laid over each other in order (later ones win), each at its
 * path relative to the result's root.
 */
export async function layerTrees(
  cas: Cas,
  layers: readonly { path: string; root: Digest }[],
  opts: CallOptions = {},
): Promise<Digest> {
  const r = new DirectoryReader(cas, opts);
  let acc: Digest | undefined;
  for (const l of layers) {
    const placed = await graft(cas, l.path, l.root);
    acc = acc === undefined ? placed : await overlay(cas, r, acc, placed);
  }
  return acc ?? emptyTree(cas);
}

/** The tree at relative `path` inside `root`, or undefined when there is no directory there. */
export async function subtree(
  cas: Cas,
  root: Digest,
  path: string,
  opts: CallOptions = {},
): Promise<Digest | undefined> {
  const r = new DirectoryReader(cas, opts);
  let d = root;
  for (const name of path.split('/').filter((p) => p !== '' && p !== '.')) {
    const dir = await r.read(d);
    const next = dir.directories.find((x) => x.name === name);
    if (next === undefined) return undefined;
    d = fromPb(next.digest);
  }
  return d;
}

export interface TreeFile {
  /** Relative to the tree's root. */
  path: string;
  digest: Digest;
  executable: boolean;
}

/** Every file of a tree with its path, depth first in name order. */
export async function listFiles(
  cas: Cas,
  root: Digest,
  reader: DirectoryReader = new DirectoryReader(cas),
): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  const walk = async (d: Digest, prefix: string): Promise<void> => {
    const dir = await reader.read(d);
    for (const f of dir.files)
      out.push({ path: prefix + f.name, digest: fromPb(f.digest), executable: f.isExecutable });
    for (const x of dir.directories) await walk(fromPb(x.digest), `${prefix}${x.name}/`);
  };
  await walk(root, '');
  return out;
}
