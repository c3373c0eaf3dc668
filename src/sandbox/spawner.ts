// A long-lived sandbox helper (`specbuild-sandbox --serve`) that forks one
// sandbox per request, instead of Node spawning the helper for every action.
// Node's spawn forks the Node process itself, and that costs more the more
// memory Node holds (page tables): /bin/true took 2 ms from a fresh Node and
// 15-21 ms from one holding 200 MB (a busy server), measured on the 2-core CI
// machine; forking the small spawner costs about 0.1 ms. The protocol is in
// the comment above serve() in native/sandbox.c.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SpecbuildError } from '../core/index.js';
import { sandboxHelper } from './helper.js';

const REQ_RUN = 1;
const REQ_RELEASE = 2;
const REQ_KILL = 3;
const EV_HELLO = 0;
const EV_OUTPUT = 1;
const EV_EXIT = 2;
/** The largest request the spawner takes (MAX_FRAME in sandbox.c); it ends everything on a larger one. */
const MAX_FRAME = 64 * 1024 * 1024;

/** What a sandbox started through the spawner tells its caller. */
export interface SpawnHandlers {
  /** Text the sandbox wrote on its fd 3 (progress lines, setup errors), in pieces. */
  output(text: string): void;
  /** Its raw wait status, after all of its output. */
  exit(status: number): void;
  /** The spawner died first (the sandbox died with it). */
  lost(error: SpecbuildError): void;
}

/** A sandbox started through the spawner. */
export interface SpawnedSandbox {
  /** Ends its --hold: the sandbox comes down once the command has exited. */
  release(): void;
  /** SIGKILLs its process group (and so every process of the sandbox). */
  kill(): void;
}

interface Job {
  handlers: SpawnHandlers;
  decoder: StringDecoder;
}

export class SandboxSpawner {
  private nextId = 1;
  private readonly jobs = new Map<number, Job>();
  private pending: Buffer = Buffer.alloc(0);
  private dead = false;

  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {}

  /** Starts `helper --serve` and resolves once it is ready (`sandbox/unavailable` if it cannot start). */
  static start(helper: string = sandboxHelper()): Promise<SandboxSpawner> {
    return new Promise((resolve, reject) => {
      const child = spawn(helper, ['--serve'], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: {},
        // A session of its own, like each helper run per sandbox: a ^C meant
        // for Node does not reach the sandboxes (Node decides what to stop).
        detached: true,
      });
      const spawner = new SandboxSpawner(child);
      const failed = (why: string, cause?: unknown): void => {
        spawner.died();
        reject(
          new SpecbuildError('sandbox/unavailable', `cannot start the sandbox spawner: ${why}`, {
            cause,
          }),
        );
      };
      const onError = (e: Error): void => {
        failed(e.message, e);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        failed(`it exited (${signal ?? String(code)}) before it was ready`);
      };
      child.once('error', onError);
      child.once('exit', onExit);
      child.stdin.on('error', () => undefined); // a dead spawner is reported by 'exit'
      child.stdout.on('data', (chunk: Buffer) => {
        spawner.receive(chunk, () => {
          child.off('error', onError);
          child.off('exit', onExit);
          child.once('exit', () => {
            spawner.died();
          });
          child.on('error', () => undefined);
          spawner.setRef();
          resolve(spawner);
        });
      });
    });
  }

  /** The spawner's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** False once the spawner has exited (or is being closed). */
  get alive(): boolean {
    return !this.dead;
  }

  /** Starts a sandbox with the helper's arguments (as on its command line). */
  run(args: readonly string[], handlers: SpawnHandlers): SpawnedSandbox {
    if (this.dead) throw lostError();
    const data = Buffer.from(args.map((a) => `${a}\0`).join(''));
    if (data.length + 5 > MAX_FRAME) {
      throw new SpecbuildError(
        'sandbox/setup',
        `the sandbox's arguments and environment take ${data.length} bytes, more than a command can be given`,
      );
    }
    const id = this.nextId++;
    this.jobs.set(id, { handlers, decoder: new StringDecoder('utf8') });
    this.setRef();
    this.send(REQ_RUN, id, data);
    return {
      release: () => {
        if (this.jobs.has(id)) this.send(REQ_RELEASE, id);
      },
      kill: () => {
        if (this.jobs.has(id)) this.send(REQ_KILL, id);
      },
    };
  }

  /** Ends the channel: the spawner kills every sandbox it started and exits. */
  close(): void {
    this.child.stdin.end();
    this.died();
  }

  private send(type: number, id: number, data?: Buffer): void {
    const head = Buffer.allocUnsafe(9);
    head.writeUInt32LE(5 + (data?.length ?? 0), 0);
    head.writeUInt8(type, 4);
    head.writeUInt32LE(id, 5);
    this.child.stdin.write(data === undefined ? head : Buffer.concat([head, data]));
  }

  /** Handles the events in `chunk`; `hello` is called on the spawner's first. */
  private receive(chunk: Buffer, hello: () => void): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32LE(0);
      if (buf.length < 4 + len) break;
      const type = buf.readUInt8(4);
      const id = buf.readUInt32LE(5);
      const data = buf.subarray(9, 4 + len);
      buf = buf.subarray(4 + len);
      if (type === EV_HELLO) {
        hello();
        continue;
      }
      const job = this.jobs.get(id);
      if (job === undefined) continue;
      if (type === EV_OUTPUT) {
        job.handlers.output(job.decoder.write(data));
      } else if (type === EV_EXIT) {
        this.jobs.delete(id);
        this.setRef();
        const rest = job.decoder.end();
        if (rest !== '') job.handlers.output(rest);
        job.handlers.exit(data.readInt32LE(0));
      }
    }
    this.pending = buf;
  }

  /**
   * Keeps Node's event loop alive only while sandboxes run: an idle spawner
   * never holds up the exit of the process that started it.
   */
  private setRef(): void {
    const { stdin, stdout } = this.child;
    if (this.jobs.size > 0 && !this.dead) {
      this.child.ref();
      if (refable(stdout)) stdout.ref();
    } else {
      this.child.unref();
      if (refable(stdout)) stdout.unref();
      if (refable(stdin)) stdin.unref();
    }
  }

  private died(): void {
    if (this.dead) return;
    this.dead = true;
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    this.setRef();
    for (const job of jobs) job.handlers.lost(lostError());
  }
}

/** Node's pipes to a child are sockets, whose handles can stop holding the event loop. */
function refable(s: object): s is { ref(): unknown; unref(): unknown } {
  return 'ref' in s && 'unref' in s;
}

function lostError(): SpecbuildError {
  return new SpecbuildError('sandbox/unavailable', 'the sandbox spawner exited', {
    temporary: true,
  });
}

/**
 * The spawner of a process: started on first use, again after it died; when
 * it cannot start, undefined from then on (the caller spawns a helper per
 * sandbox instead).
 */
export class SpawnerSlot {
  private spawner: SandboxSpawner | undefined;
  private starting: Promise<SandboxSpawner | undefined> | undefined;
  private failed = false;

  constructor(private readonly start: () => Promise<SandboxSpawner>) {}

  get(): Promise<SandboxSpawner | undefined> {
    if (this.spawner?.alive === true) return Promise.resolve(this.spawner);
    if (this.failed) return Promise.resolve(undefined);
    if (this.starting === undefined || this.spawner !== undefined) {
      this.spawner = undefined;
      this.starting = Promise.resolve()
        .then(() => this.start())
        .then(
          (s) => {
            this.spawner = s;
            return s;
          },
          () => {
            this.failed = true;
            return undefined;
          },
        );
    }
    return this.starting;
  }
}

const shared = new SpawnerSlot(() => SandboxSpawner.start());

/**
 * This process's spawner, or undefined to spawn a helper per sandbox: when
 * the spawner cannot start, or with SPECBUILD_SANDBOX_SPAWNER=0.
 */
export function sharedSpawner(): Promise<SandboxSpawner | undefined> {
  if (process.env.SPECBUILD_SANDBOX_SPAWNER === '0') return Promise.resolve(undefined);
  return shared.get();
}
