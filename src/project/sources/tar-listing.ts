// What an archive would write, read before anything is extracted: GNU tar's
// verbose listing (names C-quoted, so any byte in a name parses back), and
// the checks that keep extraction inside its directory: no absolute member,
// no `..`, no member or hard link reached through a symlink of the archive.
// Device nodes and FIFOs are not content: they are left out, as BuildStream
// leaves them out.
import { SpecbuildError, type Location } from '../../core/index.js';

export type TarMemberType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'special';

export interface TarMember {
  type: TarMemberType;
  /** The name as stored (what tar matches an --exclude against). */
  name: string;
  /** Link target as stored (symlinks and hard links). */
  link?: string;
}

const TYPES: Readonly<Record<string, TarMemberType>> = {
  '-': 'file',
  C: 'file',
  d: 'dir',
  l: 'symlink',
  h: 'hardlink',
  c: 'special',
  b: 'special',
  p: 'special',
};

const ESCAPES: Readonly<Record<string, number>> = {
  a: 7,
  b: 8,
  t: 9,
  n: 10,
  v: 11,
  f: 12,
  r: 13,
  '"': 34,
  '\\': 92,
  '?': 63,
};

/** Reads a C-quoted string starting at `text[start] === '"'`; returns it and the index after it. */
function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  const bytes: number[] = [];
  let i = start + 1;
  while (i < text.length) {
    const c = text[i] ?? '';
    if (c === '"') return { value: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      i++;
      continue;
    }
    const e = text[i + 1] ?? '';
    const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
    if (oct !== null) {
      bytes.push(parseInt(oct[0], 8) & 0xff);
      i += 1 + oct[0].length;
    } else if (e in ESCAPES) {
      bytes.push(ESCAPES[e] ?? 0);
      i += 2;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Parses the output of `tar -tv --quoting-style=c --numeric-owner`; a line
 * that does not parse is an error (an archive we cannot check is not extracted).
 */
export function parseTarListing(text: string, archive: string): TarMember[] {
  const out: TarMember[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const bad = (why: string): SpecbuildError =>
      new SpecbuildError('source/fetch', `${archive}: ${why}: ${line.slice(0, 200)}`);
    const type = TYPES[line[0] ?? ''];
    if (type === undefined) throw bad('unsupported archive member type');
    const q = line.indexOf('"');
    const name = q < 0 ? undefined : readQuoted(line, q);
    if (name === undefined) throw bad('cannot read the listing of the archive');
    const rest = line.slice(name.end);
    const member: TarMember = { type, name: name.value };
    if (type === 'symlink' || type === 'hardlink') {
      const sep = type === 'symlink' ? ' -> ' : ' link to ';
      const target = rest.startsWith(sep) ? readQuoted(rest, sep.length) : undefined;
      if (target === undefined) throw bad('cannot read a link target in the listing');
      member.link = target.value;
    }
    out.push(member);
  }
  return out;
}

/** The components of a member name, without `.` and empty ones. */
function components(name: string): string[] {
  return name.split('/').filter((p) => p !== '' && p !== '.');
}

/**
 * Refuses an archive whose extraction could write outside its directory;
 * returns the names of members to leave out (device nodes, FIFOs).
 */
export function checkTarMembers(
  members: readonly TarMember[],
  archive: string,
  at?: Location,
): string[] {
  const refuse = (why: string): SpecbuildError =>
    new SpecbuildError('source/fetch', `${archive}: ${why}; the archive is not extracted`, {
      location: at,
      hint: 'an archive must keep every member inside the directory it is extracted into',
    });
  const checkPath = (name: string, subject: string): void => {
    if (name.startsWith('/')) throw refuse(`${subject} is an absolute path`);
    if (components(name).includes('..')) throw refuse(`${subject} contains ".."`);
  };
  const symlinks = new Set<string>();
  for (const m of members) if (m.type === 'symlink') symlinks.add(components(m.name).join('/'));
  const underSymlink = (name: string): string | undefined => {
    const parts = components(name);
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) return prefix;
    }
    return undefined;
  };
  const skip: string[] = [];
  for (const m of members) {
    checkPath(m.name, `member "${m.name}"`);
    const via = underSymlink(m.name);
    if (via !== undefined) throw refuse(`member "${m.name}" lies under the symlink "${via}"`);
    if (m.type === 'hardlink') {
      checkPath(m.link ?? '', `the target "${m.link ?? ''}" of hard link "${m.name}"`);
      const lvia = underSymlink(m.link ?? '');
      if (lvia !== undefined)
        throw refuse(`hard link "${m.name}" points through the symlink "${lvia}"`);
    }
    if (m.type === 'special') skip.push(m.name);
  }
  return skip;
}
