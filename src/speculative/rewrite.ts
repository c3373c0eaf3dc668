// Rewriting an input tree bottom-up: the files at the given paths get new
// digests (their executable bit kept), only the Directories on the way to
// them are re-encoded and stored, everything else is shared by digest. The
// encoding is the canonical one every client uses, so the result is the
// tree the wrapper would build from the same files. Directories stored in
// canonical form (all of ours) are edited on their bytes: a 300-entry
// directory with 30 new digests is copied, not decoded and encoded again.
import { create } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import type { DirectoryReader } from '../cas/index.js';
import {
  compareNames,
  digestMessage,
  digestOf,
  DirectorySchema,
  fromValidatedPb,
  toPb,
  type Digest,
  type EncodedDirectory,
} from '../reapi/index.js';

interface Node {
  files: Map<string, Digest>;
  dirs: Map<string, Node>;
}

/**
 * `root` with the file at each path of `replace` given its new digest. The
 * new Directory blobs are returned, not stored: the caller stores them with
 * the rest of what it adapted (or never, if it does not submit it).
 */
export async function rewriteTree(
  reader: DirectoryReader,
  root: Digest,
  replace: ReadonlyMap<string, Digest>,
): Promise<{ root: Digest; blobs: Uint8Array[] }> {
  // The paths as a tree of edits.
  const edits: Node = { files: new Map(), dirs: new Map() };
  for (const [path, d] of replace) {
    const parts = path.split('/');
    const name = parts.pop();
    if (name === undefined || name === '')
      throw new SpecbuildError('reapi/invalid-path', `cannot replace "${path}"`);
    let n = edits;
    for (const p of parts) {
      let next = n.dirs.get(p);
      if (next === undefined) {
        next = { files: new Map(), dirs: new Map() };
        n.dirs.set(p, next);
      }
      n = next;
    }
    n.files.set(name, d);
  }
  const blobs: Uint8Array[] = [];
  const apply = async (d: Digest, e: Node, at: string): Promise<Digest> => {
    const enc = await reader.encoded(d);
    const bytes =
      enc === undefined
        ? undefined
        : await onBytes(enc, e, (was, sub, name) => apply(was, sub, `${at}${name}/`));
    if (bytes !== undefined) {
      blobs.push(bytes);
      return digestOf(bytes);
    }
    // Anything else (a name not there, an unusual or invalid Directory) as
    // decoded messages, which say what is wrong.
    const dir = await reader.read(d);
    const files = dir.files.map((f) => {
      const nd = e.files.get(f.name);
      return nd === undefined ? f : { ...f, digest: toPb(nd) };
    });
    for (const name of e.files.keys())
      if (!dir.files.some((f) => f.name === name))
        throw new SpecbuildError(
          'reapi/invalid-path',
          `no file ${at}${name} in the input tree to replace`,
        );
    const directories = [];
    for (const x of dir.directories) {
      const sub = e.dirs.get(x.name);
      directories.push(
        sub === undefined
          ? x
          : // The reader validated the Directory's digests when it decoded it.
            {
              ...x,
              digest: toPb(
                await apply(fromValidatedPb(x.digest ?? toPb(d)), sub, `${at}${x.name}/`),
              ),
            },
      );
    }
    for (const name of e.dirs.keys())
      if (!dir.directories.some((x) => x.name === name))
        throw new SpecbuildError(
          'reapi/invalid-path',
          `no directory ${at}${name} in the input tree`,
        );
    const encoded = digestMessage(
      DirectorySchema,
      create(DirectorySchema, { ...dir, files, directories }),
    );
    blobs.push(encoded.bytes);
    return encoded.digest;
  };
  const out = await apply(root, edits, '');
  return { root: out, blobs };
}

/**
 * The edited Directory written on its bytes (only the edited entries anew),
 * or undefined when an edited name is not there (the caller then goes the
 * decoded way, which reports it). Subdirectories are rewritten first, by `sub`.
 */
async function onBytes(
  enc: EncodedDirectory,
  e: Node,
  sub: (was: Digest, edits: Node, name: string) => Promise<Digest>,
): Promise<Uint8Array | undefined> {
  for (const name of e.files.keys()) if (!enc.hasFile(name)) return undefined;
  const was = new Map<string, Digest>();
  for (const name of e.dirs.keys()) {
    const d = enc.directory(name);
    if (d === undefined) return undefined;
    was.set(name, d);
  }
  // In name order, as the decoded way walks them (the same blobs in the same order).
  const dirs = new Map<string, Digest>();
  for (const [name, edits] of [...e.dirs].sort(([a], [b]) => compareNames(a, b)))
    dirs.set(name, await sub(was.get(name) as Digest, edits, name));
  return enc.withDigests(e.files, dirs);
}
