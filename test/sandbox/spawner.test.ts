// The sandbox spawner: one long-lived helper forks every sandbox; a sandbox
// holds no descriptor of another; nothing it started outlives Node or the
// spawner itself; and when it cannot start, sandboxes are spawned per run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  runInSandbox,
  SandboxSpawner,
  sharedSpawner,
  SpawnerSlot,
  type SandboxSpec,
} from '../../src/sandbox/index.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';

function spec(tmp: TempDir, name: string, argv: string[]): SandboxSpec {
  const dirs = ['layer', 'upper', 'scratch'].map((d) => join(tmp.path, name, d));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  const [layer, upper, scratch] = dirs as [string, string, string];
  return {
    argv,
    env: { PATH: '/usr/bin:/bin' },
    layers: [layer],
    upperDir: upper,
    scratchDir: scratch,
    stdoutFile: join(tmp.path, name, 'stdout'),
    stderrFile: join(tmp.path, name, 'stderr'),
  };
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

function parentOf(pid: number): number {
  const m = /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

/** Resolves once `check` is true, looking every 20 ms (a wait, not a timed assertion). */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting until ${what}`);
}

/** A marker no other test's process has on its command line. */
function marker(n: number): string {
  return String(800000 + n * 1000 + (process.pid % 1000));
}

describe('sandbox spawner', () => {
  it("starts every sandbox from the process's one spawner, not from Node", async () => {
    await using tmp = await tempDir();
    const spawner = await sharedSpawner();
    assert.ok(spawner?.pid !== undefined, 'the spawner runs');
    const parents: number[] = [];
    for (const name of ['a', 'b']) {
      const res = await runInSandbox({
        ...spec(tmp, name, ['true']),
        capture: (root) => {
          // root is /proc/INIT/root; the init's parent is this sandbox's helper.
          const init = Number(root.split('/')[2]);
          parents.push(parentOf(parentOf(init)));
          return Promise.resolve();
        },
      });
      assert.equal(res.exitCode, 0);
    }
    assert.deepEqual(parents, [spawner.pid, spawner.pid]);
  });

  it("ends one sandbox's hold while another still runs: no sandbox holds another's descriptors", async () => {
    await using tmp = await tempDir();
    let entered!: () => void;
    const inCapture = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const first = runInSandbox({
      ...spec(tmp, 'first', ['true']),
      capture: async () => {
        entered();
        await released;
      },
    });
    await inCapture;
    // Started while the first is held, so forked while its hold pipe is open.
    const abort = new AbortController();
    const second = runInSandbox({
      ...spec(tmp, 'second', ['sh', '-c', 'echo started; exec sleep 60']),
      signal: abort.signal,
    });
    second.catch(() => undefined); // awaited below
    await until('the second command runs', () => {
      try {
        return readFileSync(join(tmp.path, 'second', 'stdout'), 'utf8').includes('started');
      } catch {
        return false;
      }
    });
    release();
    const ended = await Promise.race([
      first.then(() => 'first'),
      second.then(
        () => 'second',
        () => 'second',
      ),
    ]);
    assert.equal(ended, 'first', 'the first ended while the second still ran');
    assert.equal((await first).exitCode, 0);
    abort.abort(new Error('done'));
    await assert.rejects(second, /done/);
  });

  it('takes every sandbox down when the spawner dies, and the next sandbox gets a new spawner', async () => {
    await using tmp = await tempDir();
    const old = await sharedSpawner();
    assert.ok(old?.pid !== undefined);
    const mark = marker(1);
    const running = runInSandbox(spec(tmp, 'a', ['sh', '-c', `echo started; exec sleep ${mark}`]));
    running.catch(() => undefined); // awaited below
    await until('the command runs', () => processesWith(`sleep\0${mark}`) === 1);
    process.kill(old.pid, 'SIGKILL');
    await assert.rejects(running, { code: 'sandbox/unavailable' });
    await until('the sandbox is gone', () => processesWith(`sleep\0${mark}`) === 0);
    const res = await runInSandbox(spec(tmp, 'b', ['true']));
    assert.equal(res.exitCode, 0);
    const next = await sharedSpawner();
    assert.ok(next !== undefined && next.pid !== old.pid, 'a new spawner runs');
  });

  it('takes every sandbox down when Node goes away', async () => {
    await using tmp = await tempDir();
    const mark = marker(2);
    const sandboxJs = pathToFileURL(join(repoRoot, 'dist', 'src', 'sandbox', 'index.js')).href;
    const s = spec(tmp, 'a', ['sh', '-c', `exec sleep ${mark}`]);
    const script = `import { runInSandbox } from ${JSON.stringify(sandboxJs)};\nawait runInSandbox(${JSON.stringify(s)});\n`;
    const node = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => node.once('exit', resolve));
    try {
      await until('the command runs', () => processesWith(`sleep\0${mark}`) === 1);
    } finally {
      node.kill('SIGKILL');
      await exited;
    }
    await until('the sandbox is gone', () => processesWith(`sleep\0${mark}`) === 0);
  });

  it('refuses a request larger than it takes, and goes on serving the others', async () => {
    await using tmp = await tempDir();
    const spawner = await sharedSpawner();
    await assert.rejects(
      runInSandbox({ ...spec(tmp, 'a', ['true']), env: { BIG: 'x'.repeat(64 * 1024 * 1024) } }),
      { code: 'sandbox/setup' },
    );
    assert.equal((await runInSandbox(spec(tmp, 'b', ['true']))).exitCode, 0);
    assert.equal((await sharedSpawner())?.pid, spawner?.pid, 'the same spawner');
  });

  it('is not used when it cannot start: the caller spawns a helper per sandbox', async () => {
    await assert.rejects(SandboxSpawner.start('/no/such/helper'), {
      code: 'sandbox/unavailable',
    });
    // A helper that exits at once instead of serving.
    const slot = new SpawnerSlot(() => SandboxSpawner.start('/bin/true'));
    assert.equal(await slot.get(), undefined);
    assert.equal(await slot.get(), undefined, 'and it is not tried again');
  });
});
