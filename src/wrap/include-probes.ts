// Direct mode's guard against shadowing headers. A compile's dependency list
// says which files it read, not which files it looked for and did not find:
// `#include <stdio.h>` found in /usr/include was first looked for in every
// directory earlier on the include search path, and a quoted include in the
// including file's own directory. A file that appears in one of those places
// later changes what the compile reads although no listed file changed
// (ccache's direct mode has this blind spot and documents it). So, with each
// dependency list, we keep the paths where a listed header would have been
// found first had it existed, and direct mode is used only while they still
// do not exist. A path whose directory does not exist is kept as that
// directory (the shallowest one missing): a file cannot appear without it,
// and one stat then stands for every candidate under it.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * The version of the rules below, part of direct mode's key: entries a
 * daemon remembered under older rules (whose absent lists miss paths these
 * watch) are not used, and each compile is scanned once again.
 */
export const PROBE_RULES = 2;

/** The compiler's include search chain: quote-only directories, then the <...> ones, in order. */
export interface SearchPath {
  quote: string[];
  bracket: string[];
  /**
   * Directories to search that did not exist (`ignoring nonexistent
   * directory`, or a file there), left out of the chain; where they would
   * stand in it is not printed, so each is taken as coming before all of it.
   */
  missing: string[];
}

/**
 * Reads the search list gcc (and clang) print with -v: the directories
 * between `#include "..." search starts here:`, `#include <...> search starts
 * here:` and `End of search list.`, and the ones it ignored as nonexistent,
 * resolved against the command's directory. Undefined when the text has no
 * search list.
 */
export function parseSearchPath(verbose: string, cwd: string): SearchPath | undefined {
  const quote: string[] = [];
  const bracket: string[] = [];
  const missing: string[] = [];
  let into: string[] | undefined;
  let seen = false;
  for (const raw of verbose.split('\n')) {
    const line = raw.trimEnd();
    const gone =
      /^ignoring nonexistent directory "(.*)"$/.exec(line) ??
      /^\S+: warning: (.*): not a directory$/.exec(line); // gcc's for a file there
    // Kept as printed, joined to cwd but not normalised: `nosuch/..` is
    // missing while `nosuch` is, though normalised it names cwd, which
    // exists (cc.ts reads the search path again once one exists).
    if (gone?.[1] !== undefined)
      missing.push(gone[1].startsWith('/') ? gone[1] : `${cwd}/${gone[1]}`);
    else if (line.startsWith('#include "..." search starts here:')) {
      into = quote;
      seen = true;
    } else if (line.startsWith('#include <...> search starts here:')) {
      into = bracket;
      seen = true;
    } else if (line.startsWith('End of search list.')) {
      into = undefined;
    } else if (into !== undefined && line.startsWith(' ')) {
      into.push(resolve(cwd, line.trim().replace(/ \(framework directory\)$/, '')));
    }
  }
  return seen ? { quote, bracket, missing: [...new Set(missing)] } : undefined;
}

/** What is at a path: a directory, something else, or nothing. */
export type PathKind = 'dir' | 'other' | undefined;

/** What is at `p` now; nothing when a component of it is not a directory (ENOTDIR). */
export function kindAt(p: string): PathKind {
  const s = statOrUndefined(p);
  return s === undefined ? undefined : s.isDirectory() ? 'dir' : 'other';
}

function statOrUndefined(p: string): ReturnType<typeof statSync> {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** The directory of an absolute, normalised path ("/" for a top-level one). */
function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** `name` (relative, normalised) under directory `dir` (absolute, normalised): resolve() without its cost. */
function under2(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/**
 * Where to watch for `c` (absolute, normalised) appearing: nowhere when it
 * exists; else its shallowest ancestor that does not exist, or `c` itself
 * when its directory exists, or when an ancestor is a file (`c` appears only
 * if that file becomes a directory). Walked from `c` up: most candidates'
 * directories exist, one (memoised) look each.
 */
function watchPoint(c: string, kind: (p: string) => PathKind): string | undefined {
  let top = c;
  for (let dir = parentOf(c); dir !== '/'; dir = parentOf(dir)) {
    const k = kind(dir);
    if (k === 'dir') break;
    if (k === 'other') return c;
    top = dir;
  }
  if (top !== c) return top;
  return kind(c) === undefined ? c : undefined;
}

/** What of the command, beside its search path, says where headers are looked for. */
export interface ProbeScope {
  /** The command's working directory: where -include and -imacros files are looked for first. */
  cwd: string;
  /** The -include and -imacros files, as given. */
  forced: readonly string[];
  /**
   * The compiler's default <...> directories (those `-v` prints with no
   * flags): headers under them are its system headers, whose directories
   * are not watched as includers'. Empty: every header is the project's.
   */
  system: readonly string[];
}

/**
 * Paths that did not exist and at which a header of `deps` would have been
 * found before where it was: the directories earlier on the search chain
 * (and, for a header found through it, the missing ones), for headers
 * outside the compiler's system directories the directories of the
 * project's own files (where a quoted include looks first), and for the -include and -imacros files the working
 * directory; each as its shallowest missing directory when it has one.
 * `deps` are absolute and normalised; `source` is the compiled file.
 */
export function absentCandidates(
  source: string,
  deps: readonly string[],
  path: SearchPath,
  scope: ProbeScope,
  kind: (p: string) => PathKind = kindAt,
): string[] {
  const chain = [...new Set([...path.quote, ...path.bracket])];
  const known = new Map<string, PathKind | null>();
  const once = (p: string): PathKind => {
    let k = known.get(p);
    if (k === undefined) {
      k = kind(p) ?? null;
      known.set(p, k);
    }
    return k ?? undefined;
  };
  const watched = new Set<string>();
  // The directories gcc ignored as missing (kept as it printed them,
  // normalised here): while one is still missing, it is watched once, as
  // itself or its shallowest missing ancestor, for every header; one that
  // exists now (made since the search path was read) is a place each
  // header is watched in.
  const missing: string[] = [];
  for (const d of new Set(path.missing.map((m) => resolve(m)))) {
    const w = watchPoint(d, once);
    if (w === undefined) missing.push(d);
    else watched.add(w);
  }
  const own = (p: string): boolean => !scope.system.some((d) => under(p, d));
  const includers = [...new Set([source, ...deps].filter(own).map((p) => dirname(p)))];
  const out = new Set<string>();
  const add = (dirs: readonly string[], name: string, p: string): void => {
    for (const d of dirs) {
      const c = under2(d, name);
      if (c !== p) out.add(c);
    }
  };
  for (const p of deps) {
    if (p === source) continue;
    // Which search directory found p is not said: include/config.h under -I.
    // -Iinclude was found as config.h through include (./config.h first) or
    // as include/config.h through . (nothing first). Each directory p is
    // under is taken as the one, and the candidates of all of them kept.
    // None: found relative to its includer, where nothing is looked at before.
    for (const [k, dir] of chain.entries()) {
      if (!under(p, dir)) continue;
      const name = p.slice(dir === '/' ? 1 : dir.length + 1);
      add(missing, name, p);
      add(chain.slice(0, k), name, p);
      if (own(p)) add(includers, name, p);
    }
  }
  // gcc (and clang) look for an -include file in the working directory
  // first, and then along the quote chain, as split above.
  for (const f of scope.forced) out.add(resolve(scope.cwd, f));
  for (const c of out) {
    const w = watchPoint(c, once);
    if (w !== undefined) watched.add(w);
  }
  return [...watched].sort();
}

/** Whether `p` is inside directory `dir`. */
function under(p: string, dir: string): boolean {
  return p.startsWith(dir === '/' ? dir : `${dir}/`);
}

/** The first of `paths` that exists now, or undefined when none does. */
export function firstPresent(paths: readonly string[]): string | undefined {
  return paths.find((p) => statOrUndefined(p) !== undefined);
}
