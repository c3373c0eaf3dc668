// Random Directories for the codec tests: valid and plain ones (what the
// fast paths take), anything protobuf-es can encode, near-valid ones with one
// mistake, and damaged encodings. Seeded, so a failure reproduces.
import { create } from '@bufbuild/protobuf';
import {
  DirectorySchema,
  EMPTY_HASH,
  NodePropertiesSchema,
  digestOf,
  type Directory,
} from '../../src/reapi/index.js';

/** A small deterministic PRNG (mulberry32), so a failure reproduces. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const HASH = digestOf(Buffer.from('x')).hash;

export function gen(r: () => number): Directory {
  // Half the cases are valid and plain (what the fast path takes), half anything.
  const clean = r() < 0.5;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const chars = ['a', 'b', 'z', 'A', '0', '.', '-', '_', ' ', '~', '\x7f'];
  const odd = ['é', '€', '😀', '\uE000', '\uFFFD', '/', '\0', '\x01'];
  const name = (): string => {
    const roll = r();
    if (roll < 0.03 && !clean) return pick(['', '.', '..']);
    const len = roll < 0.1 ? 120 + Math.floor(r() * 20) : 1 + Math.floor(r() * 12);
    let s = '';
    for (let i = 0; i < len; i++) s += r() < 0.02 && !clean ? pick(odd) : pick(chars);
    return s === '.' || s === '..' ? `${s}x` : s;
  };
  const digest = (): { hash: string; sizeBytes: bigint } | undefined => {
    const roll = clean ? 0.05 + r() * 0.95 : r();
    if (roll < 0.02) return undefined;
    const hash =
      roll < 0.05
        ? pick(['', HASH.toUpperCase(), HASH.slice(1), `${HASH}0`, HASH.replace('a', 'é')])
        : roll < 0.1
          ? EMPTY_HASH
          : Array.from(HASH, (c) =>
              r() < 0.5 ? c : '0123456789abcdef'.charAt(Math.floor(r() * 16)),
            ).join('');
    const sizes = [0n, 1n, 127n, 128n, 16383n, 16384n, 2n ** 31n, 2n ** 32n + 5n];
    const rare = [2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, -1n];
    let sizeBytes =
      r() < 0.05 && !clean ? pick(rare) : r() < 0.5 ? pick(sizes) : BigInt(Math.floor(r() * 1e6));
    if (clean && (hash === EMPTY_HASH) !== (sizeBytes === 0n))
      sizeBytes = hash === EMPTY_HASH ? 0n : 1n;
    return { hash, sizeBytes };
  };
  const n = (max: number): number => Math.floor(r() * r() * max);
  const props = (): { properties: { name: string; value: string }[] } | undefined =>
    r() < 0.03 && !clean ? { properties: [{ name: 'mtime', value: '1' }] } : undefined;
  const dir = create(DirectorySchema, {
    files: Array.from({ length: n(40) }, () => ({
      name: name(),
      digest: digest(),
      isExecutable: r() < 0.3,
      nodeProperties: props(),
    })),
    directories: Array.from({ length: n(10) }, () => ({ name: name(), digest: digest() })),
    symlinks: Array.from({ length: n(6) }, () => ({
      name: name(),
      target: r() < 0.05 && !clean ? '' : `../${name()}`,
      nodeProperties: props(),
    })),
    nodeProperties: r() < 0.03 && !clean ? create(NodePropertiesSchema, {}) : undefined,
  });
  if (clean) {
    // One entry per name.
    const seen = new Set<string>();
    const once = (x: { name: string }): boolean => {
      if (seen.has(x.name)) return false;
      seen.add(x.name);
      return true;
    };
    dir.files = dir.files.filter(once);
    dir.directories = dir.directories.filter(once);
    dir.symlinks = dir.symlinks.filter(once);
  }
  // Mostly sorted, as stored Directories are; sometimes not.
  if (clean || r() < 0.8) {
    const byBytes = (a: { name: string }, b: { name: string }): number =>
      Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
    dir.files.sort(byBytes);
    dir.directories.sort(byBytes);
    dir.symlinks.sort(byBytes);
  }
  if (r() < 0.03 && !clean) dir.$unknown = [{ no: 9, wireType: 0, data: new Uint8Array([1]) }];
  return dir;
}

/** One mistake in a list: a name twice, two names swapped, or one name in two lists. */
export function nearlyValid(r: () => number, dir: Directory): void {
  const lists = [dir.files, dir.directories, dir.symlinks] as { name: string }[][];
  const list = lists[Math.floor(r() * 3)] as { name: string }[];
  const at = Math.floor(r() * list.length);
  const x = list[at];
  if (x === undefined) return;
  const roll = r();
  if (roll < 0.3) list.splice(at, 0, { ...x });
  else if (roll < 0.6 && at + 1 < list.length)
    list.splice(at, 2, list[at + 1] as { name: string }, x);
  else if (roll < 0.8) list.splice(at + 1, 0, { ...x, name: `${x.name}${r() < 0.5 ? '' : 'a'}` });
  else {
    const other = lists.find((l) => l !== list && l.length > 0);
    const y = other?.[Math.floor(r() * other.length)];
    if (y !== undefined) y.name = x.name;
  }
}

/** Random damage to encoded bytes: flips, truncation, duplicated or inserted bytes. */
export function damage(r: () => number, bytes: Uint8Array): Uint8Array {
  const b = [...bytes];
  const roll = r();
  const at = Math.floor(r() * (b.length + 1));
  if (roll < 0.3 && b.length > 0) b[Math.min(at, b.length - 1)] = Math.floor(r() * 256);
  else if (roll < 0.5) b.length = at;
  else if (roll < 0.7) b.splice(at, 0, ...b.slice(at, at + 1 + Math.floor(r() * 90)));
  else if (roll < 0.85) b.splice(at, 0, pick8(r));
  else b.splice(at, 1 + Math.floor(r() * 4));
  return new Uint8Array(b);
}
const pick8 = (r: () => number): number =>
  [0x0a, 0x12, 0x1a, 0x20, 0x10, 0x2a, 0x22, 0x80, 0x00, 0x2e, 0x2f, 0xff][
    Math.floor(r() * 12)
  ] as number;
