// The text a user sees for a broken project: every problem of the run at
// once, each as file:line:col with the faulty text underlined and a hint,
// pinned in test/golden/diagnostics.expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadGraph, loadProject } from '../../src/project/index.js';
import { formatDiagnostics } from '../../src/cli/render/diagnostic.js';
import { assertGolden } from '../helpers/golden.js';
import { repoRoot } from '../helpers/paths.js';

test('a broken project is reported whole, with locations and hints', async () => {
  const dir = join(repoRoot, 'test', 'fixtures', 'bad-project');
  const p = await loadProject(dir, { maxJobs: 2 });
  assert.ok(p.ok);
  const g = await loadGraph(p.value, ['app.bst']);
  assert.ok(!g.ok);
  assertGolden('diagnostics.expected', formatDiagnostics(g.errors, dir));
});
