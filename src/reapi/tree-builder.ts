// Builds a Merkle tree from a list of entries at relative paths (files by
// digest, symlinks, empty directories, grafted subtrees), without touching
// the disk: what wrappers use to lay out an input root at absolute paths.
import { create } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import { digestKey, toPb, type Digest } from './digest.js';
import { compareNames, digestMessage } from './directory.js';
import { checkRelPath } from './names.js';
import { DirectorySchema } from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

export type TreeEntry =
  | { kind: 'file'; path: string; digest: Digest; executable: boolean }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'dir'; path: string }
  /** A directory whose Directory message (and below) already exists. */
  | { kind: 'tree'; path: string; digest: Digest };

interface Node {
  dirs: Map<string, Node>;
  files: Map<string, { digest: Digest; executable: boolean }>;
  links: Map<string, string>;
  grafted?: Digest;
}

const newNode = (): Node => ({ dirs: new Map(), files: new Map(), links: new Map() });

export interface BuiltTree {
  root: Digest;
  /** Encoded Directory messages created here (grafted subtrees not included). */
  directories: Map<string, { digest: Digest; bytes: Uint8Array }>;
}

export function buildTree(entries: readonly TreeEntry[]): BuiltTree {
  const root = newNode();
  const conflict = (path: string): SpecbuildError =>
    new SpecbuildError(
      'reapi/invalid-directory',
      `input tree: "${path}" is given twice, or as both a file and a directory`,
    );
  const dirAt = (parts: string[], path: string): Node => {
    let n = root;
    for (const p of parts) {
      if (n.files.has(p) || n.links.has(p) || n.grafted !== undefined) throw conflict(path);
      let next = n.dirs.get(p);
      if (next === undefined) {
        next = newNode();
        n.dirs.set(p, next);
      }
      n = next;
    }
    return n;
  };
  for (const e of entries) {
    const rel = checkRelPath(e.path, 'input tree path');
    const parts = rel === '' ? [] : rel.split('/');
    if (e.kind === 'dir' || e.kind === 'tree') {
      const n = dirAt(parts, e.path);
      if (e.kind === 'tree') {
        if (
          n.dirs.size + n.files.size + n.links.size > 0 ||
          (n.grafted !== undefined && digestKey(n.grafted) !== digestKey(e.digest))
        ) {
          throw conflict(e.path);
        }
        n.grafted = e.digest;
      }
      continue;
    }
    const name = parts.pop();
    if (name === undefined) throw conflict(e.path);
    const parent = dirAt(parts, e.path);
    if (parent.dirs.has(name) || parent.links.has(name) || parent.files.has(name)) {
      const same = e.kind === 'file' && parent.files.get(name)?.digest.hash === e.digest.hash;
      if (!same) throw conflict(e.path);
    }
    if (e.kind === 'file') parent.files.set(name, { digest: e.digest, executable: e.executable });
    else parent.links.set(name, e.target);
  }
  const directories = new Map<string, { digest: Digest; bytes: Uint8Array }>();
  const encode = (n: Node): Digest => {
    if (n.grafted !== undefined) return n.grafted;
    const sorted = <T>(m: Map<string, T>): [string, T][] =>
      [...m].sort(([a], [b]) => compareNames(a, b));
    const msg = create(DirectorySchema, {
      files: sorted(n.files).map(([name, f]) => ({
        name,
        digest: toPb(f.digest),
        isExecutable: f.executable,
      })),
      directories: sorted(n.dirs).map(([name, d]) => ({ name, digest: toPb(encode(d)) })),
      symlinks: sorted(n.links).map(([name, target]) => ({ name, target })),
    });
    const enc = digestMessage(DirectorySchema, msg);
    directories.set(digestKey(enc.digest), enc);
    return enc.digest;
  };
  return { root: encode(root), directories };
}
