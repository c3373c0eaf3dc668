// Runs one command in a Linux sandbox (through the native helper): a fresh
// root with the host toolchain, read-only layers overlaid at their absolute
// paths, writable binds, an exact environment, a timeout that kills every
// process of the command, stdin closed, stdout/stderr to files (or, for an
// interactive shell, this process's own terminal). The command is root only
// in a user namespace of its own, an unprivileged user on the host.
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { isAbsolute, resolve as absolute } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import { sandboxHelper } from './helper.js';
import { limitArgs, type SandboxLimits } from './limits.js';
import { sharedSpawner, type SandboxSpawner, type SpawnedSandbox } from './spawner.js';

export interface Bind {
  /** Host path (file or directory). */
  src: string;
  /** Absolute path inside the sandbox. */
  dst: string;
  readonly?: boolean;
}

/**
 * What the command may write: it is root inside, but on the host (when the
 * caller is root) a uid of its own, not root. It owns the sandbox's root
 * directory, the top-level directories of the layers and everything it
 * creates; deeper directories of a layer, and writable binds, it can write
 * only where their modes let any user (e.g. 0777 inside a private 0700
 * directory, as `stageTree`'s `writableDirectories` makes them). Writes to
 * layers are copies in `upperDir`, whatever the layers' modes.
 */
export interface SandboxSpec {
  argv: readonly string[];
  /** The command's whole environment: nothing is inherited. */
  env: Readonly<Record<string, string>>;
  /** Absolute working directory inside the sandbox (default "/"). */
  cwd?: string;
  /** Host directories overlaid above the host root, lowest first. */
  layers?: readonly string[];
  /**
   * Nothing of the host's file system (its device nodes and /proc aside):
   * the layers are the whole root, the lowest one a root file system
   * (an action's chrootRootDigest).
   */
  noHost?: boolean;
  /** Host directory that receives writes to overlaid directories (required with layers). */
  upperDir?: string;
  /** An empty host directory the sandbox may use privately (not inside upperDir). */
  scratchDir: string;
  binds?: readonly Bind[];
  /** Allow network access (default: a private network with only loopback). */
  network?: boolean;
  /** Processes and memory the command may use (see `SandboxLimits` for the defaults). */
  limits?: SandboxLimits;
  /** Kill the command and all its processes after this long. */
  timeoutMs?: number;
  /** Where stdout and stderr go (required unless `inheritStdio`); stdin is closed. */
  stdoutFile?: string;
  stderrFile?: string;
  /**
   * The command gets this process's stdin, stdout and stderr (a terminal, for
   * `specbuild shell`) instead, and stays in its process group, so that it
   * can read the terminal and Ctrl-C reaches it; the sandbox itself ignores
   * SIGINT and SIGQUIT, which are the command's to act on.
   */
  inheritStdio?: boolean;
  signal?: AbortSignal;
  /**
   * Called once the command has exited (not on timeout), while the sandbox
   * still stands: `root` is a host path showing the sandbox's file system as
   * the command saw it (overlays merged), from which outputs are read.
   */
  capture?: (root: string) => Promise<void>;
}

export interface SandboxResult {
  exitCode: number;
  /** Signal that ended the command, if any. */
  signal: NodeJS.Signals | undefined;
  timedOut: boolean;
  wallMs: number;
}

/** Exit status of the helper when it could not set the sandbox up. */
const SETUP_FAILED = 125;

function checkAbsolute(path: string, what: string): void {
  if (!isAbsolute(path))
    throw new SpecbuildError('sandbox/setup', `${what} "${path}" must be an absolute path`);
}

export function sandboxArgs(spec: SandboxSpec): string[] {
  const args = ['--scratch', spec.scratchDir];
  checkAbsolute(spec.scratchDir, 'scratch directory');
  if (spec.upperDir !== undefined) {
    checkAbsolute(spec.upperDir, 'upper directory');
    args.push('--upper', spec.upperDir);
  }
  for (const l of spec.layers ?? []) {
    checkAbsolute(l, 'layer');
    args.push('--layer', l);
  }
  for (const b of spec.binds ?? []) {
    checkAbsolute(b.src, 'bind source');
    checkAbsolute(b.dst, 'bind destination');
    args.push(b.readonly === true ? '--ro-bind' : '--bind', b.src, b.dst);
  }
  const cwd = spec.cwd ?? '/';
  checkAbsolute(cwd, 'working directory');
  args.push('--cwd', cwd);
  if (spec.network === true) args.push('--net');
  if (spec.noHost === true) args.push('--no-host');
  args.push(...limitArgs(spec.limits));
  if (spec.capture !== undefined) args.push('--hold');
  if (spec.inheritStdio === true) args.push('--foreground');
  for (const [k, v] of Object.entries(spec.env)) {
    if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) {
      throw new SpecbuildError('sandbox/setup', `invalid environment variable name "${k}"`);
    }
    args.push('--env', `${k}=${v}`);
  }
  if (spec.argv.length === 0 || spec.argv[0] === '') {
    throw new SpecbuildError('sandbox/setup', 'the command is empty');
  }
  args.push('--', ...spec.argv);
  return args;
}

export async function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  // A terminal's command inherits this process's stdio, which only a helper
  // that Node spawns can have; every other run goes through the spawner.
  const terminal = spec.inheritStdio === true;
  if (!terminal && (spec.stdoutFile === undefined || spec.stderrFile === undefined))
    throw new SpecbuildError('sandbox/setup', 'stdoutFile and stderrFile are needed');
  const args = terminal
    ? sandboxArgs(spec)
    : [
        '--stdout',
        absolute(spec.stdoutFile as string), // the helper's working directory need not be ours
        '--stderr',
        absolute(spec.stderrFile as string),
        ...sandboxArgs(spec),
      ];
  const helper = sandboxHelper();
  const spawner = terminal ? undefined : await sharedSpawner();
  spec.signal?.throwIfAborted();
  const started = performance.now();
  let setupMessage = '';
  let initPid: number | undefined;
  let captureDone: Promise<void> | undefined;
  const captured: { error?: Error } = {};
  const timing: { timer?: NodeJS.Timeout } = {};
  let pending = '';
  const onLine = (line: string): void => {
    const pid = /^pid (\d+)$/.exec(line);
    if (pid !== null) {
      initPid = Number(pid[1]);
      return;
    }
    if (/^done -?\d+$/.test(line)) {
      // The command has finished within its time: reading its outputs is not timed.
      clearTimeout(timing.timer);
      const capture = spec.capture;
      if (capture !== undefined && initPid !== undefined) {
        captureDone = capture(`/proc/${initPid}/root`)
          .catch((e: unknown) => {
            captured.error = e instanceof Error ? e : new Error(String(e));
          })
          .finally(() => {
            helperRun.release();
          });
      }
      return;
    }
    setupMessage += `${line}\n`;
  };
  const onOutput = (text: string): void => {
    pending += text;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  };
  const helperRun =
    spawner === undefined
      ? spawnHelper(helper, args, onOutput, terminal)
      : viaSpawner(spawner, args, onOutput);
  if (spec.capture === undefined) helperRun.release();
  const deadline = { passed: false };
  const kill = (): void => {
    helperRun.kill();
  };
  timing.timer =
    spec.timeoutMs === undefined || spec.timeoutMs <= 0
      ? undefined
      : setTimeout(() => {
          deadline.passed = true;
          kill();
        }, spec.timeoutMs);
  spec.signal?.addEventListener('abort', kill, { once: true });
  const [code, signal] = await helperRun.ended.finally(() => {
    clearTimeout(timing.timer);
    spec.signal?.removeEventListener('abort', kill);
  });
  await captureDone;
  if (deadline.passed || spec.signal?.aborted === true) await initGone(initPid);
  const wallMs = performance.now() - started;
  if (captured.error !== undefined) throw captured.error;
  if (code === SETUP_FAILED && setupMessage !== '') {
    const unavailable = setupMessage.includes('cannot create Linux namespaces');
    throw new SpecbuildError(
      unavailable ? 'sandbox/unavailable' : 'sandbox/setup',
      `sandbox: ${setupMessage.trim()}`,
      {
        hint: unavailable ? 'run as root, or enable unprivileged user namespaces' : undefined,
      },
    );
  }
  spec.signal?.throwIfAborted();
  return {
    exitCode: code ?? (signal === null ? -1 : 128),
    signal: signal ?? undefined,
    timedOut: deadline.passed,
    wallMs,
  };
}

/** One run of the helper, however it was started. */
interface HelperRun {
  /** Ends the sandbox's --hold (after capture, or at once without one). */
  release(): void;
  /** SIGKILLs the helper's process group: the kernel then ends its whole sandbox. */
  kill(): void;
  /** The helper's exit code or signal, once it has exited. */
  ended: Promise<[number | null, NodeJS.Signals | null]>;
}

/** The helper run through the process's spawner (the usual way). */
function viaSpawner(
  spawner: SandboxSpawner,
  args: readonly string[],
  output: (text: string) => void,
): HelperRun {
  let run: SpawnedSandbox | undefined;
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    run = spawner.run(args, {
      output,
      exit: (status) => {
        resolve(decodeWaitStatus(status));
      },
      lost: reject,
    });
  });
  return {
    release: () => run?.release(),
    kill: () => run?.kill(),
    ended,
  };
}

/**
 * The helper spawned by Node for this one sandbox: for a terminal's command,
 * or when the spawner cannot start (or SPECBUILD_SANDBOX_SPAWNER=0).
 */
function spawnHelper(
  helper: string,
  args: readonly string[],
  output: (text: string) => void,
  terminal: boolean,
): HelperRun {
  const child = spawn(helper, args, {
    stdio: terminal
      ? ['inherit', 'inherit', 'inherit', 'pipe', 'pipe']
      : ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
    env: {},
    // Its own process group, so that a timeout kills all of it; a terminal's
    // command stays in the terminal's (killing the helper ends the sandbox).
    detached: !terminal,
  });
  const release = child.stdio[4] as Writable | null;
  release?.on('error', () => undefined);
  const diag = child.stdio[3];
  if (diag !== null && diag !== undefined && 'setEncoding' in diag) {
    diag.setEncoding('utf8');
    diag.on('data', output);
  }
  const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', (e) => {
      reject(
        new SpecbuildError('sandbox/unavailable', `cannot start the sandbox helper: ${e.message}`, {
          cause: e,
        }),
      );
    });
    child.once('close', (c, s) => {
      resolve([c, s]);
    });
  });
  return {
    release: () => release?.end(),
    kill: () => {
      if (child.pid === undefined) return;
      try {
        process.kill(terminal ? child.pid : -child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
    ended,
  };
}

/** A raw wait status as Node reports a child's end: exit code, or signal. */
function decodeWaitStatus(status: number): [number | null, NodeJS.Signals | null] {
  const sig = status & 0x7f;
  if (sig === 0) return [(status >> 8) & 0xff, null];
  return [null, signalName(sig)];
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(osConstants.signals)) {
    if (num === n) return name as NodeJS.Signals;
  }
  return null;
}

/** Waits until the sandbox's init has exited: the kernel ends it only after every process of its namespace. */
async function initGone(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  for (let i = 0; i < 500 && existsSync(`/proc/${pid}`); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
}
