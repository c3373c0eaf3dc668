// Artifact remotes over one build: the pull and push queues. Before an
// element builds, its artifact is pulled by strong key from the first remote
// that has it whole; when none has it and priming is on, the record stored
// under its weak key is pulled with its SpeculativeActions and the priming
// data (named under the weak key only: a partial artifact is never a hit).
// After an element is built and its speculative actions generated, the
// artifact and its priming data are pushed to every writable remote in the
// background, retried with backoff. A remote that cannot be reached is
// reported once and left out for the rest of the run; wrong credentials are
// an error naming the remote, before anything builds. Nothing here fails a
// build.
import { isSpecbuildError, SpecbuildError, type EventSink } from '../core/index.js';
import {
  artifactRef,
  artifactUrn,
  copyBlobs,
  copyResult,
  pullArtifact,
  pushArtifact,
  type ActionCache,
  type Artifact,
  type ArtifactCache,
  type CallOptions,
  type ExecuteOptions,
  type ExecuteOutcome,
  type Executor,
} from '../cas/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import { backoffMs, sleep, type RemoteEndpoint } from '../remote/index.js';
import { normalName, type ElementName } from '../project/index.js';
import { fromPb, specbuildPb, type ActionResult, type Digest } from '../reapi/index.js';
import type { ShareEvent } from './events.js';
import { primingBlobs, primingData, pullPrimingData } from './share.js';

/** Largest artifact record a remote may name (ours are a few KB). */
const MAX_RECORD_BYTES = 16 << 20;
/** Largest SpeculativeActions blob pulled (a 1,000-action element's is ~40 MB). */
const MAX_SPECULATIVE_BYTES = 512 << 20;

export interface ShareRemote {
  /** Its URL, as configured (for messages). */
  url: string;
  /** False: only pulled from. */
  push: boolean;
  connect(): Promise<RemoteEndpoint>;
  /**
   * Priming pulls fetch action results and the input files no overlay
   * replaces (default): primed actions run here, or on a cluster whose
   * storage is not this remote. False when the cluster's storage is it.
   */
  filesNeeded?: boolean;
}

export interface RemoteShareOptions {
  remotes: readonly ShareRemote[];
  project: string;
  /** The local artifact cache and action cache. */
  artifacts: ArtifactCache;
  ac: ActionCache;
  /** Pull weak-key records and priming data when the strong key misses. */
  priming: boolean;
  /** The run's: pushes stop when it is aborted. */
  signal?: AbortSignal;
  /** Push attempts in all, and the first backoff (doubling). */
  pushAttempts?: number;
  pushBackoffMs?: number;
  events?: EventSink<ShareEvent>;
}

interface Live {
  remote: ShareRemote;
  endpoint: RemoteEndpoint | undefined;
  /** Left out for the rest of the run (unreachable). */
  down: boolean;
  /** Pushes to this remote, one after another. */
  pushes: Promise<void>;
}

/** Errors that say the remote is not there (rather than that one thing is wrong). */
function unreachable(e: unknown): boolean {
  return (
    isSpecbuildError(e, 'remote/unavailable') ||
    isSpecbuildError(e, 'remote/deadline') ||
    (isSpecbuildError(e) && e.temporary)
  );
}

function reasonOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Why a remote is unreachable, without gRPC's wording around it. */
export function unreachableReason(e: unknown): string {
  const m = reasonOf(e);
  if (m.includes('ECONNREFUSED')) return 'connection refused';
  if (m.includes('ENOTFOUND') || m.includes('EAI_AGAIN')) return 'no such host';
  if (m.includes('ETIMEDOUT') || isSpecbuildError(e, 'remote/deadline')) return 'timed out';
  return m.replace(/\s*Resolution note:\s*$/, '');
}

export class RemoteShare {
  private readonly live: Live[];
  private closed = false;

  constructor(private readonly opts: RemoteShareOptions) {
    this.live = opts.remotes.map((remote) => ({
      remote,
      endpoint: undefined,
      down: false,
      pushes: Promise.resolve(),
    }));
  }

  private emit(e: Omit<ShareEvent, 'type'>): void {
    this.opts.events?.({ type: 'share', ...e });
  }

  /**
   * Connects to every remote. One that cannot be reached is reported and
   * left out; one that refuses the credentials is an error naming it.
   */
  async open(): Promise<void> {
    await Promise.all(
      this.live.map(async (l) => {
        try {
          l.endpoint = await l.remote.connect();
        } catch (e) {
          if (isSpecbuildError(e, 'remote/permission'))
            throw new SpecbuildError(
              'remote/permission',
              `artifact remote ${l.remote.url} refused the credentials: ${reasonOf(e).replace(/^\S+: /, '')}`,
              {
                hint: 'check auth.access-token (or the client certificate) of this server in the configuration',
                cause: e,
              },
            );
          if (isSpecbuildError(e, 'remote/tls') || isSpecbuildError(e, 'load/missing-file'))
            throw new SpecbuildError(e.code, `artifact remote ${l.remote.url}: ${reasonOf(e)}`, {
              hint: e.hint,
              cause: e,
            });
          // Anything else it answers (no SHA-256, an error): one warning, then without it.
          this.markDown(l, e, 'connect');
        }
      }),
    );
  }

  private markDown(l: Live, e: unknown, op: ShareEvent['op'], element?: string): void {
    if (l.down) return;
    l.down = true;
    this.emit({
      remote: l.remote.url,
      op,
      outcome: 'unreachable',
      element,
      reason: unreachableReason(e),
    });
  }

  private usable(): (Live & { endpoint: RemoteEndpoint })[] {
    return this.live.filter(
      (l): l is Live & { endpoint: RemoteEndpoint } => !l.down && l.endpoint !== undefined,
    );
  }

  /** The artifact of `strongKey` from the first remote that has it whole (stored locally), or undefined. */
  async pull(
    element: ElementName,
    strongKey: string,
    signal?: AbortSignal,
  ): Promise<Artifact | undefined> {
    const normal = normalName(element);
    for (const l of this.usable()) {
      try {
        const out = await pullArtifact(
          {
            local: this.opts.artifacts,
            remote: l.endpoint.cas,
            assets: l.endpoint.assets,
            project: this.opts.project,
            element: normal,
            key: strongKey,
          },
          { signal },
        );
        if (out.pulled) {
          this.emit({
            remote: l.remote.url,
            op: 'pull',
            outcome: 'pulled',
            element,
            blobs: out.stats.copied,
            bytes: out.stats.bytes,
          });
          return out.artifact;
        }
        this.emit({ remote: l.remote.url, op: 'pull', outcome: 'miss', element, reason: out.why });
      } catch (e) {
        // Stopped (Ctrl-C): a miss; the scheduler skips the element.
        if (signal?.aborted === true) return undefined;
        if (unreachable(e)) this.markDown(l, e, 'pull', element);
        else
          this.emit({
            remote: l.remote.url,
            op: 'pull',
            outcome: 'failed',
            element,
            reason: reasonOf(e),
          });
      }
    }
    return undefined;
  }

  /**
   * When no record is stored locally under `weakKey`, pulls the first one a
   * remote has with its SpeculativeActions and priming data, and names it
   * locally under the weak key only. True when one was pulled.
   */
  async pullPriming(element: ElementName, weakKey: string, signal?: AbortSignal): Promise<boolean> {
    if (!this.opts.priming) return false;
    const local = this.opts.artifacts;
    const normal = normalName(element);
    if ((await local.lookupRecord(this.opts.project, normal, weakKey)) !== undefined) return false;
    for (const l of this.usable()) {
      const urn = artifactUrn(this.opts.project, normal, weakKey);
      try {
        const found = await l.endpoint.assets.fetchBlob({ uris: [urn] }, { signal });
        if (found !== undefined && found.digest.size > MAX_RECORD_BYTES)
          throw new SpecbuildError(
            'remote/protocol',
            `the record named ${urn} claims ${found.digest.size} bytes (at most ${MAX_RECORD_BYTES})`,
          );
        if (found === undefined) {
          this.emit({
            remote: l.remote.url,
            op: 'pull-priming',
            outcome: 'miss',
            element,
            reason: 'the remote does not know the weak key',
          });
          continue;
        }
        const copied = await copyBlobs(l.endpoint.cas, local.cas, [found.digest], { signal });
        let art: Artifact;
        try {
          art = fromBinary(specbuildPb.ArtifactSchema, await local.cas.readBlob(found.digest));
        } catch (e) {
          throw new SpecbuildError('remote/protocol', `the record named ${urn} does not parse`, {
            cause: e,
          });
        }
        if (art.weakKey !== weakKey)
          throw new SpecbuildError(
            'remote/protocol',
            `the record named ${urn} is of weak key ${art.weakKey}, not ${weakKey}`,
          );
        if (art.speculativeActions === undefined) {
          this.emit({
            remote: l.remote.url,
            op: 'pull-priming',
            outcome: 'miss',
            element,
            reason: 'no speculative actions are stored with it',
          });
          continue;
        }
        const sa = fromPb(art.speculativeActions);
        if (sa.size > MAX_SPECULATIVE_BYTES)
          throw new SpecbuildError(
            'remote/protocol',
            `the speculative actions of ${urn} claim ${sa.size} bytes (at most ${MAX_SPECULATIVE_BYTES})`,
          );
        const saCopy = await copyBlobs(l.endpoint.cas, local.cas, [sa], { signal });
        const stats = await pullPrimingData({
          remote: l.endpoint.cas,
          remoteAc: l.endpoint.actionCache,
          local: local.cas,
          localAc: this.opts.ac,
          sa,
          localExecution: l.remote.filesNeeded ?? true,
          signal,
        });
        await local.storeWeak(this.opts.project, normal, art);
        this.emit({
          remote: l.remote.url,
          op: 'pull-priming',
          outcome: 'pulled',
          element,
          blobs: stats.copied + copied.copied + saCopy.copied,
          bytes: stats.bytes + copied.bytes + saCopy.bytes,
          results: stats.results,
        });
        return true;
      } catch (e) {
        if (signal?.aborted === true) return false;
        if (unreachable(e)) {
          this.markDown(l, e, 'pull-priming', element);
          continue;
        }
        const partlyGone =
          isSpecbuildError(e, 'cas/not-found') || isSpecbuildError(e, 'remote/not-found');
        this.emit({
          remote: l.remote.url,
          op: 'pull-priming',
          outcome: partlyGone ? 'miss' : 'failed',
          element,
          reason: partlyGone ? `its priming data is partly gone (${reasonOf(e)})` : reasonOf(e),
        });
      }
    }
    return false;
  }

  /**
   * Queues a push of the element's artifact (as stored locally under its
   * strong key) and its priming data to every writable remote. `flush`
   * waits for them.
   */
  push(element: ElementName, artifact: Artifact): void {
    for (const l of this.live) {
      if (!l.remote.push) continue;
      l.pushes = l.pushes.then(() => this.pushOne(l, element, artifact));
    }
  }

  /**
   * Queues, for each writable remote that does not know the artifact's
   * strong key, a push of it (an element cached here but never pushed, or
   * whose push failed in an earlier run).
   */
  pushIfMissing(element: ElementName, artifact: Artifact): void {
    const urn = artifactUrn(this.opts.project, normalName(element), artifact.strongKey);
    for (const l of this.live) {
      if (!l.remote.push) continue;
      l.pushes = l.pushes.then(async () => {
        if (l.down || l.endpoint === undefined || this.closed) return;
        try {
          if ((await l.endpoint.assets.fetchBlob({ uris: [urn] })) !== undefined) return;
        } catch (e) {
          if (unreachable(e)) this.markDown(l, e, 'push', element);
          else
            this.emit({
              remote: l.remote.url,
              op: 'push',
              outcome: 'failed',
              element,
              reason: reasonOf(e),
            });
          return;
        }
        await this.pushOne(l, element, artifact);
      });
    }
  }

  private async pushOne(l: Live, element: ElementName, artifact: Artifact): Promise<void> {
    const attempts = this.opts.pushAttempts ?? 4;
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (l.down || l.endpoint === undefined || this.closed || this.opts.signal?.aborted === true)
        return;
      try {
        const stats = await this.pushNow(l.endpoint, element, artifact);
        this.emit({
          remote: l.remote.url,
          op: 'push',
          outcome: 'pushed',
          element,
          blobs: stats.copied,
          bytes: stats.bytes,
          results: stats.results,
        });
        return;
      } catch (e) {
        last = e;
        if (isSpecbuildError(e, 'remote/permission')) break;
        if (attempt < attempts) {
          this.emit({
            remote: l.remote.url,
            op: 'push',
            outcome: 'retrying',
            element,
            reason: reasonOf(e),
          });
          await sleep(
            backoffMs(
              { attempts, baseDelayMs: this.opts.pushBackoffMs ?? 500, maxDelayMs: 8000 },
              attempt,
            ),
            this.opts.signal,
          ).catch(() => undefined);
        }
      }
    }
    this.emit({
      remote: l.remote.url,
      op: 'push',
      outcome: 'failed',
      element,
      reason: reasonOf(last),
    });
    if (unreachable(last)) this.markDown(l, last, 'push', element);
  }

  private async pushNow(
    ep: RemoteEndpoint,
    element: ElementName,
    artifact: Artifact,
  ): Promise<{ copied: number; bytes: number; results: number }> {
    const local = this.opts.artifacts;
    const normal = normalName(element);
    const record = await local.refs.get(artifactRef(this.opts.project, normal, artifact.strongKey));
    if (record === undefined)
      throw new SpecbuildError(
        'cas/not-found',
        `${element} has no artifact under ${artifact.strongKey}`,
      );
    const sa = artifact.speculativeActions;
    const priming =
      sa === undefined ? undefined : await primingData(local.cas, this.opts.ac, fromPb(sa));
    // Priming data and results first: once the names are there, another
    // machine may pull by them.
    const before =
      priming === undefined
        ? { copied: 0, bytes: 0 }
        : await copyBlobs(local.cas, ep.cas, primingBlobs(priming), { signal: this.opts.signal });
    for (const { action, result } of priming?.results ?? [])
      await ep.actionCache.updateActionResult(action, result, { signal: this.opts.signal });
    const stats = await pushArtifact(
      {
        local: local.cas,
        remote: ep.cas,
        assets: ep.assets,
        project: this.opts.project,
        element: normal,
        record,
        artifact,
      },
      { signal: this.opts.signal },
    );
    return {
      copied: stats.copied + before.copied,
      bytes: stats.bytes + before.bytes,
      results: priming?.results.length ?? 0,
    };
  }

  /**
   * A result from the first remote action cache that has it, with its
   * blobs fetched here and the entry written to the local action cache; a
   * result whose blobs are gone from the remote is a miss.
   */
  async remoteResult(action: Digest, opts: CallOptions = {}): Promise<ActionResult | undefined> {
    for (const l of this.usable()) {
      try {
        const result = await l.endpoint.actionCache.getActionResult(action, opts);
        if (result === undefined) continue;
        await copyResult(l.endpoint.cas, this.opts.artifacts.cas, result, opts);
        await this.opts.ac.updateActionResult(action, result, opts);
        return result;
      } catch (e) {
        if (opts.signal?.aborted === true) throw e;
        if (unreachable(e)) this.markDown(l, e, 'pull');
        // Anything else (blobs gone from the remote): a miss there.
      }
    }
    return undefined;
  }

  /** The local action cache, falling back to the remotes' (results fetched here). */
  actionCache(local: ActionCache): ActionCache {
    return {
      getActionResult: async (d, opts) =>
        (await local.getActionResult(d, opts)) ?? (await this.remoteResult(d, opts)),
      updateActionResult: (d, r, opts) => local.updateActionResult(d, r, opts),
    };
  }

  /** `inner`, asking `ac` (local, then the remotes) before running an action. */
  executor(inner: Executor, ac: ActionCache): Executor {
    return {
      apiHigh: inner.apiHigh,
      execute: async (d: Digest, o: ExecuteOptions = {}): Promise<ExecuteOutcome> => {
        if (o.skipCacheLookup !== true && o.cacheChecked !== true) {
          const hit = await ac.getActionResult(d, { signal: o.signal });
          if (hit !== undefined) return { result: hit, cached: true };
        }
        return inner.execute(d, { ...o, cacheChecked: true });
      },
    };
  }

  /** Waits for every queued push (each ends pushed or reported failed). */
  async flush(): Promise<void> {
    await Promise.all(this.live.map((l) => l.pushes));
  }

  close(): void {
    this.closed = true;
    for (const l of this.live) l.endpoint?.close();
  }
}
