// Configuration shared by CLI commands: the cache directory and size parsing.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SpecbuildError } from '../core/index.js';

/** `$XDG_CACHE_HOME/specbuild`, else `~/.cache/specbuild`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'specbuild');
}

/** Parses sizes like `500M`, `20G`, `1.5T` or plain bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  if (m === null) {
    throw new SpecbuildError('cli/usage', `${flag}: "${text}" is not a size`, {
      hint: 'write e.g. 500M, 20G or 1073741824',
    });
  }
  const unit = (m[2] ?? '').toUpperCase();
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit] ?? 1;
  return Math.floor(Number(m[1]) * mult);
}
