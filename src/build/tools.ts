// specbuild's own wrappers inside element sandboxes: specbuild-cc and
// specbuild-exec at /usr/bin (on every element's PATH), and the package they
// come from at its own path, read-only, so that the native clients find the
// daemon they start (it then runs inside the sandbox and sees the staged
// headers). None of these paths reaches an action: actions carry the
// compiler's path, the build's working directory and a fixed PATH.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bind } from '../sandbox/index.js';

/** The package root (dist/src/build → the repository or installed package). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export const WRAPPERS = ['specbuild-cc', 'specbuild-exec'] as const;

/** Binds that put the wrappers into a sandbox (none if they were not built). */
export function wrapperBinds(root = PACKAGE_ROOT): Bind[] {
  const native = join(root, 'dist', 'native');
  if (!WRAPPERS.every((w) => existsSync(join(native, w)))) return [];
  return [
    // Parents before the package, so that a hoisted node_modules above it
    // does not cover it.
    ...moduleDirs(root).map((d) => ({ src: d, dst: d, readonly: true })),
    { src: root, dst: root, readonly: true },
    ...WRAPPERS.map((w) => ({ src: join(native, w), dst: `/usr/bin/${w}`, readonly: true })),
  ];
}

/**
 * The node_modules directories the daemon's imports resolve into that the
 * package's own bind does not show: a worktree's `node_modules` symlink to
 * another checkout's, or a hoisted one above an installed package (the
 * sandbox's root holds only the host's /usr and /etc). Real paths, outermost
 * first.
 */
export function moduleDirs(root: string): string[] {
  const realRoot = realpathSync(root);
  const out = new Set<string>();
  for (let dir = root; ; dir = dirname(dir)) {
    const nm = join(dir, 'node_modules');
    if (existsSync(nm)) {
      const real = realpathSync(nm);
      if (!inside(real, root) && !inside(real, realRoot) && !inside(real, '/usr')) out.add(real);
    }
    if (dirname(dir) === dir) break;
  }
  return [...out].sort((a, b) => a.length - b.length);
}

function inside(path: string, dir: string): boolean {
  const r = relative(dir, path);
  return r === '' || (!r.startsWith('..') && !r.startsWith('/'));
}
