// Named references to blobs (artifact records by project, element and cache
// key): one small file per name holding `hash/size`, written to a temporary
// file and renamed, so that a crash leaves the old reference or the new one,
// never half of either.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { errnoCode, SpecbuildError } from '../core/index.js';
import { digestKey, parseDigestString, type Digest } from '../reapi/index.js';

/** A ref name: slash-separated segments of [A-Za-z0-9._-], none "." or "..". */
function checkRef(name: string): string {
  const parts = name.split('/');
  if (
    name === '' ||
    parts.some((p) => p === '' || p === '.' || p === '..' || !/^[A-Za-z0-9._-]+$/.test(p))
  )
    throw new SpecbuildError(
      'reapi/invalid-name',
      `"${name.slice(0, 200)}" is not a valid ref name`,
    );
  return name;
}

export class RefStore {
  constructor(readonly dir: string) {}

  private path(name: string): string {
    return join(this.dir, checkRef(name));
  }

  async get(name: string): Promise<Digest | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(name), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw new SpecbuildError('cas/io', `cannot read ref ${name}`, { cause: e });
    }
    try {
      return parseDigestString(text.trim(), `ref ${name}`);
    } catch {
      return undefined; // a damaged ref is a miss
    }
  }

  async set(name: string, d: Digest): Promise<void> {
    const file = this.path(name);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, `${digestKey(d)}\n`);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw errnoCode(e) === 'ENOSPC'
        ? new SpecbuildError('cas/full', `no space left to write ref ${name}`, { cause: e })
        : new SpecbuildError('cas/io', `cannot write ref ${name}`, { cause: e });
    }
  }

  async delete(name: string): Promise<boolean> {
    try {
      await rm(this.path(name));
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /** Every ref name under `prefix` (a ref path without trailing slash, or ''). */
  async list(prefix = ''): Promise<string[]> {
    const root = prefix === '' ? this.dir : join(this.dir, checkRef(prefix));
    const out: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let names;
      try {
        names = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of names) {
        if (e.name.includes('.tmp-')) continue;
        const r = rel === '' ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(join(dir, e.name), r);
        else out.push(r);
      }
    };
    await walk(root, prefix);
    return out.sort();
  }
}
