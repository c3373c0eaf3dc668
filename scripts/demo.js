// `npm run demo`: builds examples/hello with the embedded default (the local
// cache and executor, no server), then runs its app from the artifact. The
// cache is the repository's own .cache/ and no user configuration is read, so
// nothing depends on the home directory; a second run finds everything cached.
// Usage: node scripts/demo.js [NAME]   (NAME is passed on to the app)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const project = join(repo, 'examples', 'hello');
const cacheHome = join(repo, '.cache');
const env = {
  ...process.env,
  XDG_CACHE_HOME: cacheHome,
  // A directory with no specbuild/specbuild.yaml in it: the defaults only.
  XDG_CONFIG_HOME: join(cacheHome, 'no-config'),
};
const show = (p) => relative(process.cwd(), p) || '.';

/** Runs the specbuild CLI on the example; exits as it does if it fails. */
function specbuild(args, { quiet = false } = {}) {
  if (!quiet) console.error(`$ specbuild -C ${show(project)} ${args.join(' ')}`);
  const r = spawnSync(
    process.execPath,
    [join(repo, 'dist/src/cli/main.js'), '-C', project, ...args],
    {
      env,
      stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'inherit'],
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  return r.stdout ?? '';
}

/**
 * The element's artifact files into `dir`, read with specbuild's own modules.
 * Stands in for `specbuild artifact checkout ELEMENT --directory DIR`, which
 * replaces it once that command exists.
 */
async function checkout(element, dir) {
  const { ArtifactCache, LocalCas, RefStore, stageTree } = await import('../dist/src/cas/index.js');
  const { normalName } = await import('../dist/src/project/index.js');
  const { fromPb } = await import('../dist/src/reapi/index.js');
  const key = specbuild(['show', '--deps', 'none', '--format', '%{full-key}', element], {
    quiet: true,
  }).trim();
  const cacheDir = join(cacheHome, 'specbuild');
  const cas = await LocalCas.open({ dir: cacheDir });
  const artifacts = new ArtifactCache(cas, new RefStore(join(cacheDir, 'refs', 'artifacts')));
  const art = await artifacts.lookup('hello', normalName(element), key);
  if (art?.files === undefined) throw new Error(`no artifact of ${element} under key ${key}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await stageTree(cas, fromPb(art.files), dir);
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

specbuild(['build', 'hello.bst']);
const dir = join(cacheHome, 'demo', 'app');
await checkout('app.bst', dir);
const app = join(dir, 'usr', 'bin', 'app');
console.error(`$ ${show(app)} ${process.argv.slice(2).join(' ')}`.trimEnd());
const r = spawnSync(app, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status ?? 1);
