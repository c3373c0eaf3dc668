// Child processes for tests: run one to completion, or start a long-lived
// one (a server), wait until it says it is ready, and stop it for sure.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, interleaved as they arrived. */
  output: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function runProcess(
  cmd: string,
  args: string[],
  opts: {
    timeoutMs: number;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    input?: string;
    /** Told of everything printed so far, on each chunk (to act at a given point). */
    onOutput?: (output: string) => void;
  },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      // stdin is a pipe holding `input` (empty without it).
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      output += s;
      opts.onOutput?.(output);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      output += s;
      opts.onOutput?.(output);
    });
    child.stdin.on('error', () => undefined); // a child that exits without reading it
    child.stdin.end(opts.input ?? '');
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout, stderr, output });
    });
  });
}

export function describeRun(what: string, r: ProcessResult): string {
  return `${what} exited with code ${r.code} (signal ${r.signal}); output:\n${r.output}`;
}

function exited(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

export interface Service<T> {
  /** What `ready` returned once the process was ready. */
  value: T;
  /** Everything it printed so far, stdout and stderr interleaved. */
  output: () => string;
  /** SIGTERM, then SIGKILL after stopTimeoutMs; resolves with how it exited. */
  stop: () => Promise<Exit>;
  /** SIGKILL, as a crash would; resolves once it is gone. */
  kill: () => Promise<Exit>;
  pid: number;
}

/**
 * Starts a long-lived process and resolves once `ready` returns a value for
 * its output so far (checked on every chunk, and every 100 ms for readiness
 * that needs polling). Rejects, and kills the process, if it exits first or
 * is not ready in time.
 */
export async function startService<T>(
  cmd: string,
  args: string[],
  opts: {
    ready: (output: string) => T | undefined | Promise<T | undefined>;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    startTimeoutMs?: number;
    stopTimeoutMs?: number;
  },
): Promise<Service<T>> {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    cwd: opts.cwd,
  });
  const done = exited(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const stop = async (): Promise<Exit> => {
    if (child.exitCode !== null || child.signalCode !== null) return done;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, opts.stopTimeoutMs ?? 15_000);
    });
    const r = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      child.kill('SIGKILL');
      await done;
      return { code: null, signal: 'SIGKILL' };
    }
    return r;
  };
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', reject);
  });
  const deadline = Date.now() + startTimeoutMs;
  try {
    for (;;) {
      const value = await opts.ready(output);
      if (value !== undefined) {
        const kill = (): Promise<Exit> => {
          child.kill('SIGKILL');
          return done;
        };
        return { value, output: () => output, stop, kill, pid: child.pid ?? -1 };
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${cmd} exited before it was ready (code ${child.exitCode}, signal ${child.signalCode}):\n${output}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(`${cmd} was not ready within ${startTimeoutMs} ms:\n${output}`);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), done, spawnError]);
    }
  } catch (e) {
    child.kill('SIGKILL');
    await done;
    throw e;
  }
}
