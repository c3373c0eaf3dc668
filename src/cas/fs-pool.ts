// A few worker threads for the file-system work of executions: staging input
// trees, importing outputs and writing blobs into the local CAS, removing
// staging directories. On the event loop these cost a server 20-30 ms per
// compile (mostly mkdir, ~0.2-3 ms each on this ext4, and rimraf); here the
// loop spends one message round trip per task (~35 µs measured on the 2-core
// machine for a 40-file plan). Workers start when first needed and hold the
// process open only while they have a task. A worker that dies fails its
// task with `cas/worker-lost`; the next task gets a new worker.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SpecbuildError, type ErrorCode } from '../core/index.js';
import type { CasLayout, ImportedBlob, StageCounts } from './fs-tasks.js';
import type { FsReply, FsRequest, FsTask, WireError } from './fs-worker.js';
import type { StagePlan } from './stage-plan.js';

interface Task {
  id: number;
  task: FsTask;
  /** What it does, for the error of a lost worker. */
  what: string;
  /** The worker running it, once started. */
  slot: Slot | undefined;
  /** Buffers handed over to the worker with the task. */
  transfer: ArrayBuffer[];
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (value: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  /**
   * Its task's cancellation flag, shared with the worker, which reads it
   * between entries; cleared for each task. One per worker, not per task:
   * a SharedArrayBuffer in every message cost ~20 µs of the event loop.
   */
  flag: Int32Array;
  task: Task | undefined;
  /** What the worker threw, if it died of an exception. */
  error: Error | undefined;
}

/** Workers of a pool by default: at least 2 (a staging may wait on the disk), at most 4. */
export function defaultPoolSize(): number {
  return Math.max(2, Math.min(4, availableParallelism()));
}

export class FsPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  /** Tasks nobody waits for (removals of finished runs): run when nothing else is queued. */
  private readonly background: Task[] = [];
  private nextId = 1;
  private closed = false;
  /** Tasks failed because their worker died. */
  lost = 0;

  constructor(readonly size = defaultPoolSize()) {
    if (!(size >= 1)) throw new RangeError(`FsPool needs size >= 1, got ${size}`);
  }

  /** Runs a staging plan; cancelled through `signal`, it answers once the worker has stopped. */
  stage(plan: StagePlan, signal?: AbortSignal): Promise<StageCounts> {
    return this.submit({ kind: 'stage', plan }, 'staging an input tree', signal, false);
  }

  /** Imports a file into the CAS of `layout` (see importFile); the caller registers the blob. */
  importFile(layout: CasLayout, path: string, signal?: AbortSignal): Promise<ImportedBlob> {
    return this.submit({ kind: 'import', layout, path }, 'importing a file', signal, false);
  }

  /**
   * Stores `data` as blob `hash` (computed by the caller); the caller
   * registers it. The bytes are copied once and handed over: a clone of a
   * view copies its whole buffer (a gRPC batch's, for an uploaded blob), and
   * handing over the caller's would take it away (Buffer's slice is a view).
   */
  writeBlob(layout: CasLayout, data: Uint8Array, hash: string): Promise<void> {
    const own = new Uint8Array(data);
    return this.submit(
      { kind: 'write', layout, data: own, hash },
      `writing blob ${hash}/${data.byteLength}`,
      undefined,
      false,
      [own.buffer],
    );
  }

  /**
   * Removes a tree. `background`: nobody waits for it, so it runs only when
   * no other task is queued.
   */
  remove(path: string, opts: { background?: boolean } = {}): Promise<void> {
    return this.submit(
      { kind: 'remove', path },
      'removing a tree',
      undefined,
      opts.background === true,
    );
  }

  /** Ends every worker; queued and running tasks fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0).concat(this.background.splice(0))) {
      this.settle(t);
      t.reject(lostError(t, 'the pool was closed'));
    }
    // terminate() refs the worker until it exits (a reply that arrives
    // meanwhile must not unref it: see the message handler).
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private submit<T>(
    task: FsTask,
    what: string,
    signal: AbortSignal | undefined,
    background: boolean,
    transfer: ArrayBuffer[] = [],
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const t: Task = {
        id: this.nextId++,
        task,
        what,
        slot: undefined,
        transfer,
        signal,
        onAbort: undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      };
      if (this.closed) {
        reject(lostError(t, 'the pool was closed'));
        return;
      }
      if (signal !== undefined) {
        t.onAbort = () => {
          const queue = background ? this.background : this.queue;
          const i = queue.indexOf(t);
          if (i >= 0) {
            // Not started: nothing to wait for.
            queue.splice(i, 1);
            this.settle(t);
            reject(signal.reason as Error);
            return;
          }
          // Running: the worker stops at its next check and answers.
          const slot = t.slot;
          if (slot?.task === t) {
            Atomics.store(slot.flag, 0, 1);
            Atomics.notify(slot.flag, 0);
          }
        };
        signal.addEventListener('abort', t.onAbort, { once: true });
      }
      (background ? this.background : this.queue).push(t);
      this.dispatch();
    });
  }

  /** Gives queued tasks to idle workers, starting workers up to `size`. */
  private dispatch(): void {
    while (this.queue.length > 0 || this.background.length > 0) {
      let slot = this.slots.find((s) => s.task === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const t = this.queue.shift() ?? this.background.shift();
      if (t === undefined) return;
      slot.task = t;
      t.slot = slot;
      Atomics.store(slot.flag, 0, 0);
      slot.worker.ref(); // a task in flight keeps the process alive
      const req: FsRequest = { id: t.id, task: t.task };
      slot.worker.postMessage(req, t.transfer);
    }
  }

  private spawn(): Slot {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(new URL('./fs-worker.js', import.meta.url), { workerData: flag });
    const slot: Slot = { worker, flag, task: undefined, error: undefined };
    worker.unref();
    worker.on('message', (reply: FsReply) => {
      const t = slot.task;
      if (t?.id !== reply.id) return; // cannot happen: one task at a time
      slot.task = undefined;
      // Idle: no longer holds the process up. Not once closing, though:
      // terminate() refs the worker so that the exit it waits for keeps the
      // event loop alive, and a reply that crossed it must not undo that
      // (a process whose last work was close() then ended with it pending).
      if (!this.closed) worker.unref();
      this.settle(t);
      if (reply.ok) t.resolve(reply.value);
      else if (reply.aborted)
        t.reject((t.signal?.reason as Error | undefined) ?? new Error('aborted'));
      else t.reject(fromWire(reply.error));
      this.dispatch();
    });
    worker.on('error', (e) => {
      slot.error = e;
    });
    worker.on('exit', (code) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const t = slot.task;
      slot.task = undefined;
      if (t !== undefined) {
        this.lost++;
        this.settle(t);
        const why = this.closed ? 'the pool was closed' : `it exited with code ${code}`;
        t.reject(lostError(t, why, slot.error));
      }
      if (!this.closed) this.dispatch();
    });
    this.slots.push(slot);
    return slot;
  }

  /** The task is answered: its signal no longer concerns the pool. */
  private settle(t: Task): void {
    if (t.onAbort !== undefined) t.signal?.removeEventListener('abort', t.onAbort);
  }
}

function lostError(t: Task, why: string, cause?: Error): SpecbuildError {
  return new SpecbuildError(
    'cas/worker-lost',
    `a file system worker thread ${t.what} was lost: ${why}${cause === undefined ? '' : ` (${cause.message})`}`,
    { temporary: true, cause },
  );
}

/** A worker's error as the same kind of error here: a SpecbuildError, or a Node errno error. */
function fromWire(e: WireError): Error {
  if (e.specbuild !== undefined) {
    return new SpecbuildError(e.code as ErrorCode, e.message, {
      temporary: e.specbuild.temporary,
      ...(e.specbuild.hint === undefined ? {} : { hint: e.specbuild.hint }),
    });
  }
  return Object.assign(new Error(e.message), {
    ...(e.code === undefined ? {} : { code: e.code }),
    ...(e.errno === undefined ? {} : { errno: e.errno }),
    ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
    ...(e.path === undefined ? {} : { path: e.path }),
  });
}
