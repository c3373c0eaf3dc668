// Actions of this machine run on a remote execution cluster: the Executor
// the per-build sessions and priming use when `remote-execution` is set. An
// action is looked up in the cluster's action cache first; on a miss its
// blobs (Action, Command, input Directories and files, read from the local
// CAS) are uploaded once (FindMissingBlobs, then batches), it is executed
// there, and its result's blobs are fetched into the local CAS and the
// result written to the local action cache, so that the build's wrapper
// downloads outputs from its session as it would after a local run. A
// cluster that cannot be reached is reported once and the local executor
// takes over for the rest of the run.
import {
  copyBlobs,
  copyResult,
  fetchTree,
  filesOf,
  MissingBlobsError,
  type ActionCache,
  type Cas,
  type ExecuteOptions,
  type ExecuteOutcome,
  type Executor,
} from '../cas/index.js';
import { isSpecbuildError } from '../core/index.js';
import {
  ActionSchema,
  chrootOf,
  CommandSchema,
  digestKey,
  fromPb,
  parseDigestString,
  type Digest,
} from '../reapi/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import type { RemoteEndpoint } from './endpoint.js';
import { RemoteExecutor } from './remote-executor.js';

export interface ClusterExecutorOptions {
  /** Where actions' blobs are read from and results are kept: this machine's stores. */
  local: Cas;
  localAc: ActionCache;
  /** The execution service. */
  execution: RemoteEndpoint;
  /** Its storage (CAS) and action cache; default the execution endpoint's. */
  storage?: RemoteEndpoint;
  actionCache?: RemoteEndpoint;
  /** Runs actions when the cluster is gone (the local executor). */
  fallback?: Executor;
  /** Told once, when the cluster cannot be reached and the fallback takes over. */
  onDown?: (error: unknown) => void;
}

/** Blobs known to be in the cluster's CAS: not asked about again. */
const KNOWN_LIMIT = 1_000_000;

export class ClusterExecutor implements Executor {
  private readonly remote: RemoteExecutor;
  private readonly storage: Cas;
  private readonly ac: ActionCache;
  private readonly known = new Set<string>();
  private down = false;
  /** Actions executed on the cluster, and answered from its action cache (for reports and tests). */
  readonly counts = { executed: 0, cached: 0, fallback: 0 };

  constructor(private readonly opts: ClusterExecutorOptions) {
    const storage = opts.storage ?? opts.execution;
    const acEndpoint = opts.actionCache ?? storage;
    this.storage = storage.cas;
    this.ac = acEndpoint.actionCache;
    this.remote = new RemoteExecutor(
      opts.execution.execution,
      storage.cas,
      acEndpoint.actionCache,
      opts.execution.connection.target.text,
    );
  }

  /** The execution service's highest REAPI version: builds shape their actions for it. */
  get apiHigh(): string {
    return this.opts.execution.apiVersion.high;
  }

  async execute(action: Digest, opts: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    if (this.down && this.opts.fallback !== undefined) return this.fallback(action, opts);
    try {
      return await this.onCluster(action, opts);
    } catch (e) {
      if (opts.signal?.aborted === true || this.opts.fallback === undefined) throw e;
      if (!isSpecbuildError(e, 'remote/unavailable') && !isSpecbuildError(e, 'remote/deadline'))
        throw e;
      if (!this.down) {
        this.down = true;
        this.opts.onDown?.(e);
      }
      return this.fallback(action, opts);
    }
  }

  private fallback(action: Digest, opts: ExecuteOptions): Promise<ExecuteOutcome> {
    this.counts.fallback++;
    if (this.opts.fallback === undefined) throw new Error('bug: no fallback executor');
    return this.opts.fallback.execute(action, opts);
  }

  private async onCluster(action: Digest, opts: ExecuteOptions): Promise<ExecuteOutcome> {
    const call = { signal: opts.signal };
    if (opts.skipCacheLookup !== true && opts.cacheChecked !== true) {
      opts.events?.({ type: 'execution', action, stage: 'cache-check' });
      const hit = await this.ac.getActionResult(action, call);
      // A result whose outputs the cluster has evicted is a miss: run it again.
      if (hit !== undefined && (await this.fetched(hit, call))) {
        await this.keepLocally(action, hit.exitCode, hit);
        this.counts.cached++;
        opts.events?.({ type: 'execution', action, stage: 'completed' });
        return { result: hit, cached: true };
      }
    }
    await this.upload(await this.blobsOf(action, opts.signal), opts.signal);
    let out: ExecuteOutcome;
    try {
      out = await this.remote.execute(action, { ...opts, cacheChecked: true });
    } catch (e) {
      // Evicted between the upload and the execution: send them again, once.
      if (!(e instanceof MissingBlobsError)) throw e;
      for (const d of e.digests) this.known.delete(digestKey(d));
      await this.upload(e.digests, opts.signal);
      out = await this.remote.execute(action, { ...opts, cacheChecked: true });
    }
    if (!(await this.fetched(out.result, call))) {
      // Evicted as soon as they were made: once more, without the cache.
      out = await this.remote.execute(action, {
        ...opts,
        cacheChecked: true,
        skipCacheLookup: true,
      });
      await copyResult(this.storage, this.opts.local, out.result, call);
    }
    if (out.error === undefined) await this.keepLocally(action, out.result.exitCode, out.result);
    if (out.cached) this.counts.cached++;
    else this.counts.executed++;
    return out;
  }

  /** Copies a result's blobs here; false when the cluster no longer has them all. */
  private async fetched(
    result: ExecuteOutcome['result'],
    call: { signal?: AbortSignal },
  ): Promise<boolean> {
    try {
      await copyResult(this.storage, this.opts.local, result, call);
      return true;
    } catch (e) {
      if (isSpecbuildError(e, 'cas/not-found') || isSpecbuildError(e, 'remote/not-found'))
        return false;
      throw e;
    }
  }

  private async keepLocally(
    action: Digest,
    exitCode: number,
    result: ExecuteOutcome['result'],
  ): Promise<void> {
    if (exitCode === 0) await this.opts.localAc.updateActionResult(action, result);
  }

  /** The Action, its Command, its input Directories and files, and its chrootRootDigest tree's. */
  private async blobsOf(action: Digest, signal?: AbortSignal): Promise<Digest[]> {
    const parsed = fromBinary(ActionSchema, await this.opts.local.readBlob(action, { signal }));
    const command = fromPb(parsed.commandDigest, 'Action.command_digest');
    // REAPI < 2.2 puts the platform in the Command.
    const platform =
      parsed.platform ??
      // eslint-disable-next-line @typescript-eslint/no-deprecated -- Command.platform (REAPI < 2.2)
      fromBinary(CommandSchema, await this.opts.local.readBlob(command, { signal })).platform;
    const roots = [fromPb(parsed.inputRootDigest, 'Action.input_root_digest')];
    const chroot = chrootOf(platform);
    if (chroot !== undefined) roots.push(chroot);
    const out: Digest[] = [action, command];
    for (const root of roots) {
      const tree = await fetchTree(this.opts.local, root, { signal });
      out.push(...[...tree.directories.keys()].map((k) => parseDigestString(k, 'tree')));
      out.push(...filesOf(tree.directories.values()));
    }
    return out;
  }

  /** Sends what the cluster's CAS lacks among `digests` (each asked about once per run). */
  private async upload(digests: readonly Digest[], signal?: AbortSignal): Promise<void> {
    const unknown = digests.filter((d) => !this.known.has(digestKey(d)));
    if (unknown.length === 0) return;
    await copyBlobs(this.opts.local, this.storage, unknown, { signal });
    if (this.known.size > KNOWN_LIMIT) this.known.clear();
    for (const d of unknown) this.known.add(digestKey(d));
  }
}
