// The `git` source: a commit (`ref`, 40 hex digits) of a local repository
// (`url`), optionally following a branch (`track`). Fetching keeps a bare
// mirror of the repository under sourceDir/git/, cloned once and fetched
// into afterwards; staging checks the commit out of the mirror into scratch
// space (through a temporary index, so the mirror is never changed) and
// stores that tree in the CAS, recorded by key like a tar source's.
import { createHash } from 'node:crypto';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, SpecbuildError, tempPathFor } from '../../core/index.js';
import type { Digest } from '../../reapi/index.js';
import type { SourceDecl } from '../source-decl.js';
import type { Plain } from '../yaml.js';
import { git, gitSucceeds } from './git-command.js';
import { checkRef, requireRef, requireSetting } from './source-settings.js';
import type { Source, SourceEnv } from './source.js';
import { localPathOfUrl } from './source-url.js';
import { stageCached } from './staged-cache.js';
import { uploadDirectory, withScratchDir } from './staging-dir.js';

const COMMIT_RE = /^[0-9a-f]{40}$/;

function parseBool(decl: SourceDecl, key: string, fallback: boolean): boolean {
  const v = decl.config[key];
  if (v === undefined || v === '') return fallback;
  if (['True', 'true', '1'].includes(v)) return true;
  if (['False', 'false', '0'].includes(v)) return false;
  throw new SpecbuildError('load/invalid-value', `${key}: "${v}" is not a boolean`, {
    location: decl.keyAt[key] ?? decl.at,
    hint: 'write true or false',
  });
}

export class GitSource implements Source {
  readonly url: string;
  readonly ref: string | undefined;
  readonly trackBranch: string | undefined;
  readonly checkoutSubmodules: boolean;

  constructor(readonly decl: SourceDecl) {
    this.url = requireSetting(decl, 'url', 'url: upstream:project.git');
    this.ref = checkRef(decl, COMMIT_RE, 'a full commit id (40 lowercase hex digits)');
    const track = decl.config.track;
    this.trackBranch = track === undefined || track === '' ? undefined : track;
    this.checkoutSubmodules = parseBool(decl, 'checkout-submodules', true);
    if (this.ref === undefined && this.trackBranch === undefined)
      throw new SpecbuildError('load/missing-key', 'a git source needs a ref, a track, or both', {
        location: decl.at,
        hint: 'add track: <branch>, then run specbuild source track on the element',
      });
  }

  /** The unique key: the URL as written (aliases untranslated) and the commit. */
  key(): Promise<Plain | undefined> {
    return Promise.resolve(this.ref === undefined ? undefined : [this.url, this.ref]);
  }

  /** The repository on this machine. */
  private origin(env: SourceEnv): string {
    return localPathOfUrl(env.project, this.url, this.decl.keyAt.url);
  }

  /** The mirror of a repository, named by where it is (so two projects never share one by accident). */
  private mirrorOf(env: SourceEnv, origin: string): string {
    return join(env.sourceDir, 'git', createHash('sha256').update(origin).digest('hex'));
  }

  private shown(origin: string): string {
    return origin === this.url ? `"${this.url}"` : `"${this.url}" (${origin})`;
  }

  private async hasMirror(mirror: string): Promise<boolean> {
    return access(join(mirror, 'HEAD')).then(
      () => true,
      () => false,
    );
  }

  private hasCommit(env: SourceEnv, mirror: string, ref: string): Promise<boolean> {
    return gitSucceeds(env, ['cat-file', '-e', `${ref}^{commit}`], { gitDir: mirror });
  }

  /** Clones the mirror, or brings an existing one up to date with its origin. */
  private async updateMirror(env: SourceEnv, origin: string, mirror: string): Promise<void> {
    const at = this.decl.keyAt.url ?? this.decl.at;
    if (await this.hasMirror(mirror)) {
      await git(env, ['fetch', '--prune', '--quiet', 'origin'], {
        gitDir: mirror,
        what: `fetching ${this.shown(origin)}`,
        location: at,
      });
      return;
    }
    await mkdir(join(env.sourceDir, 'git'), { recursive: true });
    const tmp = tempPathFor(mirror);
    try {
      await git(env, ['clone', '--mirror', '--quiet', '--', origin, tmp], {
        what: `cloning ${this.shown(origin)}`,
        location: at,
      });
      await rename(tmp, mirror).catch((e: unknown) => {
        // Another process made the mirror meanwhile: use that one.
        if (errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  async isCached(env: SourceEnv): Promise<boolean> {
    if (this.ref === undefined) return false;
    const mirror = this.mirrorOf(env, this.origin(env));
    return (await this.hasMirror(mirror)) && this.hasCommit(env, mirror, this.ref);
  }

  async fetch(env: SourceEnv): Promise<void> {
    const ref = requireRef(this.decl, this.ref, 'fetched');
    const origin = this.origin(env);
    const mirror = this.mirrorOf(env, origin);
    if ((await this.hasMirror(mirror)) && (await this.hasCommit(env, mirror, ref))) return;
    await this.updateMirror(env, origin, mirror);
    if (!(await this.hasCommit(env, mirror, ref)))
      throw new SpecbuildError('source/fetch', `commit ${ref} is not in ${this.shown(origin)}`, {
        location: this.decl.keyAt.ref ?? this.decl.at,
        hint: 'check the ref, or run specbuild source track on the element to take the newest commit of its branch',
      });
  }

  async stage(env: SourceEnv): Promise<Digest> {
    const ref = requireRef(this.decl, this.ref, 'staged');
    return stageCached(env, 'git', [this.url, ref], async () => {
      await this.fetch(env);
      const origin = this.origin(env);
      const mirror = this.mirrorOf(env, origin);
      if (
        this.checkoutSubmodules &&
        (await gitSucceeds(env, ['cat-file', '-e', `${ref}:.gitmodules`], { gitDir: mirror }))
      )
        throw new SpecbuildError(
          'source/fetch',
          `commit ${ref} of ${this.shown(origin)} has submodules (.gitmodules), which specbuild does not check out`,
          {
            location: this.decl.keyAt['checkout-submodules'] ?? this.decl.at,
            hint: 'add checkout-submodules: false to stage the commit without its submodules (their directories stay empty), and add each submodule as a git source of its own',
          },
        );
      return withScratchDir(env, async (dir) => {
        const tree = join(dir, 'tree');
        await mkdir(tree);
        const opts = {
          gitDir: mirror,
          workTree: tree,
          extraEnv: { GIT_INDEX_FILE: join(dir, 'index') },
          location: this.decl.keyAt.ref ?? this.decl.at,
        };
        const what = `checking out ${ref} of ${this.shown(origin)}`;
        await git(env, ['read-tree', ref], { ...opts, what });
        await git(env, ['checkout-index', '--all', '--force'], { ...opts, what });
        return uploadDirectory(env, tree);
      });
    });
  }

  /** The commit `track` names in the repository now (after fetching it); undefined without `track`. */
  async track(env: SourceEnv): Promise<string | undefined> {
    if (this.trackBranch === undefined) return undefined;
    const origin = this.origin(env);
    const mirror = this.mirrorOf(env, origin);
    await this.updateMirror(env, origin, mirror);
    const out = await git(
      env,
      ['rev-parse', '--verify', '--quiet', '--end-of-options', `${this.trackBranch}^{commit}`],
      {
        gitDir: mirror,
        code: 'source/track',
        what: `no branch "${this.trackBranch}" in ${this.shown(origin)}`,
        location: this.decl.keyAt.track ?? this.decl.at,
      },
    );
    return out.toString('utf8').trim();
  }
}
