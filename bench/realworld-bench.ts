// Real-world benchmark: whole `make -j2` builds of zlib (Debian's 1.2.13
// sources, code nobody here wrote; BENCH_PROJECT=libpng: libpng 1.6.39 on
// that zlib, with libtool), plain, through specbuild-cc with an
// empty and a full cache (a `specbuild server` on this machine through a unix
// socket, with the defaults: misses compiled here once, hits in direct mode;
// also the full cache with direct mode off, and the empty cache with misses
// sent to the server after a -M scan), and through Debian's ccache with an
// empty and a full cache, side by side and alternating, each from a fresh copy of the
// configured tree at the same path. Every build's libz.a and libz.so must be
// byte-identical to the plain one's, and the project's own tests pass on each
// variant's build. Prints one JSON line: plain seconds, and each variant's
// ratio to plain (median, min-max over rounds) with ccache's beside it, and
// the targets of issue 12.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { logger, median, round2 } from './common.js';
import { repoRoot } from '../test/helpers/paths.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { startCliServer, type CliServer } from '../test/helpers/cli-server.js';

const log = logger('realworld-bench');
const ROUNDS = Number(process.env.BENCH_RUNS ?? 3);
const JOBS = process.env.BENCH_JOBS ?? '2';
/** One fixed path: every variant builds there, so no path differs between them. */
const DIR = join('/tmp', 'specbuild-realworld-bench');
const SRC_DIR = join(repoRoot, '.cache', 'debian-src');
const wrapperLog = join(DIR, 'wrapper.log');
/** BENCH_VARIANTS=plain,specbuild-cold,...: only these variants (for a diagnosis; the JSON line then lacks the others). */
const ONLY =
  process.env.BENCH_VARIANTS === undefined
    ? undefined
    : new Set(process.env.BENCH_VARIANTS.split(',').map((v) => v.trim()));
/** BENCH_KEEP_LOGS=DIR: each specbuild build's wrapper log is copied there (ROUND-VARIANT.log). */
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS;
const specbuildCc = join(repoRoot, 'dist', 'native', 'specbuild-cc');
/**
 * BENCH_PROJECT: zlib (default), or libpng 1.6.39 built on that zlib
 * (installed once into DIR/zlib-root by a plain build).
 */
const PROJECT = process.env.BENCH_PROJECT ?? 'zlib';

interface Project {
  /** The Debian source archive's name. */
  tarball: RegExp;
  configure: (template: string) => void;
  /** What the build makes that must be the same bytes in every variant. */
  products: string[];
  /** Its own test suite. */
  test: string;
}

function zlibTarball(): string {
  const tarball = existsSync(SRC_DIR)
    ? readdirSync(SRC_DIR).find((f) => /^zlib_.*\.orig\.tar\./.test(f))
    : undefined;
  if (tarball === undefined)
    throw new Error(`no zlib source archive in ${SRC_DIR}: run bash scripts/install-test-deps.sh`);
  return tarball;
}

const PROJECTS: Record<string, Project> = {
  zlib: {
    tarball: /^zlib_.*\.orig\.tar\./,
    configure: (t) => {
      run('./configure', [], t, { ...process.env, CC: 'gcc' });
    },
    products: ['libz.a', 'libz.so.1.2.13'],
    test: 'test',
  },
  libpng: {
    tarball: /^libpng1\.6_.*\.orig\.tar\./,
    configure: (t) => {
      // zlib from its own sources, built plain and installed beside.
      const z = join(DIR, 'zlib-src');
      const root = join(DIR, 'zlib-root');
      mkdirSync(z);
      run('tar', ['-xf', join(SRC_DIR, zlibTarball()), '-C', z, '--strip-components=1'], DIR);
      run('./configure', [`--prefix=${root}`], z, { ...process.env, CC: 'gcc' });
      run('make', [`-j${JOBS}`, 'install'], z);
      run(
        './configure',
        [`CPPFLAGS=-I${root}/include`, `LDFLAGS=-L${root}/lib -Wl,-rpath,${root}/lib`],
        t,
        { ...process.env, CC: 'gcc' },
      );
    },
    products: ['.libs/libpng16.a', '.libs/libpng16.so.16.39.0'],
    test: 'check',
  },
};

type Variant =
  | 'plain'
  | 'specbuild-cold'
  | 'specbuild-warm'
  | 'specbuild-warm-scan'
  | 'specbuild-cold-remote'
  | 'ccache-cold'
  | 'ccache-warm';
const ORDER: Variant[] = [
  'plain',
  'specbuild-cold',
  'specbuild-warm',
  'specbuild-warm-scan',
  'specbuild-cold-remote',
  'ccache-cold',
  'ccache-warm',
];

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): void {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${r.stderr}\n${r.stdout}`);
}

/** The wrapper log's outcomes counted, e.g. " (51 hit direct remembered, 9 local)"; empty without a log. */
function outcomes(file: string): string {
  if (!existsSync(file)) return '';
  const counts = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const l = JSON.parse(line) as {
      outcome: string;
      deps?: string;
      remembered?: boolean;
      direct?: string;
      native?: boolean;
    };
    // What direct mode found, when it was not used.
    const found = l.direct === undefined || l.direct === 'fresh' ? undefined : `(${l.direct})`;
    const k = [
      l.outcome,
      l.deps,
      l.remembered === true ? 'remembered' : undefined,
      l.native === true ? 'by the client' : undefined,
      found,
    ]
      .filter((x) => x !== undefined)
      .join(' ');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return ` (${[...counts].map(([k, n]) => `${String(n)} ${k}`).join(', ')})`;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function main(): Promise<void> {
  const project = PROJECTS[PROJECT];
  if (project === undefined)
    throw new Error(`BENCH_PROJECT=${PROJECT}: one of ${Object.keys(PROJECTS).join(', ')}`);
  const tarball = existsSync(SRC_DIR)
    ? readdirSync(SRC_DIR).find((f) => project.tarball.test(f))
    : undefined;
  if (tarball === undefined)
    throw new Error(
      `no ${PROJECT} source archive in ${SRC_DIR}: run bash scripts/install-test-deps.sh` +
        (PROJECT === 'libpng'
          ? ' and (cd .cache/debian-src && apt-get source --download-only libpng1.6)'
          : ''),
    );
  if (spawnSync('ccache', ['--version']).status !== 0)
    throw new Error('ccache is not installed: apt-get install ccache (Debian 12: 4.7.5)');
  await rm(DIR, { recursive: true, force: true });
  await mkdir(DIR, { recursive: true });
  const template = join(DIR, 'template');
  const work = join(DIR, 'work');
  await mkdir(template);
  run('tar', ['-xf', join(SRC_DIR, tarball), '-C', template, '--strip-components=1'], DIR);
  project.configure(template);
  log(
    `${PROJECT} from ${tarball}, configured; ${ROUNDS} rounds of ${ORDER.join(', ')}, make -j${JOBS}`,
  );

  const basePath = process.env.PATH ?? '/usr/bin:/bin';
  let server: CliServer | undefined;
  const times = new Map<Variant, number[]>(ORDER.map((v) => [v, []]));
  /** Seconds from a new daemon's first command to its answer (before the empty-cache build's clock). */
  const daemonStarts: number[] = [];
  let reference: string[] | undefined;
  const tested = new Set<Variant>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of ORDER.filter((v) => ONLY === undefined || ONLY.has(v))) {
        const env: NodeJS.ProcessEnv = { ...process.env, PATH: basePath };
        let cc = 'gcc';
        if (variant.startsWith('specbuild')) {
          if (variant === 'specbuild-cold' || variant === 'specbuild-cold-remote') {
            // An empty cache: a new server (on this machine, through a unix
            // socket, as the embedded one), and a new daemon with no memory
            // (started before the clock).
            await server?.stop();
            await stopDaemonsUnder(DIR);
            await rm(join(DIR, 'server'), { recursive: true, force: true });
            await rm(join(DIR, 'xdg'), { recursive: true, force: true });
            // And the answers the daemon left for the clients (native-answers.ts).
            await rm(join(DIR, 'daemon.sock.answers'), { recursive: true, force: true });
            server = await startCliServer(join(DIR, 'server'), {
              jobs: Number(JOBS),
              listen: `unix:${join(DIR, 'reapi.sock')}`,
            });
          }
          if (server === undefined) throw new Error('bug: no server');
          Object.assign(env, {
            SPECBUILD_SERVER: server.address,
            SPECBUILD_DAEMON_SOCKET: join(DIR, 'daemon.sock'),
            XDG_CACHE_HOME: join(DIR, 'xdg'),
            // The defaults (direct mode, compiles run here once) but where a variant turns one off.
            SPECBUILD_DIRECT: variant === 'specbuild-warm-scan' ? '0' : '1',
            SPECBUILD_COMPILE_HERE: variant === 'specbuild-cold-remote' ? '0' : '1',
          });
          // Starts the daemon (a first wrapped command; it runs locally, being
          // no compile): `specbuild-cc` alone only prints its usage, so this
          // bench used to start the daemon inside the clock of each empty-cache
          // build. The start is timed apart.
          const t0 = performance.now();
          run(specbuildCc, ['gcc', '--version'], DIR, env);
          if (variant === 'specbuild-cold') daemonStarts.push((performance.now() - t0) / 1000);
          cc = `${specbuildCc} gcc`;
          // How each compile was answered, for the round's line (not timed apart: one append each).
          env.SPECBUILD_WRAPPER_LOG = wrapperLog;
        } else if (variant.startsWith('ccache')) {
          if (variant === 'ccache-cold')
            await rm(join(DIR, 'ccache'), { recursive: true, force: true });
          Object.assign(env, { CCACHE_DIR: join(DIR, 'ccache') });
          cc = 'ccache gcc';
        }
        await rm(work, { recursive: true, force: true });
        await rm(wrapperLog, { force: true });
        run('cp', ['-a', template, work], DIR);
        const t = performance.now();
        run('make', [`-j${JOBS}`, `CC=${cc}`], work, env);
        const seconds = (performance.now() - t) / 1000;
        times.get(variant)?.push(seconds);
        const hashes = project.products.map((p) => sha256(join(work, p)));
        reference ??= hashes;
        if (hashes.join() !== reference.join())
          throw new Error(
            `${variant}: ${project.products.join(', ')} differ from the plain build's`,
          );
        if (!tested.has(variant)) {
          // The project's own tests, on this variant's build (their programs wrapped too).
          run('make', [`CC=${cc}`, project.test], work, env);
          tested.add(variant);
        }
        log(`round ${round + 1} ${variant}: ${seconds.toFixed(2)} s${outcomes(wrapperLog)}`);
        if (KEEP_LOGS !== undefined && existsSync(wrapperLog)) {
          mkdirSync(KEEP_LOGS, { recursive: true });
          copyFileSync(wrapperLog, join(KEEP_LOGS, `${String(round + 1)}-${variant}.log`));
        }
      }
    }
  } finally {
    await server?.stop();
    await stopDaemonsUnder(DIR);
    await rm(DIR, { recursive: true, force: true });
  }
  const plain = times.get('plain') ?? [];
  const ratios = (v: Variant): number[] =>
    (times.get(v) ?? []).map((s, i) => s / (plain[i] ?? NaN));
  const fig = (v: Variant) => {
    const r = ratios(v);
    return { median: round2(median(r)), min: round2(Math.min(...r)), max: round2(Math.max(...r)) };
  };
  const specCold = fig('specbuild-cold');
  const ccCold = fig('ccache-cold');
  const specWarm = fig('specbuild-warm');
  const ccWarm = fig('ccache-warm');
  console.log(
    JSON.stringify({
      project: tarball.replace(/\.orig\.tar\..*$/, ''),
      jobs: Number(JOBS),
      plain_s: round2(median(plain)),
      specbuild_cold: specCold,
      ccache_cold: ccCold,
      specbuild_warm: specWarm,
      specbuild_warm_scan: fig('specbuild-warm-scan'),
      specbuild_cold_remote: fig('specbuild-cold-remote'),
      ccache_warm: ccWarm,
      daemon_start_s: round2(median(daemonStarts)),
      targets: {
        cold_le_1_10: specCold.median <= 1.1,
        cold_within_0_1_of_ccache: specCold.median <= ccCold.median + 0.1,
        warm_le_ccache_x1_2: specWarm.median <= ccWarm.median * 1.2,
      },
      byte_identical: true,
      tests_pass: tested.size,
      runs: ROUNDS,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
