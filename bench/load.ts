// A background load for benchmarks that report figures "under load": a real
// parallel build (`make -j4` of generated C files at -O2, over and over) in
// its own process group, stopped and removed by `stop()`.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Load {
  /** Completed `make` rounds so far. */
  readonly rounds: number;
  stop(): Promise<void>;
}

const FILES = 24;

function source(i: number): string {
  // Enough work per file (~0.2 s at -O2) that make always has jobs running.
  const fns = Array.from(
    { length: 40 },
    (_, k) =>
      `double f${k}(double x) { double s = 0; for (int i = 0; i < ${50 + k}; i++) s += x * i / (i + ${k + 1}); return s; }`,
  ).join('\n');
  return `/* load ${i} */\n${fns}\n`;
}

export async function startLoad(dir: string, jobs = 4): Promise<Load> {
  await mkdir(dir, { recursive: true });
  const objs: string[] = [];
  for (let i = 0; i < FILES; i++) {
    await writeFile(join(dir, `l${i}.c`), source(i));
    objs.push(`l${i}.o`);
  }
  await writeFile(
    join(dir, 'Makefile'),
    `all: ${objs.join(' ')}\n%.o: %.c\n\tgcc -O2 -c $< -o $@\nclean:\n\trm -f *.o\n`,
  );
  const state = { rounds: 0, stopped: false };
  const child = spawn(
    'sh',
    ['-c', `while :; do make -s -j${jobs} clean all >/dev/null 2>&1; echo r; done`],
    { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  child.stdout.on('data', (b: Buffer) => {
    state.rounds += b
      .toString()
      .split('\n')
      .filter((l) => l === 'r').length;
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  return {
    get rounds() {
      return state.rounds;
    },
    async stop() {
      if (state.stopped) return;
      state.stopped = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await exited;
    },
  };
}
