// How many entries a Directory tree expands to when staged. A subtree named
// twice is written twice, so a few dozen unique Directories can stand for
// billions of files: the size must come from the unique Directories alone,
// before anything is written.
import { SpecbuildError } from '../core/index.js';
import { digestKey, fromPb, type Digest, type Directory } from '../reapi/index.js';

/**
 * Where sizes stop counting. A chain of Directories that each name the next
 * twice doubles per level, past any integer type within a thousand levels;
 * the exact figure no longer matters long before this.
 */
export const SIZE_SATURATED = Number.MAX_SAFE_INTEGER;

/**
 * Entries (files, directories and symlinks, at every depth) that staging the
 * tree `root` creates, counting a repeated subtree each time it occurs.
 * Memoised per Directory digest, so the work is linear in the unique
 * Directories and their entries however large the expansion; iterative, so a
 * deep tree cannot overflow the stack. Saturates at SIZE_SATURATED. A
 * Directory absent from `directories` counts as empty (its caller reports it
 * missing).
 */
export function expandedSize(root: Digest, directories: ReadonlyMap<string, Directory>): number {
  const size = new Map<string, number>();
  /** Directories whose children are being sized (a cycle would meet one again). */
  const open = new Set<string>();
  const stack: string[] = [digestKey(root)];
  const childKeys = (dir: Directory): string[] =>
    dir.directories.map((sub) => digestKey(fromPb(sub.digest)));
  while (stack.length > 0) {
    const key = stack[stack.length - 1] as string;
    const dir = directories.get(key);
    if (size.has(key) || dir === undefined) {
      if (dir === undefined) size.set(key, 0);
      stack.pop();
      continue;
    }
    const children = childKeys(dir);
    if (!open.has(key)) {
      // First visit: size the children first, then come back.
      open.add(key);
      for (const k of children) {
        if (open.has(k)) {
          // Only a store that holds a blob under another's name can make one.
          throw new SpecbuildError('reapi/invalid-directory', `Directory ${k} contains itself`);
        }
        if (!size.has(k)) stack.push(k);
      }
      continue;
    }
    let n = dir.files.length + dir.directories.length + dir.symlinks.length;
    for (const k of children) n = Math.min(SIZE_SATURATED, n + (size.get(k) ?? 0));
    size.set(key, n);
    open.delete(key);
    stack.pop();
  }
  return size.get(digestKey(root)) ?? 0;
}
