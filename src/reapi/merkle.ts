// Merkle trees of files: builds the REAPI Directory tree of a directory on
// disk (files with their executable bit, symlinks, empty directories).
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Limiter, SpecbuildError } from '../core/index.js';
import { digestKey, digestOfFile, toPb, type Digest } from './digest.js';
import { compareNames, digestMessage } from './directory.js';
import { checkName } from './names.js';
import {
  DirectoryNodeSchema,
  DirectorySchema,
  FileNodeSchema,
  SymlinkNodeSchema,
} from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

export interface MerkleTree {
  root: Digest;
  /** Encoded Directory messages by digestKey (the root included). */
  directories: Map<string, { digest: Digest; bytes: Uint8Array }>;
  /** One file on disk for each distinct file content, by digestKey. */
  files: Map<string, { digest: Digest; path: string }>;
}

export interface TreeOptions {
  /** How to hash a file (default: stream it through SHA-256). A stat cache plugs in here. */
  hashFile?: (path: string) => Promise<Digest>;
  /** How many files are hashed at once (default 16). */
  concurrency?: number;
}

/** Builds the Merkle tree of `dir`; nothing is written anywhere. */
export async function treeFromDirectory(dir: string, opts: TreeOptions = {}): Promise<MerkleTree> {
  const hashFile = opts.hashFile ?? digestOfFile;
  const limiter = new Limiter(opts.concurrency ?? 16);
  const tree: MerkleTree = {
    root: undefined as unknown as Digest, // set below, once the walk is done
    directories: new Map(),
    files: new Map(),
  };

  const walk = async (path: string): Promise<Digest> => {
    const names = (await readdir(path)).sort(compareNames);
    const entries = await Promise.all(
      names.map(async (name) => {
        checkName(name, path);
        const full = join(path, name);
        const st = await lstat(full);
        if (st.isDirectory()) {
          return { kind: 'dir' as const, name, digest: await walk(full) };
        }
        if (st.isSymbolicLink()) {
          return { kind: 'link' as const, name, target: await readlink(full) };
        }
        if (st.isFile()) {
          const digest = await limiter.run(() => hashFile(full));
          tree.files.set(digestKey(digest), { digest, path: full });
          return { kind: 'file' as const, name, digest, executable: (st.mode & 0o111) !== 0 };
        }
        throw new SpecbuildError(
          'reapi/invalid-directory',
          `${full}: not a regular file, directory or symlink`,
          { hint: 'sockets, FIFOs and device files cannot be stored in a tree' },
        );
      }),
    );
    const msg = create(DirectorySchema);
    for (const e of entries) {
      if (e.kind === 'file') {
        msg.files.push(
          create(FileNodeSchema, {
            name: e.name,
            digest: toPb(e.digest),
            isExecutable: e.executable,
          }),
        );
      } else if (e.kind === 'dir') {
        msg.directories.push(create(DirectoryNodeSchema, { name: e.name, digest: toPb(e.digest) }));
      } else {
        msg.symlinks.push(create(SymlinkNodeSchema, { name: e.name, target: e.target }));
      }
    }
    const encoded = digestMessage(DirectorySchema, msg);
    tree.directories.set(digestKey(encoded.digest), encoded);
    return encoded.digest;
  };

  tree.root = await walk(dir);
  return tree;
}
