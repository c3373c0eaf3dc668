// specbuild-cc benchmark: one translation unit that takes at least 150 ms to
// compile with `gcc -O2`, compiled plain, through specbuild-cc as a miss
// (executed by a real `specbuild server`) and as a hit, each RUNS times; and
// the wrapper's own start-up (native client + one daemon round trip).
// Prints one JSON line: {"plain_ms", "miss_ms", "hit_ms", "hit_ratio",
// "miss_ratio", "startup_ms", "hit_direct_ms" (hits with SPECBUILD_DIRECT=1),
// ...}; every figure is a median.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import { startCliServer } from '../test/helpers/cli-server.js';
import { specbuildCc } from '../test/helpers/cproject.js';
import { logger, median, round2 } from './common.js';

const RUNS = Math.max(10, Number(process.env.BENCH_RUNS ?? 15));
const MIN_PLAIN_MS = 150;
const log = logger('wrapper-bench');

/** C source with `funcs` loop-heavy functions: gcc -O2 spends its time optimising them. */
function translationUnit(funcs: number): string {
  let s = '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <math.h>\n\n';
  for (let i = 0; i < funcs; i++) {
    s += `double f${i}(const double *a, double *b, int n, int k) {
  double acc = ${i}.5;
  for (int r = 0; r < k; r++) {
    for (int j = 1; j < n - 1; j++) {
      b[j] = (a[j - 1] * ${(i % 7) + 1}.0 + a[j] * ${(i % 5) + 2}.0 - a[j + 1]) / (1.0 + fabs(a[j]));
      if (b[j] > acc) acc += sqrt(b[j]); else acc -= b[j] * 0.${(i % 9) + 1};
    }
    switch ((r + ${i}) % 4) {
      case 0: acc *= 1.0001; break;
      case 1: acc += strlen("f${i}"); break;
      case 2: acc -= n; break;
      default: acc = fmod(acc, 1e9);
    }
  }
  return acc;
}
`;
  }
  s += 'int main(void) {\n  double a[64] = {0}, b[64], t = 0;\n';
  for (let i = 0; i < funcs; i++) s += `  t += f${i}(a, b, 64, ${(i % 5) + 1});\n`;
  return `${s}  printf("%f\\n", t);\n  return 0;\n}\n`;
}

/** Wall time of one command in ms; throws unless it exits with `expect`. */
function timed(argv: string[], cwd: string, env: NodeJS.ProcessEnv, expect = 0): number {
  const [cmd, ...args] = argv;
  const t0 = performance.now();
  const r = spawnSync(cmd ?? '', args, { cwd, env, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== expect)
    throw new Error(`${argv.join(' ')} exited ${String(r.status)}: ${r.stderr}`);
  return ms;
}

async function outcomes(logFile: string): Promise<string[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { outcome: string }).outcome);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-wrapper-bench-'));
  const server = await startCliServer(join(dir, 'cache'));
  try {
    const basePath = process.env.PATH ?? '/usr/bin:/bin';
    const plainEnv = { PATH: basePath };
    const logFile = join(dir, 'wrapper.log');
    const env = {
      PATH: basePath,
      SPECBUILD_SERVER: server.address,
      SPECBUILD_DAEMON_SOCKET: join(dir, 'daemon.sock'),
      SPECBUILD_WRAPPER_LOG: logFile,
      XDG_CACHE_HOME: join(dir, 'xdg'),
      // The single-compile figures as first measured: misses scanned and
      // executed by the server (TCP), hits scanned; direct mode apart below.
      SPECBUILD_DIRECT: '0',
    };
    const src = join(dir, 'tu.c');
    const compile = ['gcc', '-O2', '-c', 'tu.c', '-o', 'tu.o'];

    // Size the translation unit so that a plain compile takes at least MIN_PLAIN_MS.
    let funcs = 24;
    let plainGuess = 0;
    for (;;) {
      await writeFile(src, translationUnit(funcs));
      plainGuess = median([0, 1, 2].map(() => timed(compile, dir, plainEnv)));
      if (plainGuess >= MIN_PLAIN_MS * 1.2) break;
      funcs = Math.ceil((funcs * (MIN_PLAIN_MS * 1.4)) / Math.max(plainGuess, 1));
    }
    log(`translation unit: ${funcs} functions, ~${plainGuess.toFixed(0)} ms with gcc -O2`);
    const source = translationUnit(funcs);

    // The daemon starts on the first call; keep that out of every figure.
    timed([specbuildCc], dir, env, 2);
    const startup = Array.from({ length: RUNS * 2 }, () => timed([specbuildCc], dir, env, 2));

    // Plain compiles and misses alternate, so that whatever else the machine
    // does at a moment weighs on both alike. Every miss compiles a source no
    // earlier run had (a comment differs); each plain run compiles the same.
    const plain: number[] = [];
    const miss: number[] = [];
    await writeFile(logFile, '');
    for (let i = 0; i < RUNS; i++) {
      await writeFile(src, `${source}/* miss ${String(i)} ${String(Date.now())} */\n`);
      plain.push(timed(compile, dir, plainEnv));
      miss.push(timed([specbuildCc, ...compile], dir, env));
    }
    const missOutcomes = await outcomes(logFile);
    if (missOutcomes.some((o) => o !== 'miss'))
      throw new Error(`expected misses, got ${missOutcomes.join(',')}`);

    // Hits: the same source again and again, its object removed before each run.
    await writeFile(src, source);
    timed([specbuildCc, ...compile], dir, env);
    await writeFile(logFile, '');
    const hit: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await unlink(join(dir, 'tu.o'));
      hit.push(timed([specbuildCc, ...compile], dir, env));
    }
    const hitOutcomes = await outcomes(logFile);
    if (hitOutcomes.some((o) => o !== 'hit'))
      throw new Error(`expected hits, got ${hitOutcomes.join(',')}`);

    // Hits in direct mode (SPECBUILD_DIRECT=1): the -M scan is skipped.
    const directEnv = { ...env, SPECBUILD_DIRECT: '1' };
    timed([specbuildCc, ...compile], dir, directEnv); // records the inputs
    await writeFile(logFile, '');
    const hitDirect: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await unlink(join(dir, 'tu.o'));
      hitDirect.push(timed([specbuildCc, ...compile], dir, directEnv));
    }
    const directOutcomes = await outcomes(logFile);
    if (directOutcomes.some((o) => o !== 'hit'))
      throw new Error(`expected direct-mode hits, got ${directOutcomes.join(',')}`);

    const dependencyScan = median(
      Array.from({ length: RUNS }, () => timed(['gcc', '-O2', '-M', 'tu.c'], dir, plainEnv)),
    );
    const p = median(plain);
    const figures = {
      plain_ms: round2(p),
      miss_ms: round2(median(miss)),
      hit_ms: round2(median(hit)),
      hit_ratio: round2(median(hit) / p),
      miss_ratio: round2(median(miss) / p),
      startup_ms: round2(median(startup)),
      hit_direct_ms: round2(median(hitDirect)),
      hit_direct_ratio: round2(median(hitDirect) / p),
      deps_scan_ms: round2(dependencyScan),
      runs: RUNS,
    };
    console.log(JSON.stringify(figures));
  } finally {
    await server.stop();
    await stopDaemonsUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
