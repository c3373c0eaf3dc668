// specbuild-exec end to end, both the Node program and the native client with
// its daemon: the real binaries, a real server process, gcc.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';
import { stopDaemonsUnder } from '../helpers/daemons.js';
import { startCliServer } from '../helpers/cli-server.js';
import { readWrapperLog } from '../helpers/cproject.js';

const execMain = join(repoRoot, 'dist', 'src', 'cli', 'exec-main.js');
const nativeExec = join(repoRoot, 'dist', 'native', 'specbuild-exec');
// The native client's daemon (and its stat cache) live here for the whole file.
const daemonHome = mkdtempSync(join(tmpdir(), 'specbuild-exec-daemon-'));
after(async () => {
  await stopDaemonsUnder(daemonHome);
  rmSync(daemonHome, { recursive: true, force: true });
});

type Variant = 'node' | 'native';

function wrapWith(variant: Variant) {
  return (cwd: string, args: string[], env: Record<string, string> = {}) => {
    const [cmd, argv] =
      variant === 'node' ? [process.execPath, [execMain, ...args]] : [nativeExec, args];
    return spawnSync(cmd, argv, {
      cwd,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        SPECBUILD_DAEMON_SOCKET: join(daemonHome, 'daemon.sock'),
        XDG_CACHE_HOME: join(daemonHome, 'xdg'),
        ...env,
      },
      timeout: 60_000,
    });
  };
}

for (const variant of ['node', 'native'] as const) {
  describe(`specbuild-exec (${variant})`, () => {
    const wrap = wrapWith(variant);
    it('misses, then hits, writing outputs and replaying output; failures pass through', async () => {
      await using dir = await tempDir();
      const server = await startCliServer(join(dir.path, 'cache'));
      try {
        const proj = join(dir.path, 'proj');
        const log = join(dir.path, 'wrapper.log');
        spawnSync('mkdir', ['-p', proj]);
        writeFileSync(join(proj, 'a.c'), 'int a(void) { return 1; }\n#warning hello-from-gcc\n');
        const args = [
          '--server',
          server.address,
          '--input',
          'a.c',
          '--output',
          'a.o',
          '--log',
          log,
          '--env',
          'PATH=/usr/bin:/bin',
          '--',
          'gcc',
          '-c',
          'a.c',
          '-o',
          'a.o',
        ];
        const first = wrap(proj, args);
        assert.equal(first.status, 0, first.stderr);
        assert.match(first.stderr, /hello-from-gcc/);
        const obj = readFileSync(join(proj, 'a.o'));
        rmSync(join(proj, 'a.o'));
        const second = wrap(proj, args);
        assert.equal(second.status, 0, second.stderr);
        assert.equal(second.stderr, first.stderr, 'stderr replayed byte for byte');
        assert.ok(readFileSync(join(proj, 'a.o')).equals(obj), 'the cached object is written back');
        const lines = readWrapperLog(log);
        assert.deepEqual(
          lines.map((l) => l.outcome),
          ['miss', 'hit'],
        );
        assert.equal(lines[0]?.action, lines[1]?.action);
        assert.match(lines[0]?.action ?? '', /^[0-9a-f]{64}\/\d+$/);
        assert.deepEqual(lines[0]?.argv, ['gcc', '-c', 'a.c', '-o', 'a.o']);

        writeFileSync(join(proj, 'bad.c'), 'int broken( {\n');
        const bad = wrap(proj, [
          '--server',
          server.address,
          '--input',
          'bad.c',
          '--output',
          'bad.o',
          '--env',
          'PATH=/usr/bin:/bin',
          '--',
          'gcc',
          '-c',
          'bad.c',
          '-o',
          'bad.o',
        ]);
        assert.equal(bad.status, 1);
        assert.match(bad.stderr, /bad\.c:1/);
        assert.ok(!existsSync(join(proj, 'bad.o')));
      } finally {
        await server.stop();
      }
    });

    it('takes directories and symlinks as inputs, and directories as outputs', async () => {
      await using dir = await tempDir();
      const server = await startCliServer(join(dir.path, 'cache'));
      try {
        const proj = join(dir.path, 'proj');
        mkdirSync(join(proj, 'src', 'sub'), { recursive: true });
        writeFileSync(join(proj, 'src', 'a.txt'), 'alpha\n');
        writeFileSync(join(proj, 'src', 'sub', 'b.txt'), 'beta\n');
        symlinkSync('src/a.txt', join(proj, 'link.txt'));
        const args = [
          '--server',
          server.address,
          '--input',
          'src',
          '--input',
          'link.txt',
          '--output',
          'out',
          '--log',
          join(dir.path, 'dirs.log'),
          '--env',
          'PATH=/usr/bin:/bin',
          '--',
          'sh',
          '-c',
          'mkdir -p out/deep && cat src/sub/b.txt link.txt > out/deep/both.txt && ln -s deep/both.txt out/l',
        ];
        for (let i = 0; i < 2; i++) {
          rmSync(join(proj, 'out'), { recursive: true, force: true });
          const r = wrap(proj, args);
          assert.equal(r.status, 0, r.stderr);
          assert.equal(
            readFileSync(join(proj, 'out', 'deep', 'both.txt'), 'utf8'),
            'beta\nalpha\n',
          );
          assert.equal(readlinkSync(join(proj, 'out', 'l')), 'deep/both.txt');
        }
        assert.deepEqual(
          readWrapperLog(join(dir.path, 'dirs.log')).map((l) => l.outcome),
          ['miss', 'hit'],
        );
      } finally {
        await server.stop();
      }
    });

    it('writes nothing once its client is killed; the server still caches the result', async () => {
      await using dir = await tempDir();
      const server = await startCliServer(join(dir.path, 'cache'));
      try {
        const args = [
          '--server',
          server.address,
          '--output',
          'out.txt',
          '--env',
          'PATH=/usr/bin:/bin',
          '--',
          'sh',
          '-c',
          'sleep 1.5; echo late > out.txt',
        ];
        const [cmd, argv] =
          variant === 'node' ? [process.execPath, [execMain, ...args]] : [nativeExec, args];
        const child = spawn(cmd, argv, {
          cwd: dir.path,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            SPECBUILD_DAEMON_SOCKET: join(daemonHome, 'daemon.sock'),
            XDG_CACHE_HOME: join(daemonHome, 'xdg'),
          },
          stdio: 'ignore',
        });
        await sleep(700); // connected, action sent, command running on the server
        child.kill('SIGKILL');
        await once(child, 'exit');
        await sleep(2500); // the execution has ended by now
        assert.ok(!existsSync(join(dir.path, 'out.txt')), 'an output appeared after the kill');
        const again = wrap(dir.path, args);
        assert.equal(again.status, 0, again.stderr);
        assert.equal(readFileSync(join(dir.path, 'out.txt'), 'utf8'), 'late\n');
      } finally {
        await server.stop();
      }
    });

    it('runs locally without a server, and falls back when the server is down', async () => {
      await using dir = await tempDir();
      const log = join(dir.path, 'log');
      // A command killed by a signal: 128 + its number, as a shell reports it
      // (the native client re-raises the signal itself).
      const killed = wrap(dir.path, ['--', 'sh', '-c', 'kill -9 $$']);
      if (variant === 'node') assert.equal(killed.status, 137);
      else assert.equal(killed.signal, 'SIGKILL');
      const local = wrap(dir.path, [
        '--log',
        log,
        '--',
        'sh',
        '-c',
        'echo local > out.txt; exit 4',
      ]);
      assert.equal(local.status, 4);
      assert.equal(readFileSync(join(dir.path, 'out.txt'), 'utf8'), 'local\n');
      const down = wrap(
        dir.path,
        ['--log', log, '--output', 'out2.txt', '--', 'sh', '-c', 'echo fb > out2.txt'],
        {
          SPECBUILD_SERVER: `unix:${join(dir.path, 'nobody-listens.sock')}`,
        },
      );
      assert.equal(down.status, 0);
      assert.match(down.stderr, /ran the command locally/);
      assert.equal(readFileSync(join(dir.path, 'out2.txt'), 'utf8'), 'fb\n');
      const outcomes = readWrapperLog(log).map((l) => [l.outcome, l.error]);
      assert.deepEqual(outcomes, [
        ['local', undefined],
        ['fallback', 'remote/unavailable'],
      ]);
    });

    it('explains usage errors', () => {
      const r = wrap('/', ['--bogus', 'x', '--', 'true']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /unknown option --bogus/);
      const none = wrap('/', ['--input', 'x']);
      assert.equal(none.status, 2);
      const noInput = wrap('/', ['--input', 'no-such-file', '--', 'true'], {
        SPECBUILD_SERVER: 'unix:/nonexistent.sock',
      });
      assert.equal(noInput.status, 2, 'a missing --input is a usage error, never run');
      assert.match(noInput.stderr, /--input no-such-file: \/no-such-file does not exist/);
      for (const bad of ['../x', '/tmp/x', 'a/../../x']) {
        const out = wrap('/', ['--output', bad, '--', 'true']);
        assert.equal(out.status, 2, `--output ${bad}`);
        assert.match(out.stderr, /is not a path inside the working directory/);
      }
      const help = wrap('/', ['--help']);
      assert.equal(help.status, 0);
      assert.match(help.stdout, /--platform K=V/);
    });
  });
}
