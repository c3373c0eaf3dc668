// `specbuild server --processes N`: one address, N serving processes over the
// same cache directory, one pool of --jobs slots. Real processes, real
// sockets, real sandboxed actions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../src/core/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { parseTimestamp, type ActionResult } from '../../src/reapi/index.js';
import { uploadAction } from '../helpers/actions.js';
import { assertStopsCleanly, startCliServer, type CliServer } from '../helpers/cli-server.js';
import { runProcess } from '../helpers/process.js';
import { cliMain } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

/** The serving processes: the primary's children. */
function servingPids(primary: number): number[] {
  return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter((p) => p !== '')
    .map(Number);
}

/** Per serving process, its established TCP connections on `port` (from /proc/net/tcp and its fds). */
function connectionsOf(pids: number[], port: number): number[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    // Server side of a connection: local address 127.0.0.1:port, state ESTABLISHED.
    if (f[1] === `0100007F:${hexPort}` && f[3] === '01') inodes.add(f[9] ?? '');
  }
  return pids.map((pid) => {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`, 'utf8'));
      if (m?.[1] !== undefined && inodes.has(m[1])) n++;
    }
    return n;
  });
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

async function waitFor(what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** When the action's command ran, in ms. */
function span(r: ActionResult): [number, number] {
  const m = r.executionMetadata;
  const start = parseTimestamp(m?.executionStartTimestamp, 'start');
  const end = parseTimestamp(m?.executionCompletedTimestamp, 'end');
  assert.ok(start !== undefined && end !== undefined);
  return [start, end];
}

/** Runs one `sleep` action through each of two connections at once; their spans. */
async function twoAtOnce(server: CliServer, tag: string): Promise<[number, number][]> {
  const eps = await Promise.all(
    [0, 1].map(() => RemoteEndpoint.connect({ target: server.address, ownConnection: true })),
  );
  try {
    // One connection each, before anything runs: round robin gives one to each process.
    assert.deepEqual(
      connectionsOf(servingPids(server.pid), portOf(server.address)).sort(),
      [1, 1],
      'each serving process has one of the two connections',
    );
    // Both uploaded first, then both executed at once: each sleeps long
    // enough that two slots make them overlap even on a loaded machine.
    const actions = await Promise.all(
      eps.map((ep, i) =>
        uploadAction(ep.cas, {
          argv: ['sh', '-c', `sleep 2; echo ${tag}${String(i)} > out`],
          outputPaths: ['out'],
        }),
      ),
    );
    const outcomes = await Promise.all(
      actions.map((action, i) => {
        const ep = eps[i];
        assert.ok(ep !== undefined);
        return ep.executor.execute(action);
      }),
    );
    return outcomes.map((o) => {
      assert.equal(o.result.exitCode, 0);
      assert.equal(o.cached, false);
      return span(o.result);
    });
  } finally {
    for (const ep of eps) ep.close();
  }
}

test(
  '--processes 2: each connection goes to one process, --jobs is one limit for all, SIGTERM stops every process',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'one-job'), {
      jobs: 1,
      args: ['--processes', '2'],
    });
    let pids: number[] = [];
    try {
      assert.match(server.output(), /, 1 jobs, 2 processes\)$/m);
      pids = servingPids(server.pid);
      assert.equal(pids.length, 2);
      // One slot between the two processes: the runs follow each other.
      const [a, b] = await twoAtOnce(server, 'one');
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(a[1] <= b[0] || b[1] <= a[0], `runs overlapped: ${String([a, b])}`);
      await assertStopsCleanly(server);
      assert.deepEqual(
        pids.filter((p) => processAlive(p)),
        [],
      );
    } finally {
      await server.stop();
    }
    // The same with two slots: the runs overlap (so the check above can fail).
    const two = await startCliServer(join(dir.path, 'two-jobs'), {
      jobs: 2,
      args: ['--processes', '2'],
    });
    try {
      const [a, b] = await twoAtOnce(two, 'two');
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(a[0] < b[1] && b[0] < a[1], `runs did not overlap: ${String([a, b])}`);
      await assertStopsCleanly(two);
    } finally {
      await two.stop();
    }
  },
);

/** The one serving process with an established connection, once there is exactly one. */
async function soleServing(server: CliServer, pids: number[]): Promise<number> {
  let pid = -1;
  await waitFor('one connection', () => {
    const n = connectionsOf(pids, portOf(server.address));
    if (n.filter((c) => c > 0).length !== 1) return false;
    pid = pids[n.findIndex((c) => c > 0)] ?? -1;
    return true;
  });
  return pid;
}

test(
  'a serving process killed mid-action: replaced, the slot it held free again, and its client executes again elsewhere',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'), {
      jobs: 1,
      args: ['--processes', '2'],
    });
    try {
      // (1) The only slot, held by an execution the client left (it runs
      // on in its server) when its process is killed.
      let pids = servingPids(server.pid);
      const ep = await RemoteEndpoint.connect({ target: server.address, ownConnection: true });
      let victim: number;
      try {
        const action = await uploadAction(ep.cas, {
          argv: ['sh', '-c', 'sleep 60; echo late > out'],
          outputPaths: ['out'],
        });
        victim = await soleServing(server, pids);
        const leave = new AbortController();
        const long = ep.executor.execute(action, { signal: leave.signal }).catch((e: unknown) => e);
        await new Promise((r) => setTimeout(r, 1000));
        leave.abort();
        assert.ok((await long) instanceof Error);
        process.kill(victim, 'SIGKILL');
      } finally {
        ep.close();
      }
      await waitFor('a replacement', () =>
        new RegExp(`serving process \\d+ took over from ${String(victim)}$`, 'm').test(
          server.output(),
        ),
      );
      assert.match(server.output(), /serving process \d+ exited \(SIGKILL\); starting another/);
      assert.equal(servingPids(server.pid).length, 2);

      // (2) With that slot not given back, this would wait for ever. Its
      // process is killed mid-run too: the client finds the operation gone
      // in the other process and executes again there.
      pids = servingPids(server.pid);
      const again = await RemoteEndpoint.connect({ target: server.address, ownConnection: true });
      try {
        const action = await uploadAction(again.cas, {
          argv: ['sh', '-c', 'sleep 2; echo after > out'],
          outputPaths: ['out'],
        });
        const serving = await soleServing(server, pids);
        const stages: string[] = [];
        const outcome = again.executor.execute(action, {
          signal: AbortSignal.timeout(60_000),
          events: (e) => stages.push(e.stage),
        });
        await waitFor('the run to start', () => stages.includes('executing'));
        process.kill(serving, 'SIGKILL');
        const done = await outcome;
        assert.equal(done.result.exitCode, 0);
        assert.equal(done.cached, false);
        assert.deepEqual(
          done.result.outputFiles.map((f) => f.path),
          ['out'],
        );
        assert.equal(stages.filter((s) => s === 'executing').length, 2, stages.join(' '));
      } finally {
        again.close();
      }
      await assertStopsCleanly(server);
    } finally {
      await server.stop();
    }
  },
);

test(
  '--processes on a unix socket: its mode, both processes serve, the socket goes on stop; the processes go with a killed primary',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const sock = join(dir.path, 'r.sock');
    const server = await startCliServer(join(dir.path, 'cache'), {
      jobs: 1,
      listen: `unix:${sock}`,
      args: ['--processes', '2', '--socket-mode', '640'],
    });
    let pids: number[] = [];
    try {
      assert.equal(server.address, `unix:${sock}`);
      assert.equal((await lstat(sock)).mode & 0o777, 0o640);
      pids = servingPids(server.pid);
      const eps = await Promise.all(
        [0, 1].map(() => RemoteEndpoint.connect({ target: server.address, ownConnection: true })),
      );
      try {
        for (const [i, ep] of eps.entries()) {
          const blob = Buffer.from(`blob ${i}`);
          const d = await ep.cas.writeBlob(blob);
          // Written through one process, read through the other.
          assert.deepEqual(await eps[1 - i]?.cas.readBlob(d), blob);
        }
      } finally {
        for (const ep of eps) ep.close();
      }
      await assertStopsCleanly(server);
      await assert.rejects(lstat(sock), { code: 'ENOENT' });
    } finally {
      await server.stop();
    }
    // A primary killed outright: its serving processes leave on their own.
    const again = await startCliServer(join(dir.path, 'cache'), {
      jobs: 1,
      listen: `unix:${sock}`,
      args: ['--processes', '2'],
    });
    pids = servingPids(again.pid);
    assert.equal(pids.length, 2);
    await again.kill();
    await waitFor('the serving processes to exit', () => pids.every((p) => !processAlive(p)));
  },
);

test(
  '--processes: bad values and --quota are refused with the fix',
  { timeout: 60_000 },
  async () => {
    await using dir = await tempDir();
    const run = (...args: string[]): Promise<{ code: number | null; stderr: string }> =>
      runProcess(process.execPath, [cliMain, 'server', '--cache-dir', dir.path, ...args], {
        timeoutMs: 30_000,
      });
    const quota = await run('--processes', '2', '--quota', '1G');
    assert.equal(quota.code, 2);
    assert.match(quota.stderr, /--processes 2 cannot be combined with --quota/);
    assert.match(quota.stderr, /use --processes 1 with --quota/);
    const zero = await run('--processes', '0');
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--processes "0" is not a whole number from 1 to 64/);
  },
);

test(
  'a replacement gets its settings from the primary: the token file read once, at start',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const tokenFile = join(dir.path, 'token');
    await writeFile(tokenFile, 's3cret\n');
    const server = await startCliServer(join(dir.path, 'cache'), {
      jobs: 1,
      args: ['--processes', '2', '--token-file', tokenFile],
    });
    try {
      // Gone (rotated away) after the start: a replacement that read it again would fail.
      const clientToken = join(dir.path, 'client-token');
      await writeFile(clientToken, 's3cret\n');
      await rm(tokenFile);
      const [victim] = servingPids(server.pid);
      assert.ok(victim !== undefined);
      process.kill(victim, 'SIGKILL');
      await waitFor('a replacement', () =>
        new RegExp(`serving process \\d+ took over from ${String(victim)}$`, 'm').test(
          server.output(),
        ),
      );
      // Both processes (two connections, round robin) want the token and take it.
      for (let i = 0; i < 2; i++) {
        const ep = await RemoteEndpoint.connect({
          target: server.address,
          ownConnection: true,
          tokenFile: clientToken,
        });
        try {
          const d = await ep.cas.writeBlob(Buffer.from(`with the token ${String(i)}`));
          assert.equal(d.size, 16);
        } finally {
          ep.close();
        }
      }
      await assert.rejects(
        RemoteEndpoint.connect({ target: server.address, ownConnection: true }),
        {
          code: 'remote/permission',
        },
      );
      await assertStopsCleanly(server);
    } finally {
      await server.stop();
    }
  },
);

test('SIGTERM while the serving processes start: every process stops, none is killed', async () => {
  await using dir = await tempDir();
  const child = spawn(
    process.execPath,
    [
      cliMain,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--cache-dir',
      join(dir.path, 'c'),
      '--processes',
      '2',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
    }),
  );
  const pid = child.pid ?? -1;
  let forked: number[] = [];
  // As soon as it has forked them (they are still loading, not listening).
  await waitFor('the serving processes', () => {
    try {
      forked = servingPids(pid);
    } catch {
      forked = [];
    }
    return forked.length === 2;
  });
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0, output);
  assert.doesNotMatch(output, /were killed/);
  assert.doesNotMatch(output, /listening on/);
  await waitFor('no serving process left', () => forked.every((p) => !processAlive(p)));
});
