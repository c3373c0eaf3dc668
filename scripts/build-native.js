// Compiles specbuild's native helpers (run by `npm run build`): the sandbox
// helper, with the system's C compiler.
import { mkdirSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const helpers = [{ src: 'src/sandbox/native/sandbox.c', out: 'dist/native/specbuild-sandbox' }];
mkdirSync('dist/native', { recursive: true });
for (const h of helpers) {
  const tmp = `${h.out}.tmp-${process.pid}`;
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, h.src], {
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.error(
      `building ${h.out} with ${cc} failed; install a C compiler (apt-get install gcc)`,
    );
    process.exit(1);
  }
  renameSync(tmp, h.out);
}
