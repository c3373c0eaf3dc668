// The native wrapper client (dist/native/specbuild-cc, specbuild-exec) and the
// daemon transport, end to end with real processes: relaying output and exit
// codes byte for byte, local runs, fallbacks, autostart and the idle exit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  existsSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  MAX_REQUEST_BYTES,
  decodeRequest,
  decodeResponses,
  encodeOutput,
  encodeRequest,
  encodeResponse,
  type DaemonRequest,
} from '../../src/wrap/daemon-protocol.js';
import { startDaemon, type DaemonHandler } from '../../src/wrap/daemon-server.js';
import { repoRoot } from '../helpers/paths.js';
import { readWrapperLog } from '../helpers/cproject.js';
import { tempDir } from '../helpers/tmp.js';

const nativeDir = join(repoRoot, 'dist', 'native');
const ccBin = join(nativeDir, 'specbuild-cc');
const execBin = join(nativeDir, 'specbuild-exec');
const daemonServerJs = join(repoRoot, 'dist', 'src', 'wrap', 'daemon-server.js');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** Runs a client asynchronously: an in-process daemon must keep serving meanwhile. */
async function run(
  bin: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<Run> {
  const child = spawn(bin, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  return {
    code,
    signal,
    stdout: Buffer.concat(out),
    stderr: Buffer.concat(err),
  };
}

const big = randomBytes(5 * 1024 * 1024);
const binary = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));

const handler: DaemonHandler = async (req, reply) => {
  if (req.argv.includes('--echo-test')) {
    reply.stdout('hello');
    reply.stderr('warning: from the daemon\n');
    reply.exit(3);
  } else if (req.argv.includes('--big')) {
    reply.stderr(binary);
    reply.stdout(big);
    reply.stderr(binary);
    reply.exit(0);
  } else if (req.argv.includes('--request')) {
    const { tool, cwd, argv, env } = req;
    reply.stdout(JSON.stringify({ tool, cwd, argv, env: Object.fromEntries(env) }));
    reply.exit(0);
  } else if (req.argv.includes('--slow')) {
    await sleep(50);
    reply.stdout('slow');
    reply.exit(300); // out of range: the client exits 255
  } else if (req.argv.includes('--throw')) {
    reply.stdout('partial ');
    throw new Error('handler failure');
  } else if (req.argv.includes('--rt')) {
    reply.exit(0);
  } else if (req.argv.includes('--silent')) {
    // returns without ending the exchange
  } else {
    reply.runLocally();
  }
};

describe('daemon protocol', () => {
  const req: DaemonRequest = {
    tool: 'cc',
    cwd: '/src/proj',
    argv: ['gcc', '-c', 'a b.c', '', 'é'],
    env: new Map([
      ['PATH', '/usr/bin'],
      ['EQ', 'a=b'],
    ]),
    umask: 0o027,
  };

  it('round-trips requests and responses', () => {
    assert.deepEqual(decodeRequest(encodeRequest(req)), req);
    const frames = Buffer.concat([
      ...encodeOutput('stdout', Buffer.from('out')),
      encodeResponse({ type: 'stderr', data: binary }),
      encodeResponse({ type: 'exit', code: -1 }),
      encodeResponse({ type: 'local' }),
    ]);
    const { responses, rest } = decodeResponses(frames.subarray(0, frames.length - 2));
    assert.equal(rest.length, 3);
    assert.deepEqual(responses, [
      { type: 'stdout', data: new Uint8Array(Buffer.from('out')) },
      { type: 'stderr', data: new Uint8Array(binary) },
      { type: 'exit', code: -1 },
    ]);
    assert.throws(() => encodeResponse({ type: 'exit', code: 1.5 }), RangeError);
  });

  it('rejects malformed requests', () => {
    const good = encodeRequest(req);
    const patched = (at: number, bytes: number[]) => {
      const b = Buffer.from(good);
      Buffer.from(bytes).copy(b, at);
      return b;
    };
    const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24];
    const bad: [string, Uint8Array, RegExp][] = [
      ['magic', patched(0, [0x58]), /bad magic/],
      ['length too large', patched(4, u32(MAX_REQUEST_BYTES + 1)), /exceeds/],
      ['length too small', patched(4, u32(8)), /too short/],
      ['truncated', good.subarray(0, good.length - 1), /header says/],
      ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), /header says/],
      ['tool', patched(12, [0x78]), /unknown tool "xc"/], // "cc" -> "xc"
      ['cwd', patched(18, [0x78]), /not absolute/],
      ['UTF-8', patched(18 + 9 + 4 + 4, [0xff]), /argument 0 is not valid UTF-8/],
      ['NUL', patched(18 + 9 + 4 + 4, [0]), /NUL byte in argument 0/],
      ['count', patched(18 + 9, u32(0xffffffff)), /argument count 4294967295/],
      ['short string', patched(18 + 9 + 4, u32(1000)), /truncated in argument 0/],
      ['stray', patched(4, u32(good.length + 4)), /header says/],
    ];
    for (const [what, frame, message] of bad) {
      const b = Buffer.from(frame);
      // Keep the header's length consistent unless that is what is under test.
      if (
        !['length too large', 'length too small', 'truncated', 'trailing bytes', 'stray'].includes(
          what,
        )
      )
        b.writeUInt32LE(b.length, 4);
      assert.throws(() => decodeRequest(b), message, what);
      assert.throws(() => decodeRequest(b), { code: 'wrap/protocol' }, what);
    }
    // The umask (the frame's last field) is a mode mask, at most 0777.
    const umask = Buffer.from(good);
    umask.writeUInt32LE(0o1000, umask.length - 4);
    assert.throws(() => decodeRequest(umask), /umask 1000 is not a file mode mask/);
    // A request without one (SBD1, an older client) is refused by its magic.
    const old = Buffer.from(good.subarray(0, good.length - 4));
    old.write('SBD1', 0);
    old.writeUInt32LE(old.length, 4);
    assert.throws(() => decodeRequest(old), /bad magic/);
    // Without a umask given, 022 is sent.
    assert.equal(decodeRequest(encodeRequest({ ...req, umask: undefined })).umask, 0o022);
    // Inside a consistent frame, bytes after the umask are stray.
    const padded = Buffer.concat([good, Buffer.alloc(4)]);
    padded.writeUInt32LE(padded.length, 4);
    assert.throws(() => decodeRequest(padded), /4 stray bytes after the request/);
  });
});

describe('native wrapper client', () => {
  it('relays stdout, stderr and exit codes byte for byte, and the request itself', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'run', 'daemon.sock');
    const daemon = await startDaemon({ socketPath, handler });
    const env = { SPECBUILD_DAEMON_SOCKET: socketPath, SPECBUILD_NO_AUTOSTART: '1' };
    try {
      assert.equal(statSync(join(dir.path, 'run')).mode & 0o777, 0o700);
      assert.equal(statSync(socketPath).mode & 0o777, 0o600);

      let r = await run(ccBin, ['gcc', '--echo-test'], env);
      assert.equal(r.code, 3);
      assert.equal(r.stdout.toString(), 'hello');
      assert.equal(r.stderr.toString(), 'warning: from the daemon\n');

      r = await run(ccBin, ['gcc', '--big'], env);
      assert.equal(r.code, 0);
      assert.ok(r.stdout.equals(big), 'the 5 MiB stdout arrives intact');
      assert.ok(r.stderr.equals(Buffer.concat([binary, binary])));

      const args = ['--log', join(dir.path, 'unused.log'), '--request', 'a b', '', 'é"\\'];
      r = await run(execBin, [...args, '--', 'true'], { ...env, FOO: 'x=y' }, dir.path);
      assert.equal(r.code, 0, r.stderr.toString());
      const seen = JSON.parse(r.stdout.toString()) as {
        tool: string;
        cwd: string;
        argv: string[];
        env: Record<string, string>;
      };
      assert.equal(seen.tool, 'exec');
      assert.equal(seen.cwd, realpathSync(dir.path));
      assert.deepEqual(seen.argv, [...args, '--', 'true']);
      assert.equal(seen.env.FOO, 'x=y');
      assert.equal(seen.env.SPECBUILD_DAEMON_SOCKET, socketPath);

      r = await run(ccBin, ['gcc', '--slow'], env);
      assert.deepEqual([r.code, r.stdout.toString()], [255, 'slow']);
    } finally {
      await daemon.close();
    }
    assert.equal(existsSync(socketPath), false, 'the socket is removed on close');
  });

  it('runs the command itself when the daemon says so or its handler fails', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'daemon.sock');
    const log = join(dir.path, 'wrapper.log');
    const errors: unknown[] = [];
    const daemon = await startDaemon({
      socketPath,
      handler,
      onError: (e) => errors.push(e),
    });
    const env = {
      SPECBUILD_DAEMON_SOCKET: socketPath,
      SPECBUILD_NO_AUTOSTART: '1',
      SPECBUILD_WRAPPER_LOG: log,
    };
    try {
      let r = await run(ccBin, ['sh', '-c', 'echo local; exit 5'], env);
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr.toString()], [5, 'local\n', '']);

      r = await run(execBin, ['--input', 'x', '--', 'sh', '-c', 'echo ex >&2; exit 4'], env);
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr.toString()], [4, '', 'ex\n']);

      r = await run(ccBin, ['sh', '-c', 'echo ran; exit 7', '--throw'], env);
      assert.equal(r.code, 7);
      assert.equal(r.stdout.toString(), 'partial ran\n');
      assert.equal(errors.length, 1);

      r = await run(ccBin, ['no-such-compiler-here'], env);
      assert.equal(r.code, 127);
      assert.match(r.stderr.toString(), /cannot run no-such-compiler-here/);

      // A handler that ends without answering: the client runs the command.
      r = await run(ccBin, ['sh', '-c', 'echo silent; exit 8', '--silent'], env);
      assert.deepEqual([r.code, r.stdout.toString()], [8, 'silent\n']);

      // The daemon decided on these local runs and logs them; the client does not.
      assert.equal(existsSync(log), false);

      // A bad frame closes that connection only.
      const s = createConnection(socketPath);
      s.end(Buffer.from('GET / HTTP/1.0\r\n\r\n'));
      s.resume();
      await once(s, 'close');
      r = await run(ccBin, ['gcc', '--echo-test'], env);
      assert.equal(r.code, 3);
    } finally {
      await daemon.close();
    }
  });

  it('falls back to a local run, with a warning and a log line, without a daemon', async () => {
    await using dir = await tempDir();
    const log = join(dir.path, 'wrapper.log');
    const env = {
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'none.sock'),
      SPECBUILD_NO_AUTOSTART: '1',
      SPECBUILD_WRAPPER_LOG: log,
    };
    const odd = 'q"uo\\te\n\ttab é';
    let r = await run(ccBin, ['sh', '-c', 'echo fb; exit 6', odd], env);
    assert.deepEqual([r.code, r.stdout.toString()], [6, 'fb\n']);
    const warning = r.stderr.toString();
    assert.match(
      warning,
      /^specbuild-cc: daemon unavailable \(.*none\.sock.*\); compiling locally\n$/,
    );

    r = await run(execBin, ['--log', log, '--', 'sh', '-c', 'exit 0'], {
      ...env,
      SPECBUILD_WRAPPER_LOG: '',
    });
    assert.equal(r.code, 0);
    assert.match(r.stderr.toString(), /^specbuild-exec: daemon unavailable .*running locally\n$/);

    // Too long a socket path for a unix socket: the same.
    r = await run(ccBin, ['sh', '-c', 'exit 0'], {
      SPECBUILD_DAEMON_SOCKET: `/${'x'.repeat(200)}.sock`,
    });
    assert.equal(r.code, 0);
    assert.match(r.stderr.toString(), /daemon unavailable \(no socket path/);

    const lines = readWrapperLog(log);
    assert.equal(lines.length, 2);
    const [first, second] = lines;
    assert.ok(first && second);
    assert.deepEqual(first.argv, ['sh', '-c', 'echo fb; exit 6', odd]);
    assert.equal(first.outcome, 'fallback');
    assert.equal(first.action, '');
    assert.equal(typeof first.ms, 'number');
    assert.deepEqual(second.argv, ['sh', '-c', 'exit 0']);
    assert.equal(second.outcome, 'fallback');

    // Usage errors never reach a daemon.
    r = await run(ccBin, [], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr.toString(), /usage: specbuild-cc/);
    r = await run(execBin, ['--input', 'x'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr.toString(), /usage: specbuild-exec/);
  });

  it('runs locally, quietly but logged, when the connection breaks before the exit', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'broken.sock');
    const log = join(dir.path, 'wrapper.log');
    const server = createServer((s) => {
      s.once('data', () => s.destroy());
    });
    server.listen(socketPath);
    await once(server, 'listening');
    try {
      const r = await run(ccBin, ['sh', '-c', 'echo after; exit 9'], {
        SPECBUILD_DAEMON_SOCKET: socketPath,
        SPECBUILD_WRAPPER_LOG: log,
      });
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr.toString()], [9, 'after\n', '']);
      assert.equal(readWrapperLog(log)[0]?.outcome, 'fallback');
    } finally {
      server.close();
    }
  });

  it('replaces a stale socket, refuses a live one, and closes when idle', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'daemon.sock');
    // A socket file whose listener was killed.
    const stale = spawn(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await once(stale, 'exit');
    assert.ok(statSync(socketPath).isSocket());
    const daemon = await startDaemon({ socketPath, handler, idleTimeoutMs: 300 });
    await assert.rejects(startDaemon({ socketPath, handler }), /already listening/);
    const started = performance.now();
    await daemon.closed;
    assert.ok(performance.now() - started >= 250);
    assert.equal(existsSync(socketPath), false);

    writeFileSync(socketPath, 'not a socket');
    await assert.rejects(startDaemon({ socketPath, handler }), /not a socket/);
  });

  it('stays up while an exchange runs, past its idle timeout', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'daemon.sock');
    const daemon = await startDaemon({
      socketPath,
      idleTimeoutMs: 100,
      handler: async (_req, reply) => {
        await sleep(600);
        reply.stdout('finished');
        reply.exit(0);
      },
    });
    const r = await run(ccBin, ['gcc', 'x'], {
      SPECBUILD_DAEMON_SOCKET: socketPath,
      SPECBUILD_NO_AUTOSTART: '1',
    });
    assert.deepEqual([r.code, r.stdout.toString()], [0, 'finished']);
    await daemon.closed; // and idles out afterwards
    assert.equal(existsSync(socketPath), false);
  });

  it('exits when its socket is removed or replaced (it could not be reached any more)', async () => {
    await using dir = await tempDir();
    const socketPath = join(dir.path, 'daemon.sock');
    const idle = { idleTimeoutMs: 60_000, watchSocketMs: 50 };
    const removed = await startDaemon({ socketPath, handler, ...idle });
    rmSync(socketPath);
    await removed.closed;

    const replaced = await startDaemon({ socketPath, handler, ...idle });
    rmSync(socketPath);
    writeFileSync(socketPath, 'someone else');
    await replaced.closed;
    assert.equal(readFileSync(socketPath, 'utf8'), 'someone else', 'not its file to remove');
  });

  it("starts the real daemon without the build's other descriptors", async () => {
    await using dir = await tempDir();
    // fd 3 of the client is a pipe whose reader waits for EOF (as make's
    // jobserver or a `$(shell ...)` would); the daemon must not keep it open.
    const child = spawn(execBin, ['--', 'true'], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        SPECBUILD_DAEMON_SOCKET: join(dir.path, 'd.sock'),
        XDG_CACHE_HOME: join(dir.path, 'xdg'),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const extra = child.stdio[3];
    assert.ok(extra && 'resume' in extra);
    extra.resume();
    // 'close' comes only once every stdio stream, fd 3 included, reached EOF.
    const closed = await Promise.race([
      once(child, 'close').then(([code]) => code as number | null),
      sleep(10_000).then(() => 'still open' as const),
    ]);
    assert.ok(existsSync(join(dir.path, 'd.sock')), 'the daemon was started');
    assert.notEqual(closed, 'still open', "the daemon still holds the client's fd 3");
    assert.equal(closed, 0);
  });

  it('autostarts exactly one daemon for concurrent clients; it exits when idle', async () => {
    await using dir = await tempDir();
    const script = join(dir.path, 'test-daemon.mjs');
    const pids = join(dir.path, 'pids');
    writeFileSync(
      script,
      `import { appendFileSync } from 'node:fs';
import { startDaemon } from ${JSON.stringify(pathToFileURL(daemonServerJs).href)};
const socketPath = process.argv[process.argv.indexOf('--socket') + 1];
appendFileSync(process.env.TEST_DAEMON_PIDS, 'start ' + process.pid + '\\n');
const daemon = await startDaemon({
  socketPath,
  idleTimeoutMs: Number(process.env.TEST_DAEMON_IDLE_MS),
  handler: (req, reply) => {
    reply.stdout('auto ' + process.pid + ' ' + req.argv.join(' ') + '\\n');
    reply.exit(0);
  },
});
await daemon.closed;
appendFileSync(process.env.TEST_DAEMON_PIDS, 'exit ' + process.pid + '\\n');
`,
    );
    const env = {
      XDG_RUNTIME_DIR: join(dir.path, 'xdg'),
      SPECBUILD_DAEMON_JS: script,
      TEST_DAEMON_PIDS: pids,
      TEST_DAEMON_IDLE_MS: '1500',
    };
    const runs = await Promise.all(
      [0, 1, 2, 3].map((i) => run(ccBin, ['gcc', `-DN=${i}`], env, dir.path)),
    );
    const started = readFileSync(pids, 'utf8').trim().split('\n');
    assert.equal(started.length, 1, started.join('; '));
    const pid = Number(/^start (\d+)$/.exec(started[0] ?? '')?.[1]);
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stderr.toString(), '');
      assert.equal(r.stdout.toString(), `auto ${pid} gcc -DN=${i}\n`);
    });
    // The default socket is named after the build, so a rebuilt client never
    // talks to a stale daemon.
    const names = readdirSync(join(dir.path, 'xdg', 'specbuild')).filter((n) =>
      n.endsWith('.sock'),
    );
    assert.equal(names.length, 1, names.join(', '));
    assert.match(names[0] ?? '', /^daemon-[0-9a-f]{16}\.sock$/);
    const socketPath = join(dir.path, 'xdg', 'specbuild', names[0] ?? '');
    assert.ok(statSync(socketPath).isSocket());

    // The warm daemon serves the next client too, then exits after 1.5 s idle.
    const again = await run(ccBin, ['gcc', 'again'], env);
    assert.equal(again.stdout.toString(), `auto ${pid} gcc again\n`);
    const deadline = Date.now() + 15_000;
    while (!readFileSync(pids, 'utf8').includes(`exit ${pid}`)) {
      assert.ok(Date.now() < deadline, 'the autostarted daemon did not exit when idle');
      await sleep(50);
    }
    assert.equal(existsSync(socketPath), false);
    while (isRunning(pid)) {
      assert.ok(Date.now() < deadline, `daemon ${pid} still running`);
      await sleep(20);
    }
  });
});

/** Whether pid is a live process (a zombie awaiting its reaper is not). */
function isRunning(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
