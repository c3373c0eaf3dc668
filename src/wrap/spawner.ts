// Commands the wrapper daemon runs (a compile on a miss, the -M scan), run
// through specbuild-spawner: a small process that forks for us. Forking the
// daemon itself, a Node process of ~115 MB, costs ~8-10 ms a command in page
// tables (measured: 2.5 ms at 55 MB, 10.9 ms at 154 MB, 25.7 ms at 455 MB);
// the spawner's fork costs a fraction of a millisecond. One spawner per
// thread, started at its first command. When it is missing or dies, commands
// are spawned directly, as before: the result is the same, only slower.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Captured {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** dist/native/specbuild-spawner, from this module (dist/src/wrap) or the daemon's bundle (dist/src/cli). */
function spawnerPath(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of [
    ['..', '..'],
    ['..', '..', '..'],
  ]) {
    const p = resolve(here, ...up, 'native', 'specbuild-spawner');
    if (existsSync(p)) return p;
  }
  const fromEnv = process.env.SPECBUILD_SPAWNER;
  return fromEnv !== undefined && existsSync(fromEnv) ? fromEnv : undefined;
}

/** Runs `argv` directly with Node (the fallback, and what the spawner reproduces exactly). */
export function spawnDirect(
  argv: readonly string[],
  cwd: string,
  env: ReadonlyMap<string, string>,
): Promise<Captured> {
  return new Promise((resolvePromise, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? '', args, {
      cwd,
      env: Object.fromEntries(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code) => {
      resolvePromise({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

interface Pending {
  resolve: (c: Captured) => void;
  reject: (e: Error) => void;
  argv: readonly string[];
  cwd: string;
  env: ReadonlyMap<string, string>;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const str = (s: string): Buffer[] => {
  const b = Buffer.from(s);
  return [u32(b.length), b];
};

/** The error Node's spawn gives for a command that cannot start (ENOENT, EACCES...). */
function startError(errno: number, argv: readonly string[], cwd: string): Error {
  const code =
    errno === 2 ? 'ENOENT' : errno === 13 ? 'EACCES' : errno === 20 ? 'ENOTDIR' : `E${errno}`;
  const e = new Error(`spawn ${argv[0] ?? ''} ${code} (in ${cwd})`) as NodeJS.ErrnoException;
  e.code = code;
  e.errno = -errno;
  e.syscall = `spawn ${argv[0] ?? ''}`;
  e.path = argv[0];
  return e;
}

export class Spawner {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private input: Buffer = Buffer.alloc(0);
  /** Set once the spawner could not be started or died: direct spawns from then on. */
  private broken = false;
  /** Commands run through the spawner (for tests and SPECBUILD_VERBOSE). */
  spawned = 0;

  constructor(private readonly path: string | undefined = spawnerPath()) {}

  /**
   * Runs `argv`. Its files are made under `umask` (default 022) through the
   * spawner; spawned directly (no spawner), under this process's, which
   * Node cannot set for one child.
   */
  run(
    argv: readonly string[],
    cwd: string,
    env: ReadonlyMap<string, string>,
    umask = 0o022,
  ): Promise<Captured> {
    const child = this.ensure();
    if (child?.stdin == null || argv.length === 0) return spawnDirect(argv, cwd, env);
    const id = this.nextId++;
    const parts: Buffer[] = [u32(id), u32(argv.length)];
    for (const a of argv) parts.push(...str(a));
    parts.push(...str(cwd), u32(env.size));
    for (const [k, v] of env) parts.push(...str(`${k}=${v}`));
    parts.push(u32(umask & 0o777));
    return new Promise((resolvePromise, reject) => {
      if (this.pending.size === 0) this.hold(true);
      this.pending.set(id, { resolve: resolvePromise, reject, argv, cwd, env });
      this.spawned++;
      child.stdin?.write(Buffer.concat(parts));
    });
  }

  /** Stops the spawner (its running commands finish; the daemon is exiting). */
  close(): void {
    this.child?.stdin?.end();
    this.child?.unref();
  }

  private ensure(): ChildProcess | undefined {
    if (this.broken || this.path === undefined) return undefined;
    if (this.child !== undefined) return this.child;
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    child.stdout.on('data', (b: Buffer) => {
      this.input = this.input.length === 0 ? b : Buffer.concat([this.input, b]);
      this.answers();
    });
    const lost = (): void => {
      if (this.broken) return;
      this.broken = true;
      this.child = undefined;
      // What it was running is run again directly: a compile is repeatable.
      const again = [...this.pending.values()];
      this.pending.clear();
      for (const p of again) spawnDirect(p.argv, p.cwd, p.env).then(p.resolve, p.reject);
    };
    child.once('error', lost);
    child.once('exit', lost);
    child.stdin.on('error', lost);
    // Idle, it keeps nothing alive (the daemon's threads may end with it idle).
    this.hold(false);
    return child;
  }

  /** Keeps the event loop alive while commands are pending, and only then. */
  private hold(on: boolean): void {
    const c = this.child;
    if (c === undefined) return;
    if (on) c.ref();
    else c.unref();
    for (const s of [c.stdout, c.stdin])
      if (s instanceof Socket) {
        if (on) s.ref();
        else s.unref();
      }
  }

  /** Every whole answer in the input. */
  private answers(): void {
    let at = 0;
    const b = this.input;
    for (;;) {
      if (b.length - at < 16) break;
      const id = b.readUInt32LE(at);
      const kind = b.readUInt32LE(at + 4);
      const value = b.readUInt32LE(at + 8);
      const outLen = b.readUInt32LE(at + 12);
      if (b.length - at < 16 + outLen + 4) break;
      const errLen = b.readUInt32LE(at + 16 + outLen);
      const end = at + 20 + outLen + errLen;
      if (b.length < end) break;
      const stdout = Buffer.from(b.subarray(at + 16, at + 16 + outLen));
      const stderr = Buffer.from(b.subarray(at + 20 + outLen, end));
      at = end;
      const p = this.pending.get(id);
      if (p === undefined) continue;
      this.pending.delete(id);
      if (this.pending.size === 0) this.hold(false);
      if (kind === 2) p.reject(startError(value, p.argv, p.cwd));
      // Killed by a signal: Node's close gives no code, which run() made 1.
      else p.resolve({ code: kind === 1 ? 1 : value, stdout, stderr });
    }
    this.input = at === b.length ? Buffer.alloc(0) : b.subarray(at);
  }
}

/** This thread's spawner (SPECBUILD_SPAWNER=0: commands are spawned directly). */
let shared: Spawner | undefined;
export function threadSpawner(): Spawner {
  shared ??= new Spawner(process.env.SPECBUILD_SPAWNER === '0' ? undefined : spawnerPath());
  return shared;
}

/** The helper's path as this module finds it (undefined when it was not built). */
export const SPAWNER_PATH = (): string | undefined => spawnerPath();
