// examples/hello as a ProjectRig's files, and the change the demo makes to
// it (a new BASE_VERSION in libbase's header), for tests of whole rebuilds.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoRoot } from './paths.js';

export const EXAMPLE_ELEMENTS = ['libbase.bst', 'libmid.bst', 'app.bst', 'hello.bst'];
export const EXAMPLE_HEADER = 'files/libbase/include/base/version.h';

/** Every file of examples/hello, by path relative to it. */
export async function exampleFiles(): Promise<Record<string, string>> {
  const root = join(repoRoot, 'examples', 'hello');
  const out: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out[relative(root, p)] = await readFile(p, 'utf8');
    }
  };
  await walk(root);
  return out;
}

/** The header with its BASE_VERSION's minor number one higher. */
export function bumpedHeader(files: Record<string, string>): Record<string, string> {
  const before = files[EXAMPLE_HEADER] ?? '';
  const after = before.replace(
    /BASE_VERSION "(\d+)\.(\d+)"/,
    (_, a: string, b: string) => `BASE_VERSION "${a}.${Number(b) + 1}"`,
  );
  assert.notEqual(after, before, `${EXAMPLE_HEADER} has a BASE_VERSION`);
  return { [EXAMPLE_HEADER]: after };
}
