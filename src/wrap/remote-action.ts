// What specbuild-cc and specbuild-exec share once each has its action: the
// Command and Action in the shape the server's REAPI version wants, and one
// run through the action cache or remote execution, with the outputs written
// into place and stdout/stderr fetched.
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
import { writeOutputs } from './outputs.js';

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
}

export interface RunOptions {
  /** The command's directory: outputs are written relative to it. */
  cwd: string;
  /** The outputs the action declared (only these are written). */
  outputs: readonly string[];
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
  const clock = opts.clock ?? new PhaseClock(opts.events);
  const signal = opts.signal;
  // Hits are the common case and must stay cheapest: what the server lacks
  // is asked only after a miss (asking alongside the lookup saved a round
  // trip on misses but slowed every hit's lookup by a few milliseconds).
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
    await uploadMissing(ep.cas, uploads, { signal });
    clock.end('upload');
    const ran = await ep.executor.execute(action, { signal, cacheChecked: true });
    clock.end('execute');
    // A timed-out run is the infrastructure's failure here: the command runs locally.
    if (ran.error !== undefined) throw ran.error;
    result = ran.result;
  }
  signal?.throwIfAborted(); // nobody waits for these outputs any more
  if (!written) await writeOutputs(ep.cas, result, opts.cwd, opts.outputs, ep.localObjects);
  const blob = async (d: ActionResult['stdoutDigest'], raw: Uint8Array): Promise<Uint8Array> =>
    raw.byteLength > 0 || d === undefined ? raw : ep.cas.readBlob(fromPb(d), { signal });
  const stdout = await blob(result.stdoutDigest, result.stdoutRaw);
  const stderr = await blob(result.stderrDigest, result.stderrRaw);
  clock.end('outputs');
  return { outcome, exitCode: result.exitCode, stdout, stderr };
}
