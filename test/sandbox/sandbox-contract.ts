// The real sandbox: exact environment, overlay layers at absolute paths, host
// untouched by writes, binds, timeouts that kill every process, no network.
// Run on both ways of starting the helper: through the process's spawner
// (sandbox.test.ts) and spawned per sandbox (sandbox-per-run.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  runInSandbox,
  sandboxArgs,
  sandboxHelper,
  sharedSpawner,
  type SandboxSpec,
} from '../../src/sandbox/index.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';

function rig(tmp: TempDir) {
  const dirs = ['layer', 'upper', 'scratch', 'out'].map((d) => join(tmp.path, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [layer, upper, scratch, out] = dirs as [string, string, string, string];
  // The command is not host root: a writable bind must let it write (tmp.path is 0700).
  chmodSync(out, 0o777);
  const run = (argv: string[], extra: Partial<SandboxSpec> = {}) =>
    runInSandbox({
      argv,
      env: { PATH: '/usr/bin:/bin' },
      layers: [layer],
      upperDir: upper,
      scratchDir: scratch,
      stdoutFile: join(tmp.path, 'stdout'),
      stderrFile: join(tmp.path, 'stderr'),
      binds: [{ src: out, dst: '/out' }],
      ...extra,
    });
  const stdout = () => readFileSync(join(tmp.path, 'stdout'), 'utf8');
  const stderr = () => readFileSync(join(tmp.path, 'stderr'), 'utf8');
  return { layer, upper, scratch, out, run, stdout, stderr };
}

function processesWith(marker: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** How the helper is started: through the spawner, or spawned per sandbox. */
export type HelperPath = 'spawner' | 'per-run';

export function sandboxContract(path: HelperPath): void {
  describe(`sandbox (${path})`, () => {
    it(`starts the helper ${path === 'spawner' ? 'through the spawner' : 'once per sandbox'}`, async () => {
      const spawner = await sharedSpawner();
      assert.equal(spawner !== undefined, path === 'spawner');
    });

    it('gives the command exactly the environment, working directory and exit code asked for', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      mkdirSync(join(r.layer, 'work', 'dir'), { recursive: true });
      const res = await r.run(['sh', '-c', 'env; pwd; exit 7'], {
        env: { PATH: '/usr/bin:/bin', FOO: 'bar baz' },
        cwd: '/work/dir',
      });
      assert.equal(res.exitCode, 7);
      const lines = r.stdout().trim().split('\n');
      assert.deepEqual(
        lines
          .filter((l) => !l.startsWith('PWD=') && !l.startsWith('SHLVL=') && !l.startsWith('_='))
          .sort(),
        ['FOO=bar baz', 'PATH=/usr/bin:/bin', '/work/dir'].sort(),
      );
    });

    it('overlays layers above the host so staged headers shadow and extend /usr/include', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      mkdirSync(join(r.layer, 'usr', 'include'), { recursive: true });
      mkdirSync(join(r.layer, 'buildstream', 'proj', 'app'), { recursive: true });
      writeFileSync(join(r.layer, 'usr', 'include', 'dep.h'), '#define DEP 42\n');
      writeFileSync(join(r.layer, 'usr', 'include', 'stdlib.h'), '#define SHADOWED 1\n');
      writeFileSync(
        join(r.layer, 'buildstream', 'proj', 'app', 'main.c'),
        '#include <dep.h>\n#include <stdlib.h>\n#include <stdio.h>\nint main(void){printf("%d %d\\n", DEP, SHADOWED);return 0;}\n',
      );
      const res = await r.run(['sh', '-c', 'gcc main.c -o /out/main && /out/main'], {
        cwd: '/buildstream/proj/app',
      });
      assert.equal(res.exitCode, 0, r.stderr());
      assert.equal(r.stdout(), '42 1\n');
      assert.ok(existsSync(join(r.out, 'main')), 'the writable bind received the output');
      assert.ok(!existsSync('/usr/include/dep.h'));
    });

    it("lets a layer's lib/ and bin/ win at /lib and /bin, merged with the host's", async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      for (const d of ['lib', 'app', 'bin']) mkdirSync(join(r.layer, d));
      writeFileSync(join(r.layer, 'lib', 'add.h'), 'int add(int a, int b);\n');
      writeFileSync(
        join(r.layer, 'lib', 'add.c'),
        '#include "add.h"\nint add(int a, int b) { return a + b; }\n',
      );
      writeFileSync(
        join(r.layer, 'app', 'main.c'),
        '#include <stdio.h>\n#include "add.h"\nint main(void) { printf("2 + 3 = %d\\n", add(2, 3)); return 0; }\n',
      );
      writeFileSync(join(r.layer, 'bin', 'greet'), '#!/bin/sh\necho hello from the layer\n');
      chmodSync(join(r.layer, 'bin', 'greet'), 0o755);
      const res = await r.run([
        'sh',
        '-c',
        'gcc -c lib/add.c -o lib/add.o && gcc -Ilib app/main.c lib/add.c -o app/app && ./app/app && ' +
          'greet && /bin/sh -c "echo /bin/sh works" && test -x /bin/ls && ls /lib/*/libc.so.6 >/dev/null',
      ]);
      assert.equal(res.exitCode, 0, r.stderr());
      assert.equal(r.stdout(), '2 + 3 = 5\nhello from the layer\n/bin/sh works\n');
      assert.equal(
        readFileSync(join(r.upper, 'lib', 'add.o'))
          .subarray(1, 4)
          .toString(),
        'ELF',
      );
      assert.ok(existsSync(join(r.upper, 'app', 'app')));
      assert.ok(!existsSync(join(r.layer, 'lib', 'add.o')), 'the layer is untouched');
    });

    it('keeps writes to /usr, /etc and layers away from the host and the layers', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      mkdirSync(join(r.layer, 'src'), { recursive: true });
      writeFileSync(join(r.layer, 'src', 'input.c'), 'original\n');
      chmodSync(join(r.layer, 'src', 'input.c'), 0o666); // writable for the command, not host root
      const marker = `specbuild-escape-${process.pid}-${Date.now()}`;
      const res = await r.run([
        'sh',
        '-c',
        `touch /usr/${marker}; echo changed > /src/input.c; touch /etc/${marker} 2>/dev/null; echo etc=$?; cat /src/input.c`,
      ]);
      assert.equal(res.exitCode, 0, r.stderr());
      assert.equal(r.stdout(), 'etc=1\nchanged\n');
      assert.ok(!existsSync(`/usr/${marker}`), '/usr on the host is untouched');
      assert.ok(!existsSync(`/etc/${marker}`), '/etc on the host is untouched');
      assert.equal(
        readFileSync(join(r.layer, 'src', 'input.c'), 'utf8'),
        'original\n',
        'the layer is untouched',
      );
      assert.equal(
        readFileSync(join(r.upper, 'src', 'input.c'), 'utf8'),
        'changed\n',
        'the write went to the upper dir',
      );
    });

    it('mounts its overlays volatile, so its end never syncs the disk of the upper directory', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      // Twice on one upper directory: a volatile overlay leaves a mark there that must not stop the next.
      for (let i = 0; i < 2; i++) {
        const res = await r.run(['sh', '-c', 'grep " /usr " /proc/self/mountinfo']);
        assert.equal(res.exitCode, 0, r.stderr());
        assert.match(r.stdout(), /\boverlay\b.*\bvolatile\b/);
      }
    });

    it('closes stdin and separates stdout from stderr', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      const res = await r.run(['sh', '-c', 'cat; echo out; echo err >&2']);
      assert.equal(res.exitCode, 0);
      assert.equal(r.stdout(), 'out\n');
      assert.equal(r.stderr(), 'err\n');
    });

    it('gives the command no descriptors but stdin, stdout and stderr', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      // ls's own directory stream is the one more it lists.
      const res = await r.run(['ls', '/proc/self/fd']);
      assert.equal(res.exitCode, 0, r.stderr());
      assert.deepEqual(r.stdout().trim().split('\n'), ['0', '1', '2', '3']);
    });

    it('kills every process of a command that times out', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      const marker = String(900000 + (process.pid % 99999));
      const res = await r.run(['sh', '-c', `sleep ${marker} & sleep ${marker}; echo never`], {
        timeoutMs: 300,
      });
      assert.equal(res.timedOut, true);
      assert.equal(res.signal, 'SIGKILL');
      assert.equal(r.stdout(), '');
      assert.equal(processesWith(`sleep\0${marker}`), 0, 'no process of the command survives');
    });

    it('reports a command killed by a signal, and a command that does not exist', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      const killed = await r.run(['sh', '-c', 'kill -TERM $$']);
      assert.equal(killed.signal, 'SIGTERM');
      const missing = await r.run(['no-such-command-xyz']);
      assert.equal(missing.exitCode, 127);
      assert.match(r.stderr(), /cannot execute no-such-command-xyz/);
    });

    it('has no network unless asked, but a working loopback', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      const server = createServer((s) => s.end('hello\n'));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const port = (server.address() as { port: number }).port;
      try {
        const probe = `exec 3<>/dev/tcp/127.0.0.1/${port} && head -1 <&3`;
        const isolated = await r.run(['bash', '-c', probe]);
        assert.notEqual(isolated.exitCode, 0, 'the host is unreachable from a private network');
        const open = await r.run(['bash', '-c', probe], { network: true });
        assert.equal(open.exitCode, 0, r.stderr());
        assert.equal(r.stdout(), 'hello\n');
        // Loopback works inside the private network: a listener there is reachable.
        const lo = await r.run([
          'perl',
          '-MIO::Socket::INET',
          '-e',
          '$l = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0) or die "listen: $!";' +
            '$c = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $l->sockport) or die "connect: $!";' +
            '$s = $l->accept; print $c "lo-ok\\n"; print scalar <$s>;',
        ]);
        assert.equal(lo.exitCode, 0, r.stderr());
        assert.equal(r.stdout(), 'lo-ok\n');
      } finally {
        server.close();
      }
    });

    it('rejects bad specs before starting anything', () => {
      const base = {
        argv: ['true'],
        env: {},
        scratchDir: '/tmp/x',
        stdoutFile: '/dev/null',
        stderrFile: '/dev/null',
      };
      assert.throws(() => sandboxArgs({ ...base, cwd: 'relative' }), { code: 'sandbox/setup' });
      assert.throws(() => sandboxArgs({ ...base, env: { 'A=B': 'x' } }), { code: 'sandbox/setup' });
      assert.throws(() => sandboxArgs({ ...base, argv: [] }), { code: 'sandbox/setup' });
      assert.throws(() => sandboxArgs({ ...base, layers: ['rel'] }), { code: 'sandbox/setup' });
    });

    it('fails with a clear setup error when the working directory does not exist', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      await assert.rejects(
        r.run(['true'], { cwd: '/no/such/dir' }),
        (e: { code?: string; message?: string }) => {
          assert.equal(e.code, 'sandbox/setup');
          assert.match(e.message ?? '', /working directory \/no\/such\/dir/);
          return true;
        },
      );
    });

    it('works for a user who is not root, through a user namespace', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      chmodSync(tmp.path, 0o777);
      for (const d of [r.layer, r.upper, r.scratch, r.out]) chmodSync(d, 0o777);
      const args = sandboxArgs({
        argv: ['sh', '-c', 'id -u; touch /out/by-nobody'],
        env: { PATH: '/usr/bin:/bin' },
        layers: [r.layer],
        upperDir: r.upper,
        scratchDir: r.scratch,
        binds: [{ src: r.out, dst: '/out' }],
        stdoutFile: '/dev/null',
        stderrFile: '/dev/null',
      });
      const res = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', sandboxHelper(), ...args],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout.trim(), '0', 'root inside its own user namespace');
      assert.ok(existsSync(join(r.out, 'by-nobody')));
    });
  });

  describe(`sandbox capture (${path})`, () => {
    it('shows the merged file system to the caller after the command, before teardown', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      mkdirSync(join(r.layer, 'w'), { recursive: true });
      writeFileSync(join(r.layer, 'w', 'in.txt'), 'input\n');
      const seen: Record<string, string> = {};
      const res = await r.run(['sh', '-c', 'echo made > out.txt; echo top > /top.txt; rm in.txt'], {
        cwd: '/w',
        capture: async (root) => {
          seen.out = readFileSync(join(root, 'w', 'out.txt'), 'utf8');
          seen.top = readFileSync(join(root, 'top.txt'), 'utf8');
          seen.removed = String(existsSync(join(root, 'w', 'in.txt')));
          await Promise.resolve();
        },
      });
      assert.equal(res.exitCode, 0, r.stderr());
      assert.deepEqual(seen, { out: 'made\n', top: 'top\n', removed: 'false' });
      assert.equal(readFileSync(join(r.layer, 'w', 'in.txt'), 'utf8'), 'input\n');
    });

    it('does not count the time spent reading outputs against the timeout', async () => {
      await using tmp = await tempDir();
      const r = rig(tmp);
      const res = await r.run(['sh', '-c', 'echo made > /out.txt'], {
        timeoutMs: 1000,
        capture: async (root) => {
          // Outlasts the command's timeout; the sandbox must stay up meanwhile.
          await new Promise((resolve) => setTimeout(resolve, 1500));
          assert.equal(readFileSync(join(root, 'out.txt'), 'utf8'), 'made\n');
        },
      });
      assert.equal(res.timedOut, false);
      assert.equal(res.exitCode, 0, r.stderr());
    });
  });
}
