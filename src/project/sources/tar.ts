// The `tar` source: an archive named by `url` and pinned by `ref`, the
// sha256 of the archive file. Fetching copies the archive into
// sourceDir/tar/<sha256> once it has been verified; staging unpacks it,
// keeps `base-dir`, and stores that tree in the CAS (recorded by key, so the
// next stage of the same key is a lookup).
import { createReadStream } from 'node:fs';
import { access, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, SpecbuildError, tempPathFor } from '../../core/index.js';
import { DigestBuilder, digestOfFile, type Digest } from '../../reapi/index.js';
import type { SourceDecl } from '../source-decl.js';
import type { Plain } from '../yaml.js';
import { findBaseDir } from './base-dir.js';
import { extractTar } from './extract-tar.js';
import { requireRef, requireSetting, checkRef } from './source-settings.js';
import type { Source, SourceEnv } from './source.js';
import { localPathOfUrl } from './source-url.js';
import { stageCached } from './staged-cache.js';
import { uploadDirectory, withScratchDir } from './staging-dir.js';

const SHA256_RE = /^[0-9a-f]{64}$/;

export class TarSource implements Source {
  readonly url: string;
  readonly ref: string | undefined;
  readonly baseDir: string;

  constructor(readonly decl: SourceDecl) {
    this.url = requireSetting(decl, 'url', 'url: upstream:pkg-1.0.tar.gz');
    this.ref = checkRef(decl, SHA256_RE, 'the sha256 of the archive (64 lowercase hex digits)');
    this.baseDir = decl.config['base-dir'] ?? '*';
  }

  /** BuildStream's unique key of a tar source: the URL as written (aliases untranslated), ref, base-dir. */
  key(): Promise<Plain | undefined> {
    return Promise.resolve(this.ref === undefined ? undefined : [this.url, this.ref, this.baseDir]);
  }

  private archivePath(env: SourceEnv, ref: string): string {
    return join(env.sourceDir, 'tar', ref);
  }

  /** The URL as written, and where it leads when that differs. */
  private shown(path: string): string {
    return path === this.url ? `"${this.url}"` : `"${this.url}" (${path})`;
  }

  /** As shown(), for messages after the fetch (when the URL may no longer resolve). */
  private describe(env: SourceEnv): string {
    try {
      return this.shown(localPathOfUrl(env.project, this.url, undefined));
    } catch {
      return `"${this.url}"`;
    }
  }

  async isCached(env: SourceEnv): Promise<boolean> {
    if (this.ref === undefined) return false;
    return access(this.archivePath(env, this.ref)).then(
      () => true,
      () => false,
    );
  }

  async fetch(env: SourceEnv): Promise<void> {
    const ref = requireRef(this.decl, this.ref, 'fetched');
    if (await this.isCached(env)) return;
    const path = localPathOfUrl(env.project, this.url, this.decl.keyAt.url);
    const dest = this.archivePath(env, ref);
    await mkdir(join(env.sourceDir, 'tar'), { recursive: true });
    const tmp = tempPathFor(dest);
    let actual: Digest;
    try {
      actual = await copyHashing(path, tmp, env.signal);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'EISDIR')
        throw new SpecbuildError('source/fetch', `${this.shown(path)} is not a file`, {
          location: this.decl.keyAt.url ?? this.decl.at,
          cause: e,
        });
      throw SpecbuildError.from(e, 'source/fetch', { location: this.decl.keyAt.url });
    }
    if (actual.hash !== ref) {
      await unlink(tmp).catch(() => undefined);
      throw new SpecbuildError(
        'source/digest-mismatch',
        `${this.shown(path)} has sha256 ${actual.hash}, but its ref is ${ref}`,
        {
          location: this.decl.keyAt.ref ?? this.decl.at,
          hint: 'if the archive was meant to change, run specbuild source track on the element to take its new sha256 as the ref',
        },
      );
    }
    await rename(tmp, dest);
  }

  async stage(env: SourceEnv): Promise<Digest> {
    const ref = requireRef(this.decl, this.ref, 'staged');
    return stageCached(env, 'tar', [this.url, ref, this.baseDir], async () => {
      await this.fetch(env);
      return withScratchDir(env, async (dir) => {
        const shown = this.describe(env);
        await extractTar(this.archivePath(env, ref), dir, {
          shown,
          at: this.decl.keyAt.url ?? this.decl.at,
          signal: env.signal,
        });
        const base = await findBaseDir(dir, this.baseDir);
        if (base === undefined)
          throw new SpecbuildError(
            'source/fetch',
            `no directory of the archive ${shown} matches base-dir "${this.baseDir}"`,
            {
              location: this.decl.keyAt['base-dir'] ?? this.decl.at,
              hint: "set base-dir to one of the archive's directories, or to '' for its root",
            },
          );
        return uploadDirectory(env, join(dir, base));
      });
    });
  }

  /** The sha256 of the file at the URL now. */
  async track(env: SourceEnv): Promise<string> {
    const path = localPathOfUrl(env.project, this.url, this.decl.keyAt.url);
    try {
      return (await digestOfFile(path)).hash;
    } catch (e) {
      throw new SpecbuildError('source/track', `cannot read ${this.shown(path)}: ${String(e)}`, {
        location: this.decl.keyAt.url ?? this.decl.at,
        cause: e,
      });
    }
  }
}

/** Copies `from` to the new file `to`, returning the digest of what was copied. */
async function copyHashing(from: string, to: string, signal?: AbortSignal): Promise<Digest> {
  const b = new DigestBuilder();
  const fh = await open(to, 'wx', 0o444);
  try {
    for await (const chunk of createReadStream(from, { highWaterMark: 1 << 20, signal })) {
      const buf = chunk as Buffer;
      b.update(buf);
      await fh.write(buf);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return b.digest();
}
