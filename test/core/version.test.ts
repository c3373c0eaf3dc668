import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SPECBUILD_VERSION } from '../../src/core/index.js';
import { repoRoot } from '../helpers/paths.js';

test('the version tools report to servers is package.json version', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  assert.equal(SPECBUILD_VERSION, pkg.version);
});
