// The small real C/C++ project under test/wrap/fixtures/cproject, built with
// make through the native specbuild-cc client, and the wrapper's JSON log.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const cprojectFixture = join(repoRoot, 'test', 'wrap', 'fixtures', 'cproject');
export const specbuildCc = join(repoRoot, 'dist', 'native', 'specbuild-cc');
/** What the fixture's make builds into build/, every file of it deterministic. */
export const CPROJECT_OUTPUTS = [
  'add.o',
  'mul.o',
  'main.o',
  'appxx.o',
  'libmylib.a',
  'app',
  'appxx',
  'main.d',
];

/** One line of SPECBUILD_WRAPPER_LOG. */
export interface LogLine {
  argv: string[];
  outcome: string;
  action: string;
  ms: number;
  /** How a compile's inputs were found (scan, direct, compile, trace). */
  deps?: string;
  /** The error code of a fallback. */
  error?: string;
  /** A hit answered from direct mode's memory of the result. */
  remembered?: boolean;
  /** What direct mode found: fresh, changed, shadowed, gone or none. */
  direct?: string;
  /** The daemon worker thread that answered (absent when the client decided). */
  worker?: number;
  /** Why the result of a run here was not stored (an input changed while it ran). */
  unstored?: string;
  /** Answered by the native client from the daemon's written answer. */
  native?: boolean;
}

/**
 * `make -s -j4` with CC and CXX through specbuild-cc (parallel, so the daemon
 * serves clients at once); fails the test if make fails.
 */
export function makeWithWrapper(dir: string, env: Record<string, string>, ...targets: string[]) {
  const r = spawnSync(
    'make',
    ['-s', '-j4', `CC=${specbuildCc} gcc`, `CXX=${specbuildCc} g++`, ...targets],
    {
      cwd: dir,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        ...env,
      },
      timeout: 120_000,
    },
  );
  assert.equal(r.status, 0, `make failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** `make -s` with plain gcc and g++. */
export function makePlain(dir: string): void {
  const p = spawnSync('make', ['-s', 'CC=gcc', 'CXX=g++'], { cwd: dir, encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
}

export function readWrapperLog(file: string): LogLine[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
}

export const isCompile = (l: LogLine): boolean => l.argv.includes('-c');
export const sourceOf = (l: LogLine): string => l.argv[l.argv.indexOf('-c') + 1] ?? '';

/** Asserts that every output of two builds of the fixture is byte-identical. */
export function assertSameOutputs(built: string, reference: string): void {
  for (const f of CPROJECT_OUTPUTS) {
    assert.ok(
      readFileSync(join(built, 'build', f)).equals(readFileSync(join(reference, 'build', f))),
      `${f} differs from a plain gcc build`,
    );
  }
}

export interface CprojectRun {
  /** A copy built with plain gcc: the reference outputs. */
  plain: string;
  /** A fresh copy to build through specbuild-cc. */
  proj: string;
  /** The wrapper's JSON log. */
  log: string;
  /** Environment for makeWithWrapper: server, log, a private daemon and cache. */
  env: Record<string, string>;
}

/**
 * Lays out two copies of the fixture under `root` (the plain one built) and
 * the wrapper environment for `server`, plus `extra` variables.
 */
export function prepareCproject(
  root: string,
  server: string,
  extra: Record<string, string> = {},
): CprojectRun {
  const plain = join(root, 'plain');
  cpSync(cprojectFixture, plain, { recursive: true });
  makePlain(plain);
  const proj = join(root, 'proj');
  cpSync(cprojectFixture, proj, { recursive: true });
  const log = join(root, 'log');
  return {
    plain,
    proj,
    log,
    env: {
      SPECBUILD_SERVER: server,
      SPECBUILD_WRAPPER_LOG: log,
      SPECBUILD_DAEMON_SOCKET: join(root, 'daemon.sock'),
      XDG_CACHE_HOME: join(root, 'xdg'),
      ...extra,
    },
  };
}
