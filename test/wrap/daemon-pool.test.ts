// The wrapper daemon's worker pool, end to end with real processes: the real
// daemon with two workers behind the native client compiling with real gcc
// against a real server (routing by command, a crashed worker, the caches
// each worker saves), and a pool of test workers for what gcc cannot
// provoke (a client that goes away, a handler that throws, long output).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandHash, encodeRequest } from '../../src/wrap/daemon-protocol.js';
import { startDaemon } from '../../src/wrap/daemon-server.js';
import {
  publishWorkers,
  startWorkerPool,
  workerSocketPath,
  workersLinkPath,
} from '../../src/wrap/daemon-pool.js';
import { SharedOnce } from '../../src/wrap/shared-once.js';
import { readWrapperLog, specbuildCc } from '../helpers/cproject.js';
import { daemonsUnder, stopDaemonsUnder } from '../helpers/daemons.js';
import { startCliServer } from '../helpers/cli-server.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Starts the native client; `done` resolves when it exits. */
function client(args: string[], env: Record<string, string>, cwd?: string) {
  const child = spawn(specbuildCc, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const done = once(child, 'close').then(([code]): Run => ({
    code: code as number | null,
    stdout: Buffer.concat(out),
    stderr: Buffer.concat(err),
  }));
  return { child, done };
}

const run = (args: string[], env: Record<string, string>, cwd?: string): Promise<Run> =>
  client(args, env, cwd).done;

/** The worker a pool of `size` sends `specbuild-cc ARGV...` run in `cwd` to, when none is busy. */
function homeWorker(argv: string[], cwd: string, size: number): number {
  return commandHash(encodeRequest({ tool: 'cc', cwd, argv, env: new Map() })) % size;
}

async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('daemon worker pool', () => {
  it('routes by command: two compiles to their two workers, a repeated one to the same; each worker saves its own caches', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    const cwd = realpathSync(dir.path);
    const log = join(dir.path, 'log');
    const env = {
      SPECBUILD_SERVER: server.address,
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon.sock'),
      SPECBUILD_DAEMON_WORKERS: '2',
      SPECBUILD_DIRECT: '1',
      SPECBUILD_VERBOSE: '1',
      SPECBUILD_WRAPPER_LOG: log,
      XDG_CACHE_HOME: join(dir.path, 'xdg'),
    };
    try {
      // Two sources whose compiles hash to different workers.
      const argv = (n: number) => ['gcc', '-c', `s${String(n)}.c`, '-o', `s${String(n)}.o`];
      const first = 0;
      let second = 1;
      while (homeWorker(argv(second), cwd, 2) === homeWorker(argv(first), cwd, 2))
        assert.ok(++second < 100, 'the hash spreads commands');
      for (const n of [first, second])
        writeFileSync(join(cwd, `s${String(n)}.c`), `int f${String(n)}(void) { return 1; }\n`);

      const runs: Run[] = [];
      for (const n of [first, second, first]) {
        const r = await run(argv(n), env, cwd);
        assert.equal(r.code, 0, r.stderr.toString());
        runs.push(r);
      }
      const lines = readWrapperLog(log);
      assert.deepEqual(
        lines.map((l) => [l.argv[2], l.outcome, l.worker]),
        [
          [`s${String(first)}.c`, 'miss', homeWorker(argv(first), cwd, 2)],
          [`s${String(second)}.c`, 'miss', homeWorker(argv(second), cwd, 2)],
          [`s${String(first)}.c`, 'hit', homeWorker(argv(first), cwd, 2)],
        ],
      );
      // The repeated compile found its direct-mode memory: the same worker.
      assert.match(String(runs[2]?.stderr), /^specbuild-cc: hit .*\(action-direct /);

      // SIGTERM: the main thread has every worker save its caches, then exits.
      const [pid] = daemonsUnder(dir.path);
      assert.ok(pid !== undefined);
      assert.equal(await stopDaemonsUnder(dir.path), 1);
      const wrapDir = join(dir.path, 'xdg', 'specbuild', 'wrap');
      for (const w of [0, 1]) {
        assert.ok(existsSync(join(wrapDir, `stat-cache-${String(w)}.json`)), `stat cache ${w}`);
        const direct = JSON.parse(
          readFileSync(join(wrapDir, `direct-cache-${String(w)}.json`), 'utf8'),
        ) as Record<string, unknown>;
        assert.equal(Object.keys(direct).length, 1, `worker ${w} remembers its one command`);
      }
    } finally {
      await server.stop();
    }
  });

  it('has the client compile locally when its worker crashes mid-request, and replaces the worker', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    const cwd = realpathSync(dir.path);
    const log = join(dir.path, 'log');
    const env = {
      SPECBUILD_SERVER: server.address,
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon.sock'),
      SPECBUILD_DAEMON_WORKERS: '2',
      SPECBUILD_DAEMON_TEST_CRASH: 'crash-here',
      SPECBUILD_WRAPPER_LOG: log,
      XDG_CACHE_HOME: join(dir.path, 'xdg'),
    };
    try {
      writeFileSync(join(cwd, 'a.c'), 'int a(void) { return 1; }\n');
      const crashing = ['gcc', '-DX=crash-here', '-c', 'a.c', '-o', 'a.o'];
      // A later compile that goes to the same worker: only its replacement can answer it.
      let k = 0;
      const next = () => ['gcc', `-DK=${String(k)}`, '-c', 'a.c', '-o', 'a.o'];
      while (homeWorker(next(), cwd, 2) !== homeWorker(crashing, cwd, 2))
        assert.ok(++k < 100, 'the hash spreads commands');
      const warm = await run(['gcc', '-c', 'a.c', '-o', 'warm.o'], env, cwd);
      assert.equal(warm.code, 0, warm.stderr.toString());
      const [pid] = daemonsUnder(dir.path);
      writeFileSync(log, '');

      const crashed = await run(crashing, env, cwd);
      assert.equal(crashed.code, 0, crashed.stderr.toString());
      assert.equal(crashed.stderr.toString(), '', 'a broken exchange runs the command quietly');
      assert.ok(existsSync(join(cwd, 'a.o')), 'compiled locally');
      const served = await run(next(), env, cwd);
      assert.equal(served.code, 0, served.stderr.toString());

      assert.deepEqual(
        readWrapperLog(log).map((l) => [l.outcome, l.worker]),
        [
          ['fallback', undefined], // logged by the client: the daemon could not
          ['miss', homeWorker(crashing, cwd, 2)],
        ],
      );
      assert.deepEqual(daemonsUnder(dir.path), [pid], 'the same daemon, another worker');
      // Written down, since the daemon has no terminal.
      const crashes = join(dir.path, 'xdg', 'specbuild', 'wrap', 'daemon-crashes.log');
      await until('the crash log', () => existsSync(crashes));
      assert.match(
        readFileSync(crashes, 'utf8'),
        new RegExp(
          `^\\S+ worker ${String(homeWorker(crashing, cwd, 2))} died: .*exited with 70`,
          'm',
        ),
      );
    } finally {
      await server.stop();
    }
  });

  it('works in the main thread with SPECBUILD_DAEMON_WORKERS=0, and refuses a bad count', async () => {
    await using dir = await tempDir();
    const cwd = realpathSync(dir.path);
    writeFileSync(join(cwd, 'a.c'), 'int a(void) { return 1; }\n');
    const log = join(dir.path, 'log');
    const compile = (workers: string, n: number) =>
      run(
        ['gcc', '-c', 'a.c', '-o', 'a.o'],
        {
          SPECBUILD_DAEMON_SOCKET: join(dir.path, `daemon-${String(n)}.sock`),
          SPECBUILD_DAEMON_WORKERS: workers,
          SPECBUILD_WRAPPER_LOG: log,
          XDG_CACHE_HOME: join(dir.path, 'xdg'),
        },
        cwd,
      );
    // No server: the daemon decides "local" and logs it, saying where it ran.
    for (const [n, workers] of ['0', '1'].entries()) {
      const r = await compile(workers, n);
      assert.deepEqual([r.code, r.stderr.toString()], [0, '']);
    }
    const bad = await compile('many', 2);
    assert.equal(bad.code, 0);
    assert.match(bad.stderr.toString(), /exited at start-up\); compiling locally/);
    assert.deepEqual(
      readWrapperLog(log).map((l) => [l.outcome, l.worker]),
      [
        ['local', undefined],
        ['local', 0],
        ['fallback', undefined],
      ],
    );
  });
});

/**
 * A pool of test workers, each answering by the words in its argv (see the
 * script); what the client runs locally is the argv itself, so the words go
 * last, as $0 of \`sh -c\`.
 */
async function testPool(
  dir: string,
  size: number,
  opts: { ownSockets?: boolean; idleTimeoutMs?: number } = {},
) {
  const script = join(dir, 'test-worker.mjs');
  const workerJs = pathToFileURL(join(repoRoot, 'dist', 'src', 'wrap', 'daemon-pool-worker.js'));
  writeFileSync(
    script,
    `import { appendFileSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { servePoolWorker } from ${JSON.stringify(workerJs.href)};
const { index, data } = workerData;
const pool = workerData;
const note = (line) => appendFileSync(data.notes, line + '\\n');
servePoolWorker({
  handler: async (req, reply) => {
    const has = (w) => req.argv.includes(w);
    const arg = req.argv[req.argv.length - 1];
    if (has('whoami')) {
      reply.stdout('worker ' + index + '\\n');
      reply.exit(0);
    } else if (has('hang')) {
      note('started ' + arg);
      await new Promise((resolve) => reply.signal.addEventListener('abort', resolve));
      note('aborted ' + arg + ' done=' + reply.done);
    } else if (has('throw')) {
      reply.stdout('partial ');
      throw new Error('handler failure');
    } else if (has('exit')) {
      process.exit(3);
    } else if (has('big')) {
      const big = Buffer.alloc(Number(arg));
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
      reply.stdout(big);
      reply.stderr('done\\n');
      reply.exit(0);
    } else {
      reply.runLocally();
    }
  },
  onError: (e) => note('error ' + e.message),
  close: () => note('closed ' + index),
  pool,
});
`,
  );
  const notes = join(dir, 'notes');
  writeFileSync(notes, '');
  const crashes: number[] = [];
  const socketPath = join(dir, 'pool.sock');
  const pool = startWorkerPool({
    url: pathToFileURL(script),
    size,
    data: { notes },
    onCrash: (i) => crashes.push(i),
    socketPath: opts.ownSockets === true ? socketPath : undefined,
  });
  /** Requests that reached the main thread. */
  let viaMain = 0;
  const daemon = await startDaemon({
    socketPath,
    idleTimeoutMs: opts.idleTimeoutMs,
    activity: pool.activity,
    frameHandler: (frame, exchange) => {
      viaMain++;
      return pool.frameHandler(frame, exchange);
    },
  });
  const unpublish = opts.ownSockets === true ? await publishWorkers(socketPath, size) : undefined;
  return {
    env: { SPECBUILD_DAEMON_SOCKET: socketPath, SPECBUILD_NO_AUTOSTART: '1' },
    socketPath,
    daemon,
    notes: () => readFileSync(notes, 'utf8'),
    crashes,
    viaMain: () => viaMain,
    unpublish: () => unpublish?.(),
    async [Symbol.asyncDispose]() {
      await unpublish?.();
      await daemon.close();
      await pool.close();
    },
  };
}

describe('daemon worker pool (test workers)', () => {
  it('aborts the handling in the worker when the client goes away', async () => {
    await using dir = await tempDir();
    await using pool = await testPool(dir.path, 2);
    const c = client(['sh', '-c', 'exit 0', 'hang', 'h1'], pool.env);
    await until('the request to start', () => pool.notes().includes('started h1'));
    c.child.kill('SIGKILL');
    await c.done;
    await until('the abort', () => pool.notes().includes('aborted h1 done=true'));
    const r = await run(['sh', '-c', 'exit 9', 'whoami'], pool.env);
    assert.equal(r.code, 0, 'answered by the daemon, not run');
  });

  it('runs the command locally when the handler throws or the worker dies; replaces the worker', async () => {
    await using dir = await tempDir();
    await using pool = await testPool(dir.path, 1);
    let r = await run(['sh', '-c', 'echo ran; exit 4', 'throw'], pool.env);
    assert.deepEqual([r.code, r.stdout.toString()], [4, 'partial ran\n']);
    assert.match(pool.notes(), /^error handler failure$/m);

    r = await run(['sh', '-c', 'echo ran; exit 5', 'exit'], pool.env);
    assert.deepEqual([r.code, r.stdout.toString()], [5, 'ran\n'], 'the connection broke');
    assert.deepEqual(pool.crashes, [0]);
    r = await run(['sh', '-c', 'exit 9', 'whoami'], pool.env);
    assert.deepEqual([r.code, r.stdout.toString()], [0, 'worker 0\n']);
  });

  it('relays long output intact and spreads different commands over the workers', async () => {
    await using dir = await tempDir();
    await using pool = await testPool(dir.path, 2);
    const size = 5 * 1024 * 1024 + 3;
    const r = await run(['sh', '-c', 'exit 9', 'big', String(size)], pool.env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.length, size);
    assert.ok(r.stdout.every((b, i) => b === ((i * 7) & 255)));
    assert.equal(r.stderr.toString(), 'done\n');

    const cwd = realpathSync(dir.path);
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const argv = ['sh', '-c', 'exit 9', `-D${String(i)}`, 'whoami'];
      const w = await run(argv, pool.env, cwd);
      assert.equal(w.stdout.toString(), `worker ${String(homeWorker(argv, cwd, 2))}\n`);
      seen.add(w.stdout.toString());
    }
    assert.equal(seen.size, 2);
  });

  it("sends each command straight to its worker's own socket, by the daemon's hash, past the main thread", async () => {
    await using dir = await tempDir();
    await using pool = await testPool(dir.path, 2, { ownSockets: true });
    await until('both worker sockets', () =>
      [0, 1].every((i) => existsSync(workerSocketPath(pool.socketPath, i))),
    );
    assert.match(readlinkSync(workersLinkPath(pool.socketPath)), /^2:\d+$/);
    const cwd = realpathSync(dir.path);
    const whoami = async (i: number): Promise<void> => {
      const argv = ['sh', '-c', 'exit 9', `-D${String(i)}`, 'whoami'];
      const w = await run(argv, pool.env, cwd);
      // The client's hash (C) agrees with the pool's (TypeScript).
      assert.equal(w.stdout.toString(), `worker ${String(homeWorker(argv, cwd, 2))}\n`);
    };
    for (let i = 0; i < 8; i++) await whoami(i);
    assert.equal(pool.viaMain(), 0);

    // A worker that dies mid-request: its client runs the command itself; the
    // replacement listens on the same path again (the dead one's socket file
    // was left behind), and meanwhile its commands go through the main thread.
    const r = await run(['sh', '-c', 'echo ran; exit 5', 'exit'], pool.env, cwd);
    assert.deepEqual([r.code, r.stdout.toString()], [5, 'ran\n']);
    await until('the crash report', () => pool.crashes.length === 1);
    let direct = false;
    for (let k = 0; k < 200 && !direct; k++) {
      const before = pool.viaMain();
      for (let i = 0; i < 8; i++) await whoami(i);
      direct = pool.viaMain() === before;
      if (!direct) await sleep(20);
    }
    assert.ok(direct, 'every command went past the main thread again');

    // Without the link (an older daemon), everything goes through the main thread.
    await pool.unpublish();
    const before = pool.viaMain();
    for (let i = 0; i < 4; i++) await whoami(i);
    assert.equal(pool.viaMain(), before + 4);
  });

  it("counts the workers' own connections against the main thread's idle timeout", async () => {
    await using dir = await tempDir();
    await using pool = await testPool(dir.path, 1, { ownSockets: true, idleTimeoutMs: 300 });
    await until('the worker socket', () => existsSync(workerSocketPath(pool.socketPath, 0)));
    let closed = false;
    void pool.daemon.closed.then(() => {
      closed = true;
    });
    const c = client(['sh', '-c', 'exit 0', 'hang', 'h1'], pool.env);
    await until('the request to start', () => pool.notes().includes('started h1'));
    await sleep(900);
    assert.equal(closed, false, 'closed while a client of a worker was connected');
    assert.equal(pool.viaMain(), 0);
    c.child.kill('SIGKILL');
    await c.done;
    await until('the idle timeout', () => closed, 5000);
  });

  it('hashes only the command, not the environment', () => {
    const req = { tool: 'cc' as const, cwd: '/p', argv: ['gcc', '-c', 'a.c'], env: new Map() };
    const h = commandHash(encodeRequest(req));
    assert.equal(h, commandHash(encodeRequest({ ...req, env: new Map([['A', 'b']]) })));
    assert.notEqual(h, commandHash(encodeRequest({ ...req, cwd: '/q' })));
    assert.notEqual(h, commandHash(encodeRequest({ ...req, argv: ['gcc', '-c', 'b.c'] })));
    // A frame cut short still hashes (decoding rejects it later).
    assert.equal(typeof commandHash(encodeRequest(req).subarray(0, 13)), 'number');
  });

  it('says "first" once per key across threads sharing the table', () => {
    const a = new SharedOnce();
    const b = new SharedOnce(a.buffer);
    assert.equal(a.first('grpc://x'), true);
    assert.equal(b.first('grpc://x'), false);
    assert.equal(b.first('grpc://y'), true);
    assert.equal(a.first(randomBytes(8).toString('hex')), true);
  });
});
