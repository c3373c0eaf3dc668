// Validation of names and relative paths that arrive in protocol messages:
// what may appear in a Directory entry, an output path or a working directory.
import { SpecbuildError } from '../core/index.js';

declare const nameBrand: unique symbol;
/** One path component: non-empty, no `/`, not `.` or `..`, no NUL. */
export type EntryName = string & { readonly [nameBrand]: true };

declare const relBrand: unique symbol;
/** A normalised relative path: components are EntryNames joined by `/`, or "" for the root. */
export type RelPath = string & { readonly [relBrand]: true };

function validName(name: string): boolean {
  return (
    name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0')
  );
}

export function checkName(name: string, where: string): EntryName {
  if (!validName(name)) {
    throw new SpecbuildError(
      'reapi/invalid-name',
      `${where}: "${name.slice(0, 100)}" is not a valid entry name`,
      { hint: 'names must be non-empty, must not be "." or "..", and contain no "/" or NUL' },
    );
  }
  return name as EntryName;
}

/**
 * Checks a relative path such as an output path or working directory. The
 * empty string is the root; `a//b`, `./a`, `a/..`, `/a` and trailing `/` are rejected.
 */
export function checkRelPath(path: string, where: string): RelPath {
  if (path === '') return path as RelPath;
  if (path.startsWith('/')) {
    throw new SpecbuildError(
      'reapi/invalid-path',
      `${where}: "${path.slice(0, 200)}" is absolute`,
      {
        hint: 'paths in REAPI messages are relative to the input root',
      },
    );
  }
  // The message only for a bad part: a compile's input tree checks ~40 paths of ~6 parts each.
  for (const part of path.split('/'))
    if (!validName(part)) checkName(part, `${where} "${path.slice(0, 200)}"`);
  return path as RelPath;
}
