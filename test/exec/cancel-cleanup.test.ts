// A cancelled execution removes its staging directory before the call
// settles, whether it is cancelled while its inputs are staged or while its
// command runs; and a work directory is cleared of what dead processes left.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  LocalActionCache,
  LocalCas,
  type ReadRange,
  type CallOptions,
} from '../../src/cas/index.js';
import { LocalExecutor, prepareWorkDir } from '../../src/exec/index.js';
import type { Digest } from '../../src/reapi/index.js';
import { uploadAction } from '../helpers/actions.js';
import { tempDir } from '../helpers/tmp.js';

async function rig() {
  const dir = await tempDir();
  const cas = await LocalCas.open({ dir: dir.path });
  const ac = await LocalActionCache.open(dir.path, cas);
  const workDir = join(dir.path, 'exec');
  const executor = new LocalExecutor({ cas, ac, workDir, jobs: 2 });
  return {
    cas,
    executor,
    workDir,
    /** Entries in the work directory (one per action staged or running). */
    staged: async () => (existsSync(workDir) ? await readdir(workDir) : []),
    [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose](),
  };
}

/** Resolves once `check` is true, looking every 20 ms (a wait, not a timed assertion). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`gave up waiting until ${what}`);
}

describe('cancelled executions', () => {
  it('remove their staging directory when cancelled while staging', async () => {
    await using r = await rig();
    // Executable inputs are copied through readStream: hold the copy there
    // until the caller cancels, so the cancellation lands mid-staging.
    let staging!: () => void;
    const inStaging = new Promise<void>((resolve) => (staging = resolve));
    const read = r.cas.readStream.bind(r.cas);
    r.cas.readStream = async function* (d: Digest, range?: ReadRange, opts?: CallOptions) {
      staging();
      const signal = opts?.signal;
      assert.ok(signal, 'staging reads carry the cancellation signal');
      await new Promise<void>((_, reject) => {
        signal.addEventListener('abort', () => {
          reject(signal.reason as Error);
        });
      });
      yield* read(d, range, opts);
    };
    const a = await uploadAction(r.cas, {
      argv: ['./tool'],
      inputs: { tool: 'x:#!/bin/sh\n', 'lib/a.h': 'a', 'lib/b.h': 'b' },
    });
    const abort = new AbortController();
    const call = r.executor.execute(a, { signal: abort.signal });
    await inStaging;
    assert.equal((await r.staged()).length, 1, 'the action is being staged');
    abort.abort(new Error('caller left'));
    await assert.rejects(call, /caller left/);
    assert.deepEqual(await r.staged(), [], 'no staging directory outlives the call');
  });

  it('remove their staging directory when cancelled while the command runs', async () => {
    await using r = await rig();
    const a = await uploadAction(r.cas, {
      argv: ['sh', '-c', 'echo started; exec sleep 60'],
      inputs: { 'in.txt': 'input' },
    });
    const abort = new AbortController();
    const call = r.executor.execute(a, { signal: abort.signal });
    call.catch(() => undefined); // awaited below
    await until('the command runs', async () => {
      for (const d of await r.staged()) {
        const out = await readFile(join(r.workDir, d, 'stdout'), 'utf8').catch(() => '');
        if (out.includes('started')) return true;
      }
      return false;
    });
    abort.abort(new Error('caller left'));
    await assert.rejects(call, /caller left/);
    assert.deepEqual(await r.staged(), [], 'no staging directory outlives the call');
  });
});

describe('finished executions', () => {
  it('leave no staging directory behind, and their trash is deleted in the background', async () => {
    await using r = await rig();
    const a = await uploadAction(r.cas, {
      argv: ['sh', '-c', 'cat in.txt > out.txt'],
      inputs: { 'in.txt': 'input\n' },
      outputPaths: ['out.txt'],
    });
    const done = await r.executor.execute(a);
    assert.equal(done.result.exitCode, 0);
    assert.deepEqual(await r.staged(), [], 'the work directory holds only running actions');
    const trash = async () =>
      (await readdir(dirname(r.workDir))).filter((n) => n.startsWith('.trash-'));
    await until('the trash is deleted', async () => (await trash()).length === 0);
  });
});

describe('work directory', () => {
  it('is cleared of what dead processes left, keeping live ones', async () => {
    await using tmp = await tempDir();
    const base = join(tmp.path, 'exec');
    // pid_max is at most 2^22: these pids cannot be running.
    const leftovers = ['lq2x1-0a1b2c', '99999999', '.trash-99999998-0a1b2c', String(process.pid)];
    for (const name of leftovers) {
      await mkdir(join(base, name, 'root', 'usr', 'include'), { recursive: true });
      await writeFile(join(base, name, 'root', 'usr', 'include', 'x.h'), 'x');
    }
    const live = String(process.ppid); // the test runner
    await mkdir(join(base, live, 'root'), { recursive: true });

    const work = await prepareWorkDir(base);
    assert.equal(work.path, join(base, String(process.pid)));
    assert.deepEqual(await readdir(work.path), [], 'its own directory starts empty');
    assert.equal(work.leftovers, 4);
    for (const name of leftovers.slice(0, 2)) {
      assert.equal(existsSync(join(base, name)), false, `${name} is out of the way at once`);
    }
    await work.cleared;
    assert.deepEqual(
      (await readdir(base)).sort(),
      [live, String(process.pid)].sort(),
      'only live processes keep a directory',
    );
    assert.ok(existsSync(join(base, live, 'root')), "a live process's directory is untouched");
  });
});
