// Unpacking an archive with the host's GNU tar (which recognises gzip, xz,
// bzip2, zstd and plain archives by their content), after its listing has
// been checked (tar-listing.ts). Owners are not restored, device nodes are
// left out, and every file is made readable by us so that it can be hashed.
import type { Location } from '../../core/index.js';
import { runCommand, toolEnv } from './command.js';
import { checkTarMembers, parseTarListing } from './tar-listing.js';

export interface ExtractOptions {
  /** How the archive is named in messages (its URL). */
  shown: string;
  at?: Location;
  signal?: AbortSignal;
}

/** Extracts `archive` into the existing empty directory `dest`. */
export async function extractTar(
  archive: string,
  dest: string,
  opts: ExtractOptions,
): Promise<void> {
  const common = { env: toolEnv(), signal: opts.signal, code: 'source/fetch' as const };
  const listing = await runCommand(
    'tar',
    ['-t', '-v', '-P', '--numeric-owner', '--quoting-style=c', '-f', archive],
    { ...common, what: `reading the archive ${opts.shown}`, location: opts.at },
  );
  const skip = checkTarMembers(
    parseTarListing(listing.toString('utf8'), opts.shown),
    opts.shown,
    opts.at,
  );
  await runCommand(
    'tar',
    [
      '-x',
      '--no-same-owner',
      '--no-same-permissions',
      '--touch',
      '--no-wildcards',
      '--anchored',
      ...skip.map((name) => `--exclude=${name}`),
      '-C',
      dest,
      '-f',
      archive,
    ],
    { ...common, what: `extracting ${opts.shown}`, location: opts.at },
  );
  // -R does not follow symlinks; X adds search permission to directories
  // (and keeps files' executable bits as they are).
  await runCommand('chmod', ['-R', 'u+rwX', '--', dest], {
    ...common,
    what: `making ${opts.shown}'s files readable`,
  });
}
