// specbuild-exec, the generic command wrapper (like buildbox's trexe): turns
// one command with declared inputs and outputs into a REAPI action, answers
// it from the action cache or executes it remotely, writes the outputs into
// place and returns the command's stdout, stderr and exit code.
import { spawn } from 'node:child_process';
import { appendFile, lstat, readlink } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { isSpecbuildError, SpecbuildError } from '../core/index.js';
import type { Uploads } from '../cas/index.js';
import {
  buildTree,
  digestKey,
  digestOfFile,
  treeFromDirectory,
  type Digest,
  type TreeEntry,
} from '../reapi/index.js';
import { RemoteEndpoint } from '../remote/index.js';
import { addAction, runAction } from './remote-action.js';
import { logLine, type WrapOutcome } from './outcome.js';

export interface ExecRequest {
  argv: string[];
  cwd: string;
  inputs: string[];
  outputs: string[];
  platform: [string, string][];
  env: [string, string][];
  server: string | undefined;
  instance: string;
  logFile: string | undefined;
}

export interface ExecReply {
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  outcome: WrapOutcome;
  action?: Digest;
  /** Why the wrapper fell back to running the command locally. */
  error?: SpecbuildError;
}

/** The line said to the user when the command ran locally after a failure. */
export function fallbackWarning(e: SpecbuildError): string {
  return `specbuild-exec: ${e.message}; ran the command locally`;
}

/**
 * Builds the Action: inputs at their absolute paths, the working directory
 * likewise. `digest` hashes a file (the daemon passes its stat cache).
 */
export async function buildAction(
  req: ExecRequest,
  apiHigh: string,
  digest: (path: string) => Promise<Digest> = digestOfFile,
): Promise<{ action: Digest; uploads: Uploads }> {
  const uploads: Uploads = new Map();
  const entries: TreeEntry[] = [{ kind: 'dir', path: req.cwd.slice(1) }];
  for (const input of req.inputs) {
    const abs = resolve(req.cwd, input);
    const rel = abs.slice(1);
    const st = await lstat(abs).catch(() => undefined);
    // decideExec checked it exists; gone since: the run falls back.
    if (st === undefined) throw new SpecbuildError('cas/not-found', `${abs} disappeared`);
    if (st.isSymbolicLink()) {
      entries.push({ kind: 'symlink', path: rel, target: await readlink(abs) });
    } else if (st.isDirectory()) {
      const tree = await treeFromDirectory(abs);
      for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
      for (const [k, f] of tree.files) uploads.set(k, { digest: f.digest, path: f.path });
      entries.push({ kind: 'tree', path: rel, digest: tree.root });
    } else {
      const d = await digest(abs);
      uploads.set(digestKey(d), { digest: d, path: abs });
      entries.push({ kind: 'file', path: rel, digest: d, executable: (st.mode & 0o111) !== 0 });
    }
  }
  const tree = buildTree(entries);
  for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
  const action = addAction(
    {
      argv: req.argv,
      env: req.env,
      workingDirectory: req.cwd.slice(1),
      outputs: req.outputs,
      platform: req.platform,
      inputRoot: tree.root,
    },
    apiHigh,
    uploads,
  );
  return { action, uploads };
}

/** Runs the command directly, unwrapped, with the caller's environment. */
export function runLocally(argv: string[], cwd: string): Promise<number> {
  return new Promise((resolvePromise) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? '', args, { cwd, stdio: 'inherit' });
    child.once('error', () => {
      resolvePromise(127);
    });
    child.once('exit', (code, signal) => {
      // A signal is reported as a shell does: 128 + its number.
      resolvePromise(code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]));
    });
  });
}

async function remoteRun(
  req: ExecRequest,
  ep: RemoteEndpoint,
  opts: ExecOptions,
): Promise<ExecReply> {
  const { action, uploads } = await buildAction(req, ep.apiVersion.high, opts.digest);
  const ran = await runAction(ep, action, uploads, {
    cwd: req.cwd,
    outputs: req.outputs,
    signal: opts.signal,
    umask: opts.umask,
  });
  return { ...ran, action };
}

/** How the daemon runs specbuild-exec: its warm connections and stat cache, the client's liveness. */
export interface ExecOptions {
  /** A warm, shared connection; without it one is made for this run and closed after. */
  endpoint?: (target: string, instance: string) => Promise<RemoteEndpoint>;
  /** Hashes an input file (default: read and hash it). */
  digest?: (path: string) => Promise<Digest>;
  /** The client went away. */
  signal?: AbortSignal;
  /** The client's umask, for the modes of the outputs written (default 022). */
  umask?: number;
}

/** What the wrapper decided, without running anything locally (the caller does that). */
export type ExecDecision =
  ExecReply | { outcome: 'local' | 'fallback'; error?: SpecbuildError; action?: Digest };

/** Decides one run; usage errors (a missing --input) throw `wrap/usage`. */
export async function decideExec(req: ExecRequest, opts: ExecOptions = {}): Promise<ExecDecision> {
  // A declared input that does not exist is the caller's mistake, whatever the server.
  for (const input of req.inputs) {
    const abs = resolve(req.cwd, input);
    if ((await lstat(abs).catch(() => undefined)) === undefined)
      throw new SpecbuildError('wrap/usage', `--input ${input}: ${abs} does not exist`, {
        hint: 'declare only files that exist',
      });
  }
  if (req.server === undefined) return { outcome: 'local' };
  let owned: RemoteEndpoint | undefined;
  try {
    let ep: RemoteEndpoint;
    if (opts.endpoint !== undefined) {
      ep = await opts.endpoint(req.server, req.instance);
    } else {
      owned = await RemoteEndpoint.connect({
        target: req.server,
        instance: req.instance,
        retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
      });
      ep = owned;
    }
    return await remoteRun(req, ep, opts);
  } catch (e) {
    if (isSpecbuildError(e, 'wrap/usage')) throw e;
    return { outcome: 'fallback', error: SpecbuildError.from(e) };
  } finally {
    owned?.close();
  }
}

/** The wrapper: never fails because the cache or server did; falls back to a local run. */
export async function runWrapped(req: ExecRequest): Promise<ExecReply & { ms: number }> {
  const started = performance.now();
  if (!isAbsolute(req.cwd)) throw new Error('bug: cwd must be absolute');
  // This process's own umask, for the outputs it writes (read by setting it, then put back).
  const umask = process.umask(0o022);
  process.umask(umask);
  const decided = await decideExec(req, { umask });
  const reply: ExecReply =
    'exitCode' in decided
      ? decided
      : {
          ...decided,
          exitCode: await runLocally(req.argv, req.cwd),
          stdout: new Uint8Array(0),
          stderr: new Uint8Array(0),
        };
  const ms = Math.round(performance.now() - started);
  // The command has run: a log that cannot be written does not change its result.
  if (req.logFile !== undefined)
    await appendFile(
      req.logFile,
      logLine({
        argv: req.argv,
        outcome: reply.outcome,
        action: reply.action,
        ms,
        error: reply.error,
      }),
    ).catch(() => undefined);
  return { ...reply, ms };
}
