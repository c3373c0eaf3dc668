// Bundles the wrapper daemon (its main thread and its worker threads) into
// one file each, beside the modules they come from (dist/src/cli), so that
// paths found from import.meta.url stay the same. A new daemon then loads two
// files instead of resolving and compiling hundreds of modules on each of
// its threads: on the 2-core CI machine, importing the daemon's work took
// 220-310 ms of wall time (380-470 ms of CPU) as modules, 90-110 ms (about
// 220 ms of CPU, Node's own start included) bundled. Every element build
// starts a daemon in its sandbox, so this is paid per element.
//
// esbuild (a devDependency, pinned) because it bundles ESM and the CommonJS
// of @grpc/grpc-js in one pass, in well under a second.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = resolve(root, 'dist/src/cli');

await build({
  entryPoints: {
    'daemon-main.bundle': resolve(cli, 'daemon-main.js'),
    'daemon-worker.bundle': resolve(cli, 'daemon-worker.js'),
  },
  outdir: cli,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  // CommonJS dependencies call require() for Node's built-in modules.
  banner: {
    js: "import { createRequire as specbuildCreateRequire } from 'node:module'; const require = specbuildCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
