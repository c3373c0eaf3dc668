// `npm run demo`: speculative actions at work on examples/hello, with the
// embedded default (a local cache and executor, no server).
//  1. builds the example with --speculative-actions full and runs its app;
//  2. changes a header of its lowest element (libbase's version);
//  3. rebuilds with `none` and with `full`, each from a copy of the same
//     starting cache, and prints what each rebuild executed and got from
//     priming.
// Everything lives in the repository's .cache/demo (a copy of the project
// too: the committed example is never changed) and no user configuration is
// read. A second run finds the first build cached.
// Usage: node scripts/demo.js
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const demo = join(repo, '.cache', 'demo');
const project = join(demo, 'project');
const start = join(demo, 'cache');
const show = (p) => relative(process.cwd(), p) || '.';

/** Runs the specbuild CLI on the demo's project with the cache `cache`. */
function specbuild(cache, args, { quiet = false } = {}) {
  if (!quiet) console.error(`$ specbuild -C ${show(project)} ${args.join(' ')}`);
  const r = spawnSync(
    process.execPath,
    [join(repo, 'dist/src/cli/main.js'), '-C', project, ...args],
    {
      env: {
        ...process.env,
        XDG_CACHE_HOME: cache,
        // A directory with no specbuild/specbuild.yaml in it: the defaults only.
        XDG_CONFIG_HOME: join(demo, 'no-config'),
        CI: 'true',
      },
      stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'inherit'],
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r.stdout ?? '';
}

// The sandbox takes its toolchain from the host's /usr.
const missing = ['gcc', 'make', 'ar', 'cmake', 'ninja'].filter(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0,
);
if (missing.length > 0) {
  console.error(
    `demo: the example builds with the host's gcc, make, ar, cmake and ninja; missing: ${missing.join(', ')}\n` +
      '  on Debian: apt-get install gcc make cmake ninja-build (or bash scripts/install-test-deps.sh)',
  );
  process.exit(1);
}
if (!existsSync(join(repo, 'dist', 'native', 'specbuild-cc'))) {
  console.error('demo: specbuild is not built: run npm run build first');
  process.exit(1);
}

// 1. The example as committed, built with full (recording and generating).
await rm(project, { recursive: true, force: true });
await mkdir(demo, { recursive: true });
await cp(join(repo, 'examples', 'hello'), project, { recursive: true });
specbuild(start, ['build', '--speculative-actions', 'full', 'hello.bst']);
const appDir = join(demo, 'app');
await rm(appDir, { recursive: true, force: true });
specbuild(start, ['artifact', 'checkout', 'app.bst', '--directory', appDir], { quiet: true });
const app = join(appDir, 'usr', 'bin', 'app');
console.error(`$ ${show(app)}`);
const ran = spawnSync(app, [], { encoding: 'utf8' });
process.stdout.write(ran.stdout);

// 2. A new version of the lowest element's header.
const header = join(project, 'files', 'libbase', 'include', 'base', 'version.h');
const before = await readFile(header, 'utf8');
const after = before.replace(
  /BASE_VERSION "(\d+)\.(\d+)"/,
  (_, a, b) => `BASE_VERSION "${a}.${Number(b) + 1}"`,
);
if (after === before) throw new Error(`demo: ${header} has no BASE_VERSION to change`);
await writeFile(header, after);
console.error(
  `\n# libbase's include/base/version.h: ${/BASE_VERSION "[^"]*"/.exec(before)?.[0]} -> ${/BASE_VERSION "[^"]*"/.exec(after)?.[0]}; rebuilding from copies of the same cache`,
);

// 3. The same rebuild, without and with speculative actions.
const rows = [];
for (const mode of ['none', 'full']) {
  const cache = join(demo, `rebuild-${mode}`);
  await rm(cache, { recursive: true, force: true });
  await cp(start, cache, { recursive: true });
  const report = join(demo, `rebuild-${mode}.json`);
  const timeline = join(demo, `rebuild-${mode}.html`);
  const t = performance.now();
  specbuild(cache, [
    'build',
    '--speculative-actions',
    mode,
    '--report',
    report,
    '--timeline',
    timeline,
    'hello.bst',
  ]);
  const seconds = (performance.now() - t) / 1000;
  const s = JSON.parse(readFileSync(report, 'utf8')).speculative;
  rows.push({ mode, seconds, ...s });
  await rm(cache, { recursive: true, force: true });
}
const pct = (x) => (x === null ? '-' : `${Math.round(x * 100)}%`);
const table = [
  [
    'rebuild',
    'wall s',
    'executed in build',
    'primed',
    'primed hits',
    'cached hits',
    'precision',
    'recall',
  ],
  ...rows.map((r) => [
    r.mode,
    r.seconds.toFixed(1),
    String(r.misses),
    String(r.primed),
    String(r.hits_primed),
    String(r.hits_cached),
    pct(r.precision),
    pct(r.recall),
  ]),
];
const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
console.log('');
for (const row of table) console.log(row.map((c, i) => c.padStart(widths[i])).join('  '));
console.log(
  `\ntimelines of both rebuilds (open in a browser): ${show(join(demo, 'rebuild-none.html'))}, ${show(join(demo, 'rebuild-full.html'))}`,
);
