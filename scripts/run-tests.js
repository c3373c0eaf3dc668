// Runs every compiled test file with Node's built-in test runner.
// Usage: node scripts/run-tests.js [substring-filter]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = 'dist/test';
const filter = process.argv[2] ?? '';
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && p.includes(filter)) files.push(p);
  }
};
walk(root);
if (files.length === 0) {
  console.error(`no test files under ${root} match "${filter}"`);
  process.exit(1);
}
// A test that waits for something that never comes fails after 5 minutes
// instead of hanging the run (the slowest, Bazel's, take about a minute).
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
