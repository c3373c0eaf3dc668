// Rewriting an input tree bottom-up: the files at the given paths get new
// digests (their executable bit kept), only the Directories on the way to
// them are re-encoded and stored, everything else is shared by digest. The
// encoding is the canonical one every client uses, so the result is the
// tree the wrapper would build from the same files.
import { create } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import type { DirectoryReader } from '../cas/index.js';
import {
  digestMessage,
  DirectorySchema,
  fromValidatedPb,
  toPb,
  type Digest,
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
    const enc = digestMessage(
      DirectorySchema,
      create(DirectorySchema, { ...dir, files, directories }),
    );
    blobs.push(enc.bytes);
    return enc.digest;
  };
  const out = await apply(root, edits, '');
  return { root: out, blobs };
}
