// specbuild's own wrappers inside element sandboxes: specbuild-cc and
// specbuild-exec at /usr/bin (on every element's PATH), and the package they
// come from at its own path, read-only, so that the native clients find the
// daemon they start (it then runs inside the sandbox and sees the staged
// headers). None of these paths reaches an action: actions carry the
// compiler's path, the build's working directory and a fixed PATH.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bind } from '../sandbox/index.js';

/** The package root (dist/src/build → the repository or installed package). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const WRAPPERS = ['specbuild-cc', 'specbuild-exec'] as const;

/** Binds that put the wrappers into a sandbox (none if they were not built). */
export function wrapperBinds(root = PACKAGE_ROOT): Bind[] {
  const native = join(root, 'dist', 'native');
  if (!WRAPPERS.every((w) => existsSync(join(native, w)))) return [];
  const binds: Bind[] = [{ src: root, dst: root, readonly: true }];
  // node_modules may be a link out of the package (a git worktree's to the
  // main checkout's, pnpm's store): the daemon needs where it leads too.
  const modules = join(root, 'node_modules');
  const real = existsSync(modules) ? realpathSync(modules) : modules;
  if (real !== modules && !real.startsWith(`${root}/`))
    binds.push({ src: real, dst: real, readonly: true });
  return [
    ...binds,
    ...WRAPPERS.map((w) => ({ src: join(native, w), dst: `/usr/bin/${w}`, readonly: true })),
  ];
}
