// Runs every compiled test file with Node's built-in test runner, then checks
// that the run left nothing of ours in the temporary directory.
// Usage: node scripts/run-tests.js [substring-filter]
import { existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = 'dist/test';
const filter = process.argv[2] ?? '';
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && p.includes(filter)) {
      // tsc never removes what it wrote: a test whose source is gone stays in
      // dist/ until a clean build, and is not run.
      if (existsSync(join('test', p.slice(root.length + 1)).replace(/\.js$/, '.ts'))) files.push(p);
      else console.error(`skipping ${p}: test/ has no source for it (stale build output)`);
    }
  }
};
walk(root);
if (files.length === 0) {
  console.error(`no test files under ${root} match "${filter}"`);
  process.exit(1);
}
// Ours: the prefixes tests give their temporary directories (helpers/tmp.ts).
const ours = (name) => name.startsWith('specbuild-');
const before = new Set(readdirSync(tmpdir()).filter(ours));
// A test that waits for something that never comes fails after 5 minutes
// instead of hanging the run (the slowest, Bazel's, take about a minute).
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=300000', ...files],
  { stdio: 'inherit' },
);
const left = readdirSync(tmpdir()).filter((n) => ours(n) && !before.has(n));
if (left.length > 0) {
  console.error(
    `\nthe tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in ${tmpdir()}:\n  ${left.join('\n  ')}`,
  );
  process.exit(1);
}
process.exit(r.status ?? 1);
