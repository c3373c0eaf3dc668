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

/**
 * Directory messages encoded lately, by their entries (see entriesKey): a
 * compile's input tree is ~20 directories from / down, most of them the
 * same system header directories every time. Building and encoding each
 * message again cost a wrapper daemon 2-3 ms per compile; looking it up by
 * its entries costs a string. The encoding is a function of the entries, so
 * a hit is the very message that would have been built.
 */
const encoded = new Map<string, { digest: Digest; bytes: Uint8Array }>();
/** Entries kept (a bound on memory, ~10 MB at most, not a tuning): all dropped past it. */
const ENCODED_MAX = 2048;

/**
 * The entries of a directory as one string: each kind sorted, in a fixed
 * order, each name and target preceded by its length, so that two
 * directories have the same key exactly when their messages are the same,
 * whatever their names hold.
 */
function entriesKey(
  files: [string, { digest: Digest; executable: boolean }][],
  dirs: [string, Digest][],
  links: [string, string][],
): string {
  let k = '';
  for (const [name, f] of files)
    k += `f${String(name.length)}:${name}${f.digest.hash}/${String(f.digest.size)}${f.executable ? 'x' : '-'}`;
  for (const [name, d] of dirs) k += `d${String(name.length)}:${name}${d.hash}/${String(d.size)};`;
  for (const [name, target] of links)
    k += `l${String(name.length)}:${name}${String(target.length)}:${target}`;
  return k;
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
    const files = sorted(n.files);
    const dirs = sorted(n.dirs).map(([name, d]): [string, Digest] => [name, encode(d)]);
    const links = sorted(n.links);
    const key = entriesKey(files, dirs, links);
    let enc = encoded.get(key);
    if (enc === undefined) {
      const msg = create(DirectorySchema, {
        files: files.map(([name, f]) => ({
          name,
          digest: toPb(f.digest),
          isExecutable: f.executable,
        })),
        directories: dirs.map(([name, d]) => ({ name, digest: toPb(d) })),
        symlinks: links.map(([name, target]) => ({ name, target })),
      });
      enc = digestMessage(DirectorySchema, msg);
      if (encoded.size >= ENCODED_MAX) encoded.clear();
      encoded.set(key, enc);
    }
    directories.set(digestKey(enc.digest), enc);
    return enc.digest;
  };
  return { root: encode(root), directories };
}
