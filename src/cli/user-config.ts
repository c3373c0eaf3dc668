// User configuration: `$XDG_CONFIG_HOME/specbuild/specbuild.yaml` (or
// --config FILE), every key optional, every problem reported with its place
// in the file. Command-line options win over it. The keys are listed in the
// README's configuration table.
import { readFile } from 'node:fs/promises';
import { availableParallelism, homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { Diagnostics, SpecbuildError, type Result } from '../core/index.js';
import { asMap, checkKeys, parseYaml, type YNode } from '../project/index.js';
import { parseMode, type Mode, type PrimingOrder } from '../speculative/index.js';
import { defaultCacheDir, parseSize } from './config.js';
import {
  parseArtifacts,
  parseRemoteExecution,
  type ArtifactServer,
  type RemoteExecution,
} from './remote-config.js';

export interface UserConfig {
  /** Where everything is cached. */
  cacheDir: string;
  /** Largest total of blobs kept (bytes), or undefined for no limit. */
  quota: number | undefined;
  /** Element builds at once. */
  builders: number;
  onError: 'quit' | 'continue';
  /** max-jobs for elements (BuildStream's default: cores, at most 8). */
  maxJobs: number | undefined;
  /** scheduler.speculative-actions (default none). */
  speculativeActions: Mode;
  /** scheduler.speculative-actions-order: recorded (default) or cost. */
  primingOrder: PrimingOrder;
  /** scheduler.speculative-actions-budget: recorded seconds priming may submit per run (default: no limit). */
  primingBudget?: number;
  /** artifacts.servers, in order. */
  artifactServers: ArtifactServer[];
  /** remote-execution: where element subactions and priming run, when set. */
  remoteExecution: RemoteExecution;
  /** The file it came from, if any. */
  file: string | undefined;
}

export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(
    xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.config'),
    'specbuild',
    'specbuild.yaml',
  );
}

const TOP_KEYS = ['cachedir', 'quota', 'scheduler', 'build', 'artifacts', 'remote-execution'];
const SCHEDULER_KEYS = [
  'builders',
  'on-error',
  'speculative-actions',
  'speculative-actions-order',
  'speculative-actions-budget',
];
const BUILD_KEYS = ['max-jobs'];

/**
 * The value of `key` in `map` when it is one of `allowed`; any other value
 * is reported at its place (`where.key "X" is not A or B`).
 */
function oneOf<T extends string>(
  map: YNode & { kind: 'map' },
  key: string,
  where: string,
  allowed: readonly T[],
  d: Diagnostics,
  opts: { hint?: string } = {},
): T | undefined {
  const node = map.entries.get(key);
  const value = scalar(node, `${where}.${key}`, d);
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  d.add(
    new SpecbuildError(
      'load/invalid-value',
      `${where}.${key} "${value}" is not ${allowed.join(' or ')}`,
      { location: node?.at, hint: opts.hint },
    ),
  );
  return undefined;
}

function scalar(n: YNode | undefined, what: string, d: Diagnostics): string | undefined {
  if (n === undefined) return undefined;
  if (n.kind !== 'scalar') {
    d.add(new SpecbuildError('load/wrong-type', `${what} must be a value`, { location: n.at }));
    return undefined;
  }
  return n.value ?? undefined;
}

function positiveInt(
  n: YNode | undefined,
  what: string,
  d: Diagnostics,
  zero = false,
): number | undefined {
  const s = scalar(n, what, d);
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isInteger(v) || v < (zero ? 0 : 1)) {
    d.add(
      new SpecbuildError(
        'load/invalid-value',
        `${what}: "${s}" is not a whole number${zero ? '' : ' above 0'}`,
        {
          location: n?.at,
        },
      ),
    );
    return undefined;
  }
  return v;
}

/** A value's error, placed where the value is written. */
function located(e: unknown, n: YNode | undefined): SpecbuildError {
  const err = SpecbuildError.from(e, 'load/invalid-value');
  return new SpecbuildError('load/invalid-value', err.message, { location: n?.at, hint: err.hint });
}

/** Reads the user configuration; a missing default file is no configuration. */
export async function loadUserConfig(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Result<UserConfig>> {
  const file = explicit ?? defaultConfigFile(env);
  const cfg: UserConfig = {
    cacheDir: defaultCacheDir(env),
    quota: undefined,
    builders: availableParallelism(),
    onError: 'quit',
    maxJobs: undefined,
    speculativeActions: 'none',
    primingOrder: 'recorded',
    artifactServers: [],
    remoteExecution: {},
    file: undefined,
  };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    if (explicit === undefined) return { ok: true, value: cfg };
    return {
      ok: false,
      errors: [new SpecbuildError('cli/usage', `--config ${file}: cannot read it`)],
    };
  }
  cfg.file = file;
  const d = new Diagnostics();
  const root = d.take(parseYaml(text, file));
  if (root === undefined) return { ok: false, errors: d.errors };
  if (root.kind === 'scalar' && root.value === null) return { ok: true, value: cfg };
  if (root.kind !== 'map') {
    return {
      ok: false,
      errors: [
        new SpecbuildError('load/wrong-type', `${file} must hold a mapping`, { location: root.at }),
      ],
    };
  }
  checkKeys(root, TOP_KEYS, file, d);
  const dir = scalar(root.entries.get('cachedir'), 'cachedir', d);
  if (dir !== undefined) {
    const expanded = dir
      .replace(/^~(?=\/|$)/, homedir())
      .replace(/\$\{?(\w+)\}?/g, (_, v: string) => env[v] ?? '');
    if (!isAbsolute(expanded))
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          `cachedir "${dir}" must be an absolute path (~ and $VARIABLES are expanded)`,
          {
            location: root.entries.get('cachedir')?.at,
          },
        ),
      );
    else cfg.cacheDir = expanded;
  }
  const quota = scalar(root.entries.get('quota'), 'quota', d);
  if (quota !== undefined && quota !== 'infinity') {
    try {
      cfg.quota = parseSize(quota, 'quota');
    } catch (e) {
      d.add(
        SpecbuildError.from(e, 'load/invalid-value', { location: root.entries.get('quota')?.at }),
      );
    }
  }
  const sched = root.entries.get('scheduler');
  if (sched !== undefined) {
    if (sched.kind !== 'map')
      d.add(
        new SpecbuildError('load/wrong-type', 'scheduler must be a mapping', {
          location: sched.at,
        }),
      );
    else {
      checkKeys(sched, SCHEDULER_KEYS, 'scheduler', d);
      cfg.builders =
        positiveInt(sched.entries.get('builders'), 'scheduler.builders', d) ?? cfg.builders;
      const sa = scalar(
        sched.entries.get('speculative-actions'),
        'scheduler.speculative-actions',
        d,
      );
      if (sa !== undefined) {
        try {
          cfg.speculativeActions = parseMode(sa, 'scheduler.speculative-actions');
        } catch (e) {
          d.add(located(e, sched.entries.get('speculative-actions')));
        }
      }
      cfg.primingOrder =
        oneOf(sched, 'speculative-actions-order', 'scheduler', ['cost', 'recorded'], d, {
          hint: 'cost primes the longest recorded actions first, in build order; recorded (the default) primes them as they become ready',
        }) ?? cfg.primingOrder;
      const budget = scalar(
        sched.entries.get('speculative-actions-budget'),
        'scheduler.speculative-actions-budget',
        d,
      );
      if (budget !== undefined) {
        const seconds = /^\s*\d+(\.\d+)?\s*$/.test(budget) ? Number(budget) : NaN;
        if (Number.isFinite(seconds) && seconds >= 0) cfg.primingBudget = seconds;
        else
          d.add(
            new SpecbuildError(
              'load/invalid-value',
              `scheduler.speculative-actions-budget "${budget}" is not a number of seconds`,
              {
                location: sched.entries.get('speculative-actions-budget')?.at,
                hint: 'the recorded execution seconds priming may submit in one run, e.g. 600; actions recorded under 50 ms are then left to the build',
              },
            ),
          );
      }
      cfg.onError = oneOf(sched, 'on-error', 'scheduler', ['quit', 'continue'], d) ?? cfg.onError;
    }
  }
  const build = root.entries.get('build');
  if (build !== undefined) {
    if (build.kind !== 'map')
      d.add(
        new SpecbuildError('load/wrong-type', 'build must be a mapping', { location: build.at }),
      );
    else {
      checkKeys(build, BUILD_KEYS, 'build', d);
      const mj = positiveInt(build.entries.get('max-jobs'), 'build.max-jobs', d, true);
      if (mj !== undefined && mj > 0) cfg.maxJobs = mj;
    }
  }
  const artifacts = asMap(root.entries.get('artifacts'), 'artifacts', d);
  if (artifacts !== undefined) cfg.artifactServers = parseArtifacts(artifacts, file, d);
  const re = asMap(root.entries.get('remote-execution'), 'remote-execution', d);
  if (re !== undefined) cfg.remoteExecution = parseRemoteExecution(re, file, d);
  return d.result(cfg);
}
