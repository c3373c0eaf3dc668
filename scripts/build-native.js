// Compiles specbuild's native helpers (run by `npm run build`) with the
// system's C compiler: the sandbox helper, the daemon's command spawner, and
// the wrapper client, installed
// as specbuild-cc and specbuild-exec (hard links; it reads its own name), with
// this Node and the daemon's entry point compiled in.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** A C string literal for a -D definition (JSON's escapes for " and \ are C's). */
const cString = (s) => JSON.stringify(s);

/**
 * Identifies this build of the daemon and client: the default daemon socket is
 * named after it, so that after a rebuild (or from another checkout) clients
 * start a daemon of their own build instead of talking to a stale one.
 */
function buildId() {
  const h = createHash('sha256');
  h.update(process.execPath);
  const dir = resolve(root, 'dist/src');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .sort();
  for (const f of files) {
    h.update(`${f}\0`);
    h.update(readFileSync(resolve(dir, f)));
  }
  h.update(readFileSync(resolve(root, 'src/wrap/native/client.c')));
  return h.digest('hex').slice(0, 16);
}

const id = buildId();
const helpers = [
  { src: 'src/sandbox/native/sandbox.c', out: 'dist/native/specbuild-sandbox' },
  // Runs the daemon's commands: a small process forks cheaply, the daemon does not.
  { src: 'src/wrap/native/spawner.c', out: 'dist/native/specbuild-spawner', flags: ['-std=gnu11'] },
  {
    src: 'src/wrap/native/client.c',
    out: 'dist/native/specbuild-client',
    flags: [
      '-std=gnu11',
      `-DSPECBUILD_NODE=${cString(process.execPath)}`,
      `-DSPECBUILD_DAEMON_JS=${cString(resolve(root, 'dist/src/cli/daemon-main.bundle.js'))}`,
      `-DSPECBUILD_BUILD_ID=${cString(id)}`,
    ],
    links: ['dist/native/specbuild-cc', 'dist/native/specbuild-exec'],
  },
];
mkdirSync('dist/native', { recursive: true });
// The daemon reads it (native-answers.ts): the client takes answers only from its own build.
writeFileSync('dist/native/build-id', `${id}\n`);
for (const h of helpers) {
  const tmp = `${h.out}.tmp-${process.pid}`;
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(
    cc,
    ['-O2', '-Wall', '-Wextra', '-Werror', ...(h.flags ?? []), '-o', tmp, h.src],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) {
    console.error(
      `building ${h.out} with ${cc} failed; install a C compiler (apt-get install gcc)`,
    );
    process.exit(1);
  }
  renameSync(tmp, h.out);
  for (const link of h.links ?? []) {
    rmSync(link, { force: true });
    try {
      linkSync(h.out, link);
    } catch {
      copyFileSync(h.out, link); // keeps the mode; for file systems without hard links
    }
  }
}
