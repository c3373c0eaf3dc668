// The Executor interface over a remote Execution service: what comes back
// (ExecuteResponse, its status and PreconditionFailure) is turned into the
// same outcomes and errors the local executor gives.
import { status as Status } from '@grpc/grpc-js';
import { SpecbuildError } from '../core/index.js';
import {
  fetchTree,
  filesOf,
  readBlobIfPresent,
  MissingBlobsError,
  type ActionCache,
  type Cas,
  type ExecuteOptions,
  type ExecuteOutcome,
  type Executor,
} from '../cas/index.js';
import {
  ActionSchema,
  fromPb,
  parseDigestString,
  type Digest,
  type ExecuteResponse,
} from '../reapi/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import { RemoteCallError } from './connection.js';
import { missingBlobs, type RemoteExecution } from './remote-execution.js';

export class RemoteExecutor implements Executor {
  constructor(
    private readonly execution: RemoteExecution,
    private readonly cas: Cas,
    private readonly actionCache: ActionCache,
    /** The server, for messages. */
    private readonly target: string,
  ) {}

  async execute(action: Digest, opts: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    // Servers SHOULD look the action up before running it, but some (Bazel's
    // worker) never do: ask the action cache first, as Bazel's client does,
    // so that every server gives the same outcome.
    if (opts.skipCacheLookup !== true && opts.cacheChecked !== true) {
      opts.events?.({ type: 'execution', action, stage: 'cache-check' });
      const hit = await this.actionCache.getActionResult(action, { signal: opts.signal });
      if (hit !== undefined) {
        opts.events?.({ type: 'execution', action, stage: 'completed' });
        return { result: hit, cached: true };
      }
    }
    const res = await this.execution.execute(action, {
      signal: opts.signal,
      skipCacheLookup: opts.skipCacheLookup,
      events: opts.events,
    });
    if (res.status?.code === Status.NOT_FOUND) {
      // REAPI says FAILED_PRECONDITION naming each missing blob; some servers
      // (Bazel's worker) answer NOT_FOUND with a message instead. Find them.
      const missing = await this.missingBlobsOf(action, opts.signal);
      if (missing.length > 0) throw new MissingBlobsError(missing);
    }
    return outcomeOf(res, this.target);
  }

  /** Every blob of the action (itself, command, tree, files) the server's CAS lacks. */
  private async missingBlobsOf(action: Digest, signal?: AbortSignal): Promise<Digest[]> {
    const bytes = await readBlobIfPresent(this.cas, action, { signal });
    if (bytes === undefined) return [action];
    const parsed = fromBinary(ActionSchema, bytes);
    const command = fromPb(parsed.commandDigest, 'Action.command_digest');
    const root = fromPb(parsed.inputRootDigest, 'Action.input_root_digest');
    const tree = await fetchTree(this.cas, root, { signal });
    const files = filesOf(tree.directories.values());
    const rest = await this.cas.findMissingBlobs([command, ...files], { signal });
    return [...tree.missing, ...rest];
  }
}

/**
 * An ExecuteResponse as an outcome: a result (possibly of a timed-out run),
 * or the error the status says. Missing blobs are named by digest, as the
 * local executor names them.
 */
export function outcomeOf(res: ExecuteResponse, target: string): ExecuteOutcome {
  const code: Status = res.status?.code ?? Status.OK;
  const message = res.status?.message ?? '';
  if (code === Status.OK) {
    if (res.result === undefined)
      throw new SpecbuildError('remote/protocol', `${target}: ExecuteResponse without a result`);
    return { result: res.result, cached: res.cachedResult };
  }
  if (code === Status.DEADLINE_EXCEEDED && res.result !== undefined) {
    return {
      result: res.result,
      cached: false,
      error: new SpecbuildError('exec/timeout', `${target}: ${message || 'the action timed out'}`),
    };
  }
  const missing = missingBlobs(res.status);
  if (code === Status.FAILED_PRECONDITION && missing.length > 0) {
    const digests: Digest[] = missing.map((subject) => {
      if (!subject.startsWith('blobs/'))
        throw new SpecbuildError(
          'remote/protocol',
          `${target}: missing-blob subject "${subject.slice(0, 120)}" is not blobs/HASH/SIZE`,
        );
      return parseDigestString(subject.slice(6), `${target}: missing blob`);
    });
    throw new MissingBlobsError(digests);
  }
  throw new RemoteCallError(code, `execution failed: ${message}`, undefined, target, false);
}
