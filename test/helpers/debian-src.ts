// Debian source archives fetched by scripts/install-test-deps.sh (zlib) or
// apt-get source (libpng) into .cache/debian-src/: real code nobody here
// wrote, for tests and benchmarks that build it as elements.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const DEBIAN_SRC = join(repoRoot, '.cache', 'debian-src');

export interface Tarball {
  /** Its file name in DEBIAN_SRC, its path, its sha256 and the directory it unpacks to. */
  name: string;
  file: string;
  sha256: string;
  topDir: string;
}

/** The archive in DEBIAN_SRC whose name matches `re` (fails, saying how to fetch it, when missing). */
export function debianTarball(re: RegExp, hint: string): Tarball {
  const name = readdirSync(DEBIAN_SRC).find((n) => re.test(n));
  assert.ok(name, `no ${String(re)} in ${DEBIAN_SRC}: ${hint}`);
  const file = join(DEBIAN_SRC, name);
  const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  const topDir =
    execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n')[0]?.replace(/\/$/, '') ??
    '';
  return { name, file, sha256, topDir };
}
