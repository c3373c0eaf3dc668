// Locates the native sandbox helper, compiling it with the system's C
// compiler on first use when `npm run build` has not already done so.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpecbuildError } from '../core/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/sandbox → repository root. */
const root = resolve(here, '..', '..', '..');
const source = join(root, 'src', 'sandbox', 'native', 'sandbox.c');
const binary = join(root, 'dist', 'native', 'specbuild-sandbox');

let checked: string | undefined;

export function sandboxHelper(): string {
  if (checked !== undefined) return checked;
  if (!existsSync(binary)) {
    if (!existsSync(source)) {
      throw new SpecbuildError('sandbox/unavailable', `the sandbox helper ${binary} is missing`, {
        hint: 'run "npm run build"',
      });
    }
    mkdirSync(dirname(binary), { recursive: true });
    const tmp = `${binary}.tmp-${process.pid}`;
    const cc = process.env.CC ?? 'cc';
    const r = spawnSync(cc, ['-O2', '-o', tmp, source], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new SpecbuildError(
        'sandbox/unavailable',
        `cannot compile the sandbox helper with ${cc}: ${r.stderr || String(r.error)}`,
        {
          hint: 'install a C compiler (apt-get install gcc) or run "npm run build"',
        },
      );
    }
    renameSync(tmp, binary);
  }
  checked = binary;
  return binary;
}
