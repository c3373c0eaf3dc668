// Directory trees built in memory for tests, e.g. one that expands
// exponentially from a few dozen Directories.
import { create } from '@bufbuild/protobuf';
import {
  DirectorySchema,
  digestKey,
  digestMessage,
  toPb,
  type Digest,
  type Directory,
} from '../../src/reapi/index.js';

/** A tree of `levels` Directories below the root level, each naming the next twice. */
export function doublingTree(levels: number): {
  root: Digest;
  directories: Map<string, Directory>;
  blobs: Uint8Array[];
} {
  const directories = new Map<string, Directory>();
  const blobs: Uint8Array[] = [];
  const add = (dir: Directory): Digest => {
    const { digest, bytes } = digestMessage(DirectorySchema, dir);
    directories.set(digestKey(digest), dir);
    blobs.push(bytes);
    return digest;
  };
  let below = add(create(DirectorySchema, {}));
  for (let i = 0; i < levels; i++) {
    const d = toPb(below);
    below = add(
      create(DirectorySchema, {
        directories: [
          { name: 'a', digest: d },
          { name: 'b', digest: d },
        ],
      }),
    );
  }
  return { root: below, directories, blobs };
}
