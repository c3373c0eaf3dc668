// What specbuild-cc and specbuild-exec share once each has its action: the
// Command and Action in the shape the server's REAPI version wants, and one
// run through the action cache or remote execution, with the outputs written
// into place and stdout/stderr fetched.
import { create } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import { uploadMissing, type Uploads } from '../cas/index.js';
import {
  ActionSchema,
  CommandSchema,
  digestKey,
  digestMessage,
  fromPb,
  toPb,
  type ActionResult,
  type Digest,
} from '../reapi/index.js';
import type { RemoteEndpoint } from '../remote/index.js';
import { writeOutputs } from './outputs.js';

export interface ActionSpec {
  argv: string[];
  env: readonly (readonly [string, string])[];
  /** Relative to the input root. */
  workingDirectory: string;
  /** Relative to the working directory. */
  outputs: readonly string[];
  platform: readonly (readonly [string, string])[] | undefined;
  inputRoot: Digest;
}

const byName = (a: readonly [string, string], b: readonly [string, string]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;

function versionBelow(v: string, major: number, minor: number): boolean {
  const [a, b] = v.split('.').map(Number);
  return (a ?? 0) < major || ((a ?? 0) === major && (b ?? 0) < minor);
}

/**
 * Encodes the Command and Action, adds both to `uploads`, and returns the
 * action digest. Below REAPI 2.1 outputs go in output_files (a directory
 * output needs 2.1), below 2.2 the platform goes in the Command.
 */
export function encodeAction(spec: ActionSpec, apiHigh: string, uploads: Uploads): Digest {
  const outputs = [...new Set(spec.outputs)].sort();
  const legacyOutputs = versionBelow(apiHigh, 2, 1);
  const platform =
    spec.platform === undefined || spec.platform.length === 0
      ? undefined
      : { properties: [...spec.platform].sort(byName).map(([name, value]) => ({ name, value })) };
  const platformInCommand = versionBelow(apiHigh, 2, 2);
  const command = digestMessage(
    CommandSchema,
    create(CommandSchema, {
      arguments: spec.argv,
      environmentVariables: [...spec.env].sort(byName).map(([name, value]) => ({ name, value })),
      workingDirectory: spec.workingDirectory,
      outputPaths: legacyOutputs ? [] : outputs,
      outputFiles: legacyOutputs ? outputs : [],
      platform: platformInCommand ? platform : undefined,
    }),
  );
  const action = digestMessage(
    ActionSchema,
    create(ActionSchema, {
      commandDigest: toPb(command.digest),
      inputRootDigest: toPb(spec.inputRoot),
      platform: platformInCommand ? undefined : platform,
    }),
  );
  uploads.set(digestKey(command.digest), { digest: command.digest, bytes: command.bytes });
  uploads.set(digestKey(action.digest), { digest: action.digest, bytes: action.bytes });
  return action.digest;
}

export interface RunOutcome {
  outcome: 'hit' | 'miss';
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export interface RunOptions {
  /** The command's directory: outputs are written relative to it. */
  cwd: string;
  /** The outputs the action declared (only these are written). */
  outputs: readonly string[];
  /** The client went away: stop, and write nothing into its tree. */
  signal?: AbortSignal;
  /** Told when each step ends ("lookup", "upload", "execute", "outputs", ...). */
  phase?: (name: string) => void;
  /**
   * On a miss, runs the command here instead of remotely (cache-only mode)
   * and returns its result, its outputs already in place.
   */
  runHere?: () => Promise<ActionResult>;
}

/**
 * Answers the action from the cache, else executes it remotely (or runs it
 * here, with `runHere`). Infrastructure errors throw; the caller falls back.
 */
export async function runAction(
  ep: RemoteEndpoint,
  action: Digest,
  uploads: Uploads,
  opts: RunOptions,
): Promise<RunOutcome> {
  const phase = opts.phase ?? ((): void => undefined);
  const signal = opts.signal;
  // Hits are the common case and must stay cheapest: what the server lacks
  // is asked only after a miss (asking alongside the lookup saved a round
  // trip on misses but slowed every hit's lookup by a few milliseconds).
  let result = await ep.actionCache.getActionResult(action, { signal });
  phase('lookup');
  const outcome = result === undefined ? 'miss' : 'hit';
  let written = false;
  if (result === undefined && opts.runHere !== undefined) {
    result = await opts.runHere();
    written = true;
    phase('local-run');
  } else if (result === undefined) {
    if (!ep.canExecute)
      throw new SpecbuildError(
        'remote/unsupported',
        `${ep.connection.target.text} does not execute actions`,
      );
    await uploadMissing(ep.cas, uploads, { signal });
    phase('upload');
    const res = await ep.execution.execute(action, { signal });
    phase('execute');
    if (res.status !== undefined && res.status.code !== 0)
      throw new SpecbuildError('remote/protocol', `remote execution failed: ${res.status.message}`);
    result = res.result;
    if (result === undefined)
      throw new SpecbuildError('remote/protocol', 'ExecuteResponse without a result');
  }
  signal?.throwIfAborted(); // nobody waits for these outputs any more
  if (!written) await writeOutputs(ep.cas, result, opts.cwd, opts.outputs);
  const blob = async (d: ActionResult['stdoutDigest'], raw: Uint8Array): Promise<Uint8Array> =>
    raw.byteLength > 0 || d === undefined ? raw : ep.cas.readBlob(fromPb(d), { signal });
  const stdout = await blob(result.stdoutDigest, result.stdoutRaw);
  const stderr = await blob(result.stderrDigest, result.stderrRaw);
  phase('outputs');
  return { outcome, exitCode: result.exitCode, stdout, stderr };
}
