// A tar source's `base-dir`: which directory of the archive becomes the
// source's root. The glob is matched against every directory of the
// extracted tree (relative paths, `*` and `?` not crossing `/`, `**`
// crossing it) and the first match in sorted order wins; so the default `*`
// picks the archive's first top-level directory. `''` is the archive root.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A glob as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = close;
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Every directory below `root`, as sorted relative paths (symlinks are not followed). */
async function directoriesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      out.push(p);
      await walk(p);
    }
  };
  await walk('');
  return out.sort();
}

/** The directory `pattern` selects below `root` ('' for root itself), or undefined. */
export async function findBaseDir(root: string, pattern: string): Promise<string | undefined> {
  const normal = pattern
    .split('/')
    .filter((p) => p !== '' && p !== '.')
    .join('/');
  if (normal === '') return '';
  const re = globToRegExp(normal);
  return (await directoriesUnder(root)).find((d) => re.test(d));
}
