// The entry point of FsPool's worker threads: runs one task at a time with
// the synchronous functions of fs-tasks.ts and answers with its value, its
// error (flattened: a structured clone keeps only an Error's message) or
// that it saw its cancellation flag.
import { mkdirSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { isSpecbuildError } from '../core/index.js';
import {
  importFile,
  removeTree,
  runStagePlan,
  TaskAborted,
  writeBlobFile,
  type CasLayout,
} from './fs-tasks.js';
import type { StagePlan } from './stage-plan.js';

export type FsTask =
  | { kind: 'stage'; plan: StagePlan }
  | { kind: 'import'; layout: CasLayout; path: string }
  | { kind: 'write'; layout: CasLayout; data: Uint8Array; hash: string }
  | { kind: 'remove'; path: string };

export interface FsRequest {
  id: number;
  task: FsTask;
}

/** An error as it crosses to the pool. */
export interface WireError {
  message: string;
  /** A SpecbuildError's code, or a Node errno code (ENOENT...). */
  code?: string;
  specbuild?: { hint?: string; temporary: boolean };
  errno?: number;
  syscall?: string;
  path?: string;
}

export type FsReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; aborted: true }
  | { id: number; ok: false; aborted: false; error: WireError };

/**
 * Test hooks, on with SPECBUILD_TEST_FS_WORKER=1 (never outside tests: a
 * crash cannot be produced otherwise): a tree holding a file named
 * `specbuild-test-crash` ends this worker; one holding a file named
 * `specbuild-test-hold` makes it wait, its `before` directories made, until
 * the task is cancelled.
 */
const HOOKS = process.env.SPECBUILD_TEST_FS_WORKER === '1';
const TEST_CRASH_NAME = 'specbuild-test-crash';
const TEST_HOLD_NAME = 'specbuild-test-hold';

function testHooks(plan: StagePlan, flag: Int32Array): void {
  if (!HOOKS) return;
  if (plan.fileNames.includes(TEST_CRASH_NAME)) process.exit(70);
  if (!plan.fileNames.includes(TEST_HOLD_NAME)) return;
  for (const b of plan.before) mkdirSync(b.path, { recursive: true, mode: b.mode });
  Atomics.wait(flag, 0, 0, 60_000);
}

/** Set to 1 by the pool when the running task is cancelled (cleared before each task). */
const flag = workerData as Int32Array;
const aborted = (): boolean => Atomics.load(flag, 0) !== 0;

function run(req: FsRequest): unknown {
  const t = req.task;
  switch (t.kind) {
    case 'stage':
      testHooks(t.plan, flag);
      return runStagePlan(t.plan, aborted);
    case 'import':
      return importFile(t.layout, t.path, aborted);
    case 'write':
      writeBlobFile(t.layout, t.data, t.hash);
      return undefined;
    case 'remove':
      removeTree(t.path);
      return undefined;
  }
}

function wireError(e: unknown): WireError {
  if (isSpecbuildError(e)) {
    return {
      message: e.message,
      code: e.code,
      specbuild: { temporary: e.temporary, ...(e.hint === undefined ? {} : { hint: e.hint }) },
    };
  }
  if (!(e instanceof Error)) return { message: String(e) };
  const n = e as NodeJS.ErrnoException;
  return {
    message: e.message,
    ...(n.code === undefined ? {} : { code: n.code }),
    ...(n.errno === undefined ? {} : { errno: n.errno }),
    ...(n.syscall === undefined ? {} : { syscall: n.syscall }),
    ...(n.path === undefined ? {} : { path: n.path }),
  };
}

const port = parentPort;
if (port === null) throw new Error('fs-worker.js runs only as a worker thread');
port.on('message', (req: FsRequest) => {
  let reply: FsReply;
  try {
    reply = { id: req.id, ok: true, value: run(req) };
  } catch (e) {
    reply =
      e instanceof TaskAborted
        ? { id: req.id, ok: false, aborted: true }
        : { id: req.id, ok: false, aborted: false, error: wireError(e) };
  }
  port.postMessage(reply);
});
