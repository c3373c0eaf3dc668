// Running the host tools that sources rely on (tar, git) as child processes:
// arguments as a list (no shell), output collected, cancellation by signal,
// and a failure turned into a SpecbuildError that quotes the tool's stderr.
import { spawn } from 'node:child_process';
import { errnoCode, SpecbuildError, type ErrorCode, type Location } from '../../core/index.js';

export interface CommandOptions {
  cwd?: string;
  /** The whole environment of the child (nothing is inherited). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface CommandOutcome {
  /** Exit status; null when a signal ended it. */
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `cmd` to its end; a tool that cannot start is an error of `code`. */
export function spawnCollect(
  cmd: string,
  args: readonly string[],
  opts: CommandOptions & { code: ErrorCode },
): Promise<CommandOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (errnoCode(e) === 'ENOENT')
        reject(
          new SpecbuildError(opts.code, `${cmd} is not installed (not on PATH)`, {
            hint: `install ${cmd}`,
            cause: e,
          }),
        );
      else reject(SpecbuildError.from(e, opts.code));
    });
    child.on('close', (status) => {
      resolve({
        status,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

export interface RunOptions extends CommandOptions {
  code: ErrorCode;
  /** What the command was doing, for the message ("extracting X"). */
  what: string;
  location?: Location;
  hint?: string;
}

/** Runs `cmd` and returns its stdout; a non-zero exit is an error of `opts.code`. */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<Buffer> {
  const r = await spawnCollect(cmd, args, opts);
  if (r.status === 0) return r.stdout;
  const tail = r.stderr.trim().split('\n').slice(-10).join('\n');
  throw new SpecbuildError(
    opts.code,
    `${opts.what}: ${cmd} ${r.status === null ? 'was killed' : `exited with ${r.status}`}${tail === '' ? '' : `:\n${tail}`}`,
    { location: opts.location, hint: opts.hint },
  );
}

/** PATH and a C locale: enough for tar and git, and their messages stay in English. */
export function toolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', ...extra };
}
