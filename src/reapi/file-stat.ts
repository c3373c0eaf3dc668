// When a file's digest may be trusted on its stat alone: the stat fields
// that tell its contents unchanged, and how long after a change they are
// believed. Used by the wrapper's stat cache and by the host platform's
// toolchain hashing (which seeds that cache), so that both follow one rule.
import type { BigIntStats } from 'node:fs';

/** A stat's fields that tell a file's contents unchanged (plain numbers and strings: it crosses threads). */
export interface FileStat {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: number;
  nlink: number;
}

export function fileStatOf(st: BigIntStats): FileStat {
  return {
    size: Number(st.size),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
    ino: Number(st.ino),
    nlink: Number(st.nlink),
  };
}

/** Whether two stats say the same contents: size, mtime, ctime and inode alike (not the link count). */
export function sameFileStat(
  a: Omit<FileStat, 'nlink'> | undefined,
  b: Omit<FileStat, 'nlink'> | undefined,
): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs &&
    a.ino === b.ino
  );
}

/** How long after its last change a file's stat is not believed (ms). */
export const SETTLE_MS = 1000;

/**
 * Whether a file with these times changed within SETTLE_MS of `nowMs`, and
 * may change again within the same timestamp tick: by its mtime, or by its
 * ctime when it has one link (rewritten with the mtime put back). Not the
 * ctime of a file with more: a hard link made or removed moves it, and
 * sandboxes staging the same blobs by hard links would keep every header
 * from being cached.
 */
export function changedLately(
  mtimeNs: bigint,
  ctimeNs: bigint,
  nlink: number,
  nowMs: number,
): boolean {
  const changedNs = nlink === 1 && ctimeNs > mtimeNs ? ctimeNs : mtimeNs;
  return nowMs - Number(changedNs / 1_000_000n) < SETTLE_MS;
}
