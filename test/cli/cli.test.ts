// The specbuild command line as a user meets it: help, usage errors with exit
// code 2 and a hint, and a server that starts, serves and stops on SIGTERM.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { cliMain } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

/** Waits (not a timed assertion: the bound only stops a hung test) until `check` holds. */
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(check(), 'gave up waiting');
}

function run(...args: string[]) {
  return spawnSync(process.execPath, [cliMain, ...args], { encoding: 'utf8', timeout: 20_000 });
}

describe('specbuild CLI', () => {
  it('explains itself with --help', () => {
    const top = run('--help');
    assert.equal(top.status, 0);
    assert.match(top.stdout, /server/);
    const server = run('server', '--help');
    assert.equal(server.status, 0);
    // It says that it executes actions too, how to serve storage only, and shows how.
    assert.match(server.stdout, /\bExecution\b/);
    assert.match(server.stdout, /--jobs 0\b[^\n]*\n?[^\n]*storage only/);
    assert.match(server.stdout, /^Examples:\n {2}specbuild server\b/m);
    assert.ok((server.stdout.match(/^ {2}specbuild server\b/gm) ?? []).length >= 2);
    for (const flag of [
      '--listen',
      '--cache-dir',
      '--instance',
      '--quota',
      '--token-file',
      '--tls-cert',
      '--tls-client-ca',
    ]) {
      assert.ok(server.stdout.includes(flag), flag);
    }
  });

  it('reports usage errors with exit code 2 and a hint', () => {
    const unknown = run('frobnicate');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    assert.match(
      unknown.stderr,
      /Usage: specbuild \[options\] \[command\]/,
      'the usage follows the error',
    );
    const badFlag = run('server', '--no-such-flag');
    assert.equal(badFlag.status, 2);
    const badQuota = run('server', '--quota', 'lots');
    assert.equal(badQuota.status, 2);
    assert.match(badQuota.stderr, /--quota/);
    const badInstance = run('server', '--instance', '../x');
    assert.equal(badInstance.status, 2);
    const halfTls = run('server', '--tls-cert', '/nonexistent');
    assert.equal(halfTls.status, 2);
    const clientCaAlone = run('server', '--tls-client-ca', cliMain);
    assert.equal(clientCaAlone.status, 2);
    assert.match(clientCaAlone.stderr, /^error: --tls-client-ca needs --tls-cert and --tls-key\n/);
    const notACa = run(
      'server',
      ...['--tls-cert', cliMain, '--tls-key', cliMain, '--tls-client-ca', cliMain],
    );
    assert.equal(notACa.status, 2);
    assert.equal(
      notACa.stderr,
      `error: --tls-client-ca: ${cliMain} holds no PEM certificate\n  hint: give the PEM certificate (-----BEGIN CERTIFICATE-----) of the CA that signs client certificates\n`,
    );
    for (const mode of ['888', '6600', 'rw', '0x1ff', '']) {
      const badMode = run('server', '--listen', 'unix:/tmp/x.sock', '--socket-mode', mode);
      assert.equal(badMode.status, 2, mode);
      assert.match(badMode.stderr, /--socket-mode/);
    }
    const tcpMode = run('server', '--listen', '127.0.0.1:0', '--socket-mode', '600');
    assert.equal(tcpMode.status, 2);
    assert.match(tcpMode.stderr, /--socket-mode/);
    for (const n of ['0', '-5', '1e6', 'many']) {
      const badCap = run('server', '--max-input-entries', n);
      assert.equal(badCap.status, 2, n);
      assert.match(badCap.stderr, /--max-input-entries/);
    }
  });

  it('fails clearly when the address is taken', async () => {
    await using dir = await tempDir();
    const first = await startCliServer(join(dir.path, 'c'));
    try {
      const second = run('server', '--listen', first.address, '--cache-dir', join(dir.path, 'c'));
      assert.equal(second.status, 1);
      // Our message and its hint, and nothing else (grpc-js logs its own line otherwise).
      assert.match(
        second.stderr,
        /^error: cannot listen on [^\n]*\n {2}hint: choose another --listen address[^\n]*\n$/,
      );
      assert.equal(second.stdout, '');
    } finally {
      await first.stop();
    }
  });

  it('serves a unix socket until SIGTERM, then exits 0', async () => {
    await using dir = await tempDir();
    const sock = join(dir.path, 'reapi.sock');
    const server = await startCliServer(join(dir.path, 'c'), { listen: `unix:${sock}` });
    assert.equal(server.address, `unix:${sock}`);
    const rival = run('server', '--listen', `unix:${sock}`, '--cache-dir', join(dir.path, 'c2'));
    assert.equal(rival.status, 1, 'a second server may not steal a live socket');
    assert.match(rival.stderr, /another server is using it/);
    const ep = await RemoteEndpoint.connect({ target: `unix:${sock}` });
    const d = await ep.cas.writeBlob(Buffer.from('via the CLI server'));
    assert.equal(Buffer.from(await ep.cas.readBlob(d)).toString(), 'via the CLI server');
    ep.close();
    await assertStopsCleanly(server);
  });

  it('removes what a crashed server left in cache/exec when it starts', async () => {
    await using dir = await tempDir();
    const cache = join(dir.path, 'c');
    // A killed server's staging directory, in the older layout and in the current one.
    const leftovers = [join(cache, 'exec', 'lq2x1-0a1b2c'), join(cache, 'exec', '99999999')];
    for (const l of leftovers) {
      await mkdir(join(l, 'root', 'usr', 'include'), { recursive: true });
      await writeFile(join(l, 'root', 'usr', 'include', 'x.h'), 'x');
    }
    const server = await startCliServer(cache, { jobs: 1 });
    try {
      for (const l of leftovers) assert.equal(existsSync(l), false, `${l} is gone`);
      await until(() => /removed what an earlier run left in /.test(server.output()));
      assert.deepEqual(await readdir(join(cache, 'exec')), [String(server.pid)]);
    } finally {
      await assertStopsCleanly(server);
    }
  });

  it('creates its unix socket 0600 under umask 0, or with the --socket-mode asked', async () => {
    await using dir = await tempDir();
    for (const [args, want] of [
      [[], '600'],
      [['--socket-mode', '660'], '660'],
    ] as const) {
      const sock = join(dir.path, `${want}.sock`);
      // The server inherits the umask of the process that starts it.
      const old = process.umask(0);
      let server;
      try {
        server = await startCliServer(join(dir.path, 'c'), {
          listen: `unix:${sock}`,
          jobs: 0,
          args: [...args],
        });
      } finally {
        process.umask(old);
      }
      try {
        assert.equal(((await stat(sock)).mode & 0o7777).toString(8), want);
      } finally {
        await assertStopsCleanly(server);
      }
    }
  });

  it('takes over the socket file of a server that was killed', async () => {
    await using dir = await tempDir();
    const sock = join(dir.path, 'stale.sock');
    const opts = { listen: `unix:${sock}` };
    const first = await startCliServer(join(dir.path, 'c'), opts);
    await first.kill();
    const second = await startCliServer(join(dir.path, 'c'), opts);
    assert.equal(second.address, `unix:${sock}`);
    await assertStopsCleanly(second);
  });
});
