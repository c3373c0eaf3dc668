// The `git` command as the git source runs it: a fixed environment in which
// no user or system configuration applies (so a developer's git settings
// cannot change what is fetched or checked out), prompts are off, and only
// the file transport is allowed (sources are read without a network).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Location } from '../../core/index.js';
import { runCommand, spawnCollect, toolEnv } from './command.js';
import type { SourceEnv } from './source.js';

export interface GitOptions {
  /** The repository (`--git-dir`), when the command works on one. */
  gitDir?: string;
  workTree?: string;
  /** Extra environment, e.g. GIT_INDEX_FILE. */
  extraEnv?: Record<string, string>;
  what: string;
  location?: Location;
  code?: 'source/fetch' | 'source/track';
}

async function gitEnvironment(env: SourceEnv, extra: Record<string, string> = {}) {
  const home = join(env.sourceDir, 'tmp', 'git-home');
  await mkdir(home, { recursive: true });
  return toolEnv({
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ALLOW_PROTOCOL: 'file',
    ...extra,
  });
}

function gitArgs(args: readonly string[], opts: Omit<GitOptions, 'what'>): string[] {
  return [
    ...(opts.gitDir === undefined ? [] : [`--git-dir=${opts.gitDir}`]),
    ...(opts.workTree === undefined ? [] : [`--work-tree=${opts.workTree}`]),
    ...args,
  ];
}

/** Runs git; its stdout, or an error (default `source/fetch`) quoting its stderr. */
export async function git(
  env: SourceEnv,
  args: readonly string[],
  opts: GitOptions,
): Promise<Buffer> {
  return runCommand('git', gitArgs(args, opts), {
    env: await gitEnvironment(env, opts.extraEnv),
    signal: env.signal,
    code: opts.code ?? 'source/fetch',
    what: opts.what,
    location: opts.location,
  });
}

/** Runs git as a question: true when it exits with 0. */
export async function gitSucceeds(
  env: SourceEnv,
  args: readonly string[],
  opts: Omit<GitOptions, 'what'>,
): Promise<boolean> {
  const r = await spawnCollect('git', gitArgs(args, opts), {
    env: await gitEnvironment(env, opts.extraEnv),
    signal: env.signal,
    code: opts.code ?? 'source/fetch',
  });
  return r.status === 0;
}
