// specbuild-exec, the generic command wrapper (like buildbox's trexe): turns
// one command with declared inputs and outputs into a REAPI action, answers
// it from the action cache or executes it remotely, writes the outputs into
// place and returns the command's stdout, stderr and exit code.
import { spawn } from 'node:child_process';
import { appendFile, lstat, readFile, readlink } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import type { Cas } from '../cas/index.js';
import {
  ActionSchema,
  CommandSchema,
  buildTree,
  digestKey,
  digestMessage,
  digestOfFile,
  fromPb,
  toPb,
  treeFromDirectory,
  type ActionResult,
  type Digest,
  type TreeEntry,
} from '../reapi/index.js';
import { RemoteEndpoint } from '../remote/index.js';
import { writeOutputs } from './outputs.js';

export type Outcome = 'hit' | 'miss' | 'local' | 'fallback';

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
  outcome: Outcome;
  action?: Digest;
  /** One line for the user when the wrapper fell back to running locally. */
  warning?: string;
}

/** Where the files of the action live, so they can be uploaded. */
type Uploads = Map<string, { digest: Digest; path?: string; bytes?: Uint8Array }>;

/** Builds the Action: inputs at their absolute paths, the working directory likewise. */
export async function buildAction(req: ExecRequest): Promise<{ action: Digest; uploads: Uploads }> {
  const uploads: Uploads = new Map();
  const entries: TreeEntry[] = [{ kind: 'dir', path: req.cwd.slice(1) }];
  for (const input of req.inputs) {
    const abs = resolve(req.cwd, input);
    const rel = abs.slice(1);
    const st = await lstat(abs).catch(() => undefined);
    if (st === undefined) {
      throw new SpecbuildError('cli/usage', `--input ${input}: ${abs} does not exist`, {
        hint: 'declare only files that exist',
      });
    }
    if (st.isSymbolicLink()) {
      entries.push({ kind: 'symlink', path: rel, target: await readlink(abs) });
    } else if (st.isDirectory()) {
      const tree = await treeFromDirectory(abs);
      for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
      for (const [k, f] of tree.files) uploads.set(k, { digest: f.digest, path: f.path });
      entries.push({ kind: 'tree', path: rel, digest: tree.root });
    } else {
      const digest = await digestOfFile(abs);
      uploads.set(digestKey(digest), { digest, path: abs });
      entries.push({ kind: 'file', path: rel, digest, executable: (st.mode & 0o111) !== 0 });
    }
  }
  const tree = buildTree(entries);
  for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
  const sortPairs = (pairs: [string, string][]): { name: string; value: string }[] =>
    [...pairs]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, value]) => ({ name, value }));
  const command = digestMessage(
    CommandSchema,
    create(CommandSchema, {
      arguments: req.argv,
      environmentVariables: sortPairs(req.env),
      workingDirectory: req.cwd.slice(1),
      outputPaths: [...new Set(req.outputs)].sort(),
    }),
  );
  const platform = req.platform.length > 0 ? { properties: sortPairs(req.platform) } : undefined;
  const action = digestMessage(
    ActionSchema,
    create(ActionSchema, {
      commandDigest: toPb(command.digest),
      inputRootDigest: toPb(tree.root),
      platform,
    }),
  );
  uploads.set(digestKey(command.digest), { digest: command.digest, bytes: command.bytes });
  uploads.set(digestKey(action.digest), { digest: action.digest, bytes: action.bytes });
  return { action: action.digest, uploads };
}

async function upload(cas: Cas, uploads: Uploads, only?: Set<string>): Promise<void> {
  const all = [...uploads.values()].filter(
    (u) => only === undefined || only.has(digestKey(u.digest)),
  );
  const missing = new Set((await cas.findMissingBlobs(all.map((u) => u.digest))).map(digestKey));
  const blobs: Uint8Array[] = [];
  for (const u of all) {
    if (!missing.has(digestKey(u.digest))) continue;
    blobs.push(u.bytes ?? (await readFile(u.path ?? '')));
  }
  await cas.writeBlobs(blobs);
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
      resolvePromise(code ?? 128 + (signal === null ? 0 : 15));
    });
  });
}

async function remoteRun(req: ExecRequest, ep: RemoteEndpoint): Promise<ExecReply> {
  const { action, uploads } = await buildAction(req);
  let result: ActionResult | undefined = await ep.actionCache.getActionResult(action);
  let outcome: Outcome = 'hit';
  if (result === undefined) {
    outcome = 'miss';
    if (!ep.canExecute) {
      throw new SpecbuildError(
        'remote/unsupported',
        `${ep.connection.target.text} does not execute actions`,
      );
    }
    await upload(ep.cas, uploads);
    const res = await ep.execution.execute(action);
    if (res.status !== undefined && res.status.code !== 0) {
      throw new SpecbuildError(
        'remote/protocol',
        `remote execution failed: ${res.status.message}`,
        { temporary: true },
      );
    }
    result = res.result;
    if (result === undefined)
      throw new SpecbuildError('remote/protocol', 'ExecuteResponse without a result');
  }
  await writeOutputs(ep.cas, result, req.cwd, req.outputs);
  const read = async (d: ActionResult['stdoutDigest'], raw: Uint8Array): Promise<Uint8Array> =>
    raw.byteLength > 0 || d === undefined ? raw : ep.cas.readBlob(fromPb(d));
  return {
    exitCode: result.exitCode,
    stdout: await read(result.stdoutDigest, result.stdoutRaw),
    stderr: await read(result.stderrDigest, result.stderrRaw),
    outcome,
    action,
  };
}

/** What the wrapper decided, without running anything locally (the caller does that). */
export type ExecDecision =
  ExecReply | { outcome: 'local' | 'fallback'; warning?: string; action?: Digest };

/**
 * Decides one run. `endpoint` supplies a warm, shared connection (the daemon's);
 * without it, a connection is made for this run and closed after it.
 */
export async function decideExec(
  req: ExecRequest,
  endpoint?: (target: string, instance: string) => Promise<RemoteEndpoint>,
): Promise<ExecDecision> {
  if (req.server === undefined) return { outcome: 'local' };
  let owned: RemoteEndpoint | undefined;
  try {
    let ep: RemoteEndpoint;
    if (endpoint !== undefined) {
      ep = await endpoint(req.server, req.instance);
    } else {
      owned = await RemoteEndpoint.connect({
        target: req.server,
        instance: req.instance,
        retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
      });
      ep = owned;
    }
    return await remoteRun(req, ep);
  } catch (e) {
    if (e instanceof SpecbuildError && e.code === 'cli/usage') throw e;
    const why = e instanceof Error ? e.message : String(e);
    return { outcome: 'fallback', warning: `specbuild-exec: ${why}; ran the command locally` };
  } finally {
    owned?.close();
  }
}

/** The JSON line appended to the wrapper log for each run. */
export function logLine(
  argv: readonly string[],
  outcome: Outcome,
  action: Digest | undefined,
  ms: number,
): string {
  return `${JSON.stringify({ argv, outcome, action: action === undefined ? '' : digestKey(action), ms })}\n`;
}

/** The wrapper: never fails because the cache or server did; falls back to a local run. */
export async function runWrapped(req: ExecRequest): Promise<ExecReply & { ms: number }> {
  const started = performance.now();
  if (!isAbsolute(req.cwd)) throw new Error('bug: cwd must be absolute');
  const decided = await decideExec(req);
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
  if (req.logFile !== undefined)
    await appendFile(req.logFile, logLine(req.argv, reply.outcome, reply.action, ms));
  return { ...reply, ms };
}
