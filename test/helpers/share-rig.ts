// A small project for artifact push | pull tests that need no compiler (one
// import element), and the pieces those tests repeat: writing a rig's user
// configuration with certificates beside it, its element's key, and what a
// checkout of the element holds.
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ran, specbuild } from './cli-rig.js';
import { PROJECT_CONF, type ProjectRig } from './project-rig.js';

/** The content of the element's one file. */
export const NOTES = 'shared over the network\n';

/** notes.bst: an import element of one file, share/notes.txt. */
export const NOTES_PROJECT = {
  'project.conf': PROJECT_CONF,
  'elements/notes.bst': 'kind: import\nsources:\n- kind: local\n  path: notes\n',
  'notes/share/notes.txt': NOTES,
};

/** The rig's user configuration directory. */
export function configDir(rig: ProjectRig): string {
  return join(rig.scratch, 'xdg-config', 'specbuild');
}

/** Writes the rig's user configuration (lines), `files` copied beside it; returns its path. */
export async function configure(
  rig: ProjectRig,
  yaml: string[],
  files: string[] = [],
): Promise<string> {
  const dir = configDir(rig);
  await mkdir(dir, { recursive: true });
  for (const f of files) await copyFile(f, join(dir, basename(f)));
  const file = join(dir, 'specbuild.yaml');
  await writeFile(file, [...yaml, ''].join('\n'));
  return file;
}

/** notes.bst's strong key. */
export async function notesKey(rig: ProjectRig): Promise<string> {
  const r = await specbuild(rig, [
    'show',
    '--deps',
    'none',
    '--format',
    '%{full-key}',
    'notes.bst',
  ]);
  assert.equal(r.code, 0, ran(r));
  return r.stdout.trim();
}

/** share/notes.txt as `artifact checkout notes.bst` writes it. */
export async function checkedOutNotes(rig: ProjectRig): Promise<string> {
  const out = join(rig.scratch, 'checkout');
  const r = await specbuild(rig, ['artifact', 'checkout', 'notes.bst', '--directory', out]);
  assert.equal(r.code, 0, ran(r));
  return readFile(join(out, 'share', 'notes.txt'), 'utf8');
}
