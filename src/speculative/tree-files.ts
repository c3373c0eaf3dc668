// The files of Directory trees, path by path, read through one shared
// Directory cache per invocation (input trees of an element's actions share
// most of their subtrees, and dependency trees are indexed once and shared
// by every element that stages them).
import { DirectoryReader, type Cas } from '../cas/index.js';
import { digestKey, fromValidatedPb, type Digest } from '../reapi/index.js';

export interface FileEntry {
  /** Relative to the tree's root. */
  path: string;
  digest: Digest;
}

export class TreeFiles {
  readonly reader: DirectoryReader;
  private readonly byTree = new Map<string, Promise<FileEntry[]>>();
  private readonly indexes = new Map<string, Promise<Map<string, string[]>>>();
  private readonly byPath = new Map<string, Promise<Map<string, Digest>>>();
  /** The same maps once they are made, for lookups that need not wait. */
  private readonly byPathNow = new Map<string, ReadonlyMap<string, Digest>>();

  constructor(cas: Cas) {
    this.reader = new DirectoryReader(cas);
  }

  /** Every file of the tree, depth first in name order (computed once per tree). */
  files(root: Digest): Promise<FileEntry[]> {
    const key = digestKey(root);
    let p = this.byTree.get(key);
    if (p === undefined) {
      p = this.walk(root);
      this.byTree.set(key, p);
    }
    return p;
  }

  /**
   * The same list, made again on each call and not kept: for trees read
   * once, such as each recorded action's input tree in generation (kept,
   * a thousand lists of hundreds of entries cost more in garbage collection
   * than reading them).
   */
  list(root: Digest): Promise<FileEntry[]> {
    return this.byTree.get(digestKey(root)) ?? this.walk(root);
  }

  /** The tree's files by content: hash → paths (computed once per tree). */
  index(root: Digest): Promise<Map<string, string[]>> {
    const key = digestKey(root);
    let p = this.indexes.get(key);
    if (p === undefined) {
      p = this.files(root).then((fs) => {
        const m = new Map<string, string[]>();
        for (const f of fs) {
          const list = m.get(f.digest.hash);
          if (list === undefined) m.set(f.digest.hash, [f.path]);
          else list.push(f.path);
        }
        return m;
      });
      this.indexes.set(key, p);
    }
    return p;
  }

  /**
   * The file at `path` in the tree, if there is one. Each tree is listed by
   * path once: instantiation looks up hundreds of paths per action in the
   * same few trees (a walk per lookup, scanning large directories, made it
   * 50 times slower).
   */
  async fileAt(root: Digest, path: string): Promise<Digest | undefined> {
    return (await this.paths(root)).get(path);
  }

  /** The tree's files by path (made once per tree). */
  paths(root: Digest): Promise<ReadonlyMap<string, Digest>> {
    const key = digestKey(root);
    let p = this.byPath.get(key);
    if (p === undefined) {
      p = this.files(root).then((fs) => {
        const m = new Map(fs.map((f) => [f.path, f.digest]));
        this.byPathNow.set(key, m);
        return m;
      });
      this.byPath.set(key, p);
    }
    return p;
  }

  /**
   * The tree's files by path if paths() has made them already, else
   * undefined: instantiation resolves hundreds of overlays per action
   * against the same few trees, most without waiting for anything.
   */
  pathsNow(root: Digest): ReadonlyMap<string, Digest> | undefined {
    return this.byPathNow.get(digestKey(root));
  }

  private async walk(root: Digest): Promise<FileEntry[]> {
    const out: FileEntry[] = [];
    const visit = async (d: Digest, prefix: string): Promise<void> => {
      // Stored canonically (ours always are): read off the bytes, no messages made.
      const enc = await this.reader.encoded(d);
      if (enc !== undefined) {
        for (let i = 0; i < enc.fileCount; i++)
          out.push({ path: prefix + enc.name(i), digest: enc.digest(i) });
        for (let i = enc.fileCount; i < enc.directoryEnd; i++)
          await visit(enc.digest(i), `${prefix}${enc.name(i)}/`);
        return;
      }
      const dir = await this.reader.read(d);
      // The reader validated every digest of the Directory when it decoded it.
      for (const f of dir.files)
        if (f.digest !== undefined)
          out.push({ path: prefix + f.name, digest: fromValidatedPb(f.digest) });
      for (const x of dir.directories)
        if (x.digest !== undefined) await visit(fromValidatedPb(x.digest), `${prefix}${x.name}/`);
    };
    await visit(root, '');
    return out;
  }
}
