// `specbuild server --processes N`: one address, N serving processes over the
// same cache directory, one pool of --jobs slots. Real processes, real
// sockets, real sandboxed actions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
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
    const outcomes = await Promise.all(
      eps.map(async (ep, i) => {
        const action = await uploadAction(ep.cas, {
          argv: ['sh', '-c', `sleep 0.6; echo ${tag}${i} > out`],
          outputPaths: ['out'],
        });
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

test(
  'a serving process killed mid-action is replaced, and the slot it held is free again',
  { timeout: 120_000 },
  async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'), {
      jobs: 1,
      args: ['--processes', '2'],
    });
    try {
      const first = servingPids(server.pid);
      const ep = await RemoteEndpoint.connect({ target: server.address, ownConnection: true });
      let victim = -1;
      try {
        const action = await uploadAction(ep.cas, {
          argv: ['sh', '-c', 'sleep 60; echo late > out'],
          outputPaths: ['out'],
        });
        const long = ep.executor.execute(action).catch((e: unknown) => e);
        // The process with the connection runs it (holding the only slot).
        await waitFor('the long action to start', () =>
          connectionsOf(first, portOf(server.address)).some((n) => n > 0),
        );
        victim = first[connectionsOf(first, portOf(server.address)).indexOf(1)] ?? -1;
        assert.ok(victim > 0);
        await new Promise((r) => setTimeout(r, 500));
        process.kill(victim, 'SIGKILL');
        assert.ok((await long) instanceof Error, 'the killed process cannot answer');
      } finally {
        ep.close();
      }
      await waitFor('a replacement', () => {
        const now = servingPids(server.pid);
        return now.length === 2 && !now.includes(victim);
      });
      assert.match(server.output(), /serving process \d+ exited \(SIGKILL\); starting another/);
      // With the one slot held by the dead process, this would wait for ever.
      const again = await RemoteEndpoint.connect({ target: server.address, ownConnection: true });
      try {
        const action = await uploadAction(again.cas, {
          argv: ['sh', '-c', 'echo after > out'],
          outputPaths: ['out'],
        });
        const outcome = await again.executor.execute(action, {
          signal: AbortSignal.timeout(30_000),
        });
        assert.equal(outcome.result.exitCode, 0);
        assert.equal(outcome.result.outputFiles.length, 1);
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
