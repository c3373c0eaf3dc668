// What specbuild-cc and specbuild-exec share once each has its action: the
// Command and Action in the shape the server's REAPI version wants, and one
// run through the action cache or remote execution, with the outputs written
// into place and stdout/stderr fetched.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SpecbuildError, type EventSink } from '../core/index.js';
import { uploadMissing, type Uploads } from '../cas/index.js';
import {
  digestKey,
  encodeAction,
  fromPb,
  type ActionResult,
  type ActionSpec,
  type Digest,
} from '../reapi/index.js';
import type { RemoteEndpoint } from '../remote/index.js';
import { PhaseClock, type WrapEvent } from './outcome.js';
import { storeCas } from './objects-dir-cas.js';
import { localBlobPath, writeOutputs } from './outputs.js';

/**
 * Encodes the Action and Command for a server speaking up to `apiHigh`,
 * adds both to `uploads`, and returns the action digest.
 */
export function addAction(spec: ActionSpec, apiHigh: string, uploads: Uploads): Digest {
  const { action, command } = encodeAction(spec, apiHigh);
  uploads.set(digestKey(command.digest), command);
  uploads.set(digestKey(action.digest), action);
  return action.digest;
}

export interface RunOutcome {
  outcome: 'hit' | 'miss';
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** The result the outputs came from. */
  result: ActionResult;
  /** True when that was `known` (the action cache was not asked). */
  remembered: boolean;
}

export interface RunOptions {
  /** The command's directory: outputs are written relative to it. */
  cwd: string;
  /** The outputs the action declared (only these are written). */
  outputs: readonly string[];
  /** The command's umask: outputs written get the modes the command would have given them (default 022). */
  umask?: number;
  /** The client went away: stop, and write nothing into its tree. */
  signal?: AbortSignal;
  /** Times the phases (lookup, upload, execute, outputs, ...) as events. */
  clock?: PhaseClock;
  /** Where the phase events go when no clock is given. */
  events?: EventSink<WrapEvent>;
  /**
   * On a miss, runs the command here instead of remotely (cache-only mode)
   * and returns its result, its outputs already in place.
   */
  runHere?: () => Promise<ActionResult>;
  /**
   * A result already known for this action (direct mode's memory). Used
   * without asking the action cache when the server is on this machine and
   * its blob directory holds every blob of it: the outputs are then copied
   * from there, the same bytes a lookup would have named.
   */
  known?: ActionResult;
}

/** Whether every blob of `result` is in the blob directory `objects`, with its size. */
function allLocal(objects: string, result: ActionResult): boolean {
  const digests = [
    ...result.outputFiles.map((f) => f.digest),
    result.stdoutDigest,
    result.stderrDigest,
  ];
  for (const pb of digests) {
    if (pb === undefined) continue;
    const d = fromPb(pb);
    if (d.size === 0) continue;
    const st = statSync(localBlobPath(objects, d), { throwIfNoEntry: false });
    if (st?.isFile() !== true || st.size !== d.size) return false;
  }
  return true;
}

/** A blob of the result from the blob directory `objects`. */
async function localBlob(objects: string, d: Digest): Promise<Uint8Array> {
  const data = await readFile(localBlobPath(objects, d));
  if (data.byteLength !== d.size)
    throw new SpecbuildError('remote/protocol', `blob ${d.hash} changed size in ${objects}`);
  return data;
}

/**
 * Answers the action from the cache, else executes it remotely (or runs it
 * here, with `runHere`). Infrastructure errors throw; the caller falls back.
 */
export async function runAction(
  ep: RemoteEndpoint,
  action: Digest,
  /** The action's blobs, or how to get them: only a miss sent to the server needs them. */
  uploads: Uploads | (() => Uploads),
  opts: RunOptions,
): Promise<RunOutcome> {
  const clock = opts.clock ?? new PhaseClock(opts.events);
  const signal = opts.signal;
  // Hits are the common case and must stay cheapest: what the server lacks
  // is asked only after a miss (asking alongside the lookup saved a round
  // trip on misses but slowed every hit's lookup by a few milliseconds).
  const objects = ep.localObjects;
  if (opts.known !== undefined && objects !== undefined && allLocal(objects, opts.known)) {
    const known = opts.known;
    await writeOutputs(ep.cas, known, opts.cwd, opts.outputs, objects, opts.umask);
    const blob = async (pb: ActionResult['stdoutDigest'], raw: Uint8Array): Promise<Uint8Array> => {
      const d = pb === undefined ? undefined : fromPb(pb);
      return raw.byteLength > 0 || d === undefined || d.size === 0 ? raw : localBlob(objects, d);
    };
    const stdout = await blob(known.stdoutDigest, known.stdoutRaw);
    const stderr = await blob(known.stderrDigest, known.stderrRaw);
    clock.end('remembered');
    return {
      outcome: 'hit',
      exitCode: known.exitCode,
      stdout,
      stderr,
      result: known,
      remembered: true,
    };
  }
  let result = await ep.actionCache.getActionResult(action, { signal });
  clock.end('lookup');
  const outcome = result === undefined ? 'miss' : 'hit';
  let written = false;
  if (result === undefined && opts.runHere !== undefined) {
    result = await opts.runHere();
    written = true;
    clock.end('local-run');
  } else if (result === undefined) {
    if (!ep.canExecute)
      throw new SpecbuildError(
        'remote/unsupported',
        `${ep.connection.target.text} does not execute actions`,
      );
    await uploadMissing(storeCas(ep), typeof uploads === 'function' ? uploads() : uploads, {
      signal,
    });
    clock.end('upload');
    const ran = await ep.executor.execute(action, { signal, cacheChecked: true });
    clock.end('execute');
    // A timed-out run is the infrastructure's failure here: the command runs locally.
    if (ran.error !== undefined) throw ran.error;
    result = ran.result;
  }
  signal?.throwIfAborted(); // nobody waits for these outputs any more
  if (!written)
    await writeOutputs(ep.cas, result, opts.cwd, opts.outputs, ep.localObjects, opts.umask);
  const blob = async (d: ActionResult['stdoutDigest'], raw: Uint8Array): Promise<Uint8Array> =>
    raw.byteLength > 0 || d === undefined ? raw : ep.cas.readBlob(fromPb(d), { signal });
  const stdout = await blob(result.stdoutDigest, result.stdoutRaw);
  const stderr = await blob(result.stderrDigest, result.stderrRaw);
  clock.end('outputs');
  return { outcome, exitCode: result.exitCode, stdout, stderr, result, remembered: false };
}
