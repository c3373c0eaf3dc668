// The cap on an input root's size, checked before anything is staged. A root
// of 31 Directories that each name the next twice expands to 2^31 entries:
// staged, it filled a disk with millions of inodes before the client's deadline.
import { SpecbuildError } from '../core/index.js';
import { expandedSize, SIZE_SATURATED, type FetchedTree } from '../cas/index.js';
import { digestKey } from '../reapi/index.js';

/**
 * Entries (files, directories, symlinks) an input root may expand to. Real
 * compile and link actions stage hundreds to tens of thousands; this leaves
 * room for the largest while a refused tree costs no disk at all.
 */
export const DEFAULT_MAX_INPUT_ENTRIES = 200_000;

/** Refuses (`exec/too-large`) an input tree that expands to more than `max` entries. */
export function checkInputSize(tree: FetchedTree, max: number): void {
  const size = expandedSize(tree.root, tree.directories);
  if (size <= max) return;
  const shown = size >= SIZE_SATURATED ? `more than ${size}` : String(size);
  throw new SpecbuildError(
    'exec/too-large',
    `input root ${digestKey(tree.root)} expands to ${shown} entries, over this executor's limit of ${max}`,
    { hint: 'stage fewer files, or raise the limit with specbuild server --max-input-entries' },
  );
}
