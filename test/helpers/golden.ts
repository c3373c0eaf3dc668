// Golden files for contracts (cache keys, user-facing error text): the
// expected text is committed under test/golden/; a mismatch writes NAME.actual
// beside it and fails. `npm run update-golden` rewrites them after a change
// that is meant to move them (review the diff before committing).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const goldenDir = join(repoRoot, 'test', 'golden');

export function assertGolden(name: string, actual: string): void {
  const file = join(goldenDir, name);
  if (process.env.SPECBUILD_UPDATE_GOLDEN === '1') {
    writeFileSync(file, actual);
    rmSync(`${file}.actual`, { force: true });
    return;
  }
  assert.ok(existsSync(file), `golden file ${file} is missing: run npm run update-golden`);
  const expected = readFileSync(file, 'utf8');
  if (expected !== actual) {
    writeFileSync(`${file}.actual`, actual);
    assert.equal(actual, expected, `${name} differs from its golden file (see ${file}.actual)`);
  }
  rmSync(`${file}.actual`, { force: true });
}
