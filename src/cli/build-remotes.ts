// The remotes of one `specbuild build`: artifact remotes (pull and push
// queues, action results) and, with `remote-execution` set, the cluster
// that element subactions and primed actions run on. Put between the
// builds and the local action cache and executor (an ActionLayer). A
// remote that cannot be reached is one warning and the build goes on
// locally; refused credentials are an error naming it.
import type { EventSink } from '../core/index.js';
import { SpecbuildError, isSpecbuildError } from '../core/index.js';
import type { ActionCache, Executor } from '../cas/index.js';
import type { Project } from '../project/index.js';
import { ClusterExecutor, parseTarget, RemoteEndpoint } from '../remote/index.js';
import {
  primes,
  RemoteShare,
  unreachableReason,
  type Mode,
  type ShareEvent,
} from '../speculative/index.js';
import { artifactRemotes, type ArtifactRemote } from './artifact-remotes.js';
import { connectRemote } from './artifact-share.js';
import type { RemoteService } from './remote-config.js';
import type { UserConfig } from './user-config.js';
import type { ActionLayer } from './workspace.js';

/** Primed actions kept in flight on a cluster whose size is not configured. */
export const DEFAULT_CLUSTER_JOBS = 32;

export interface BuildRemotes {
  /** Between builds and the local stores; undefined without remotes. */
  layer: ActionLayer | undefined;
  share(): RemoteShare | undefined;
  cluster(): ClusterExecutor | undefined;
  /** Primed actions in flight at once: the cluster's jobs, or undefined (local). */
  maxInFlight: number | undefined;
  /** Connects the artifact remotes (after the layer has been applied). */
  open(): Promise<void>;
  close(): void;
}

function connectService(s: RemoteService): Promise<RemoteEndpoint> {
  return RemoteEndpoint.connect({
    target: s.url,
    instance: s.instanceName,
    tokenFile: s.auth.accessToken,
    caFile: s.auth.serverCert,
    clientCertFile: s.auth.clientCert,
    clientKeyFile: s.auth.clientKey,
  });
}

/** The same server and instance (credentials aside: both reach the same store). */
function sameServer(
  a: { url: string; instanceName?: string },
  b: { url: string; instanceName?: string } | undefined,
): boolean {
  if (b === undefined || (a.instanceName ?? '') !== (b.instanceName ?? '')) return false;
  try {
    return parseTarget(a.url).text === parseTarget(b.url).text;
  } catch {
    return false;
  }
}

/** Connects the execution, storage and action-cache services (the latter two default to the former). */
async function connectCluster(
  cfg: UserConfig,
  events: EventSink<ShareEvent>,
): Promise<
  | {
      execution: RemoteEndpoint;
      storage: RemoteEndpoint;
      ac: RemoteEndpoint;
      storageService: RemoteService;
    }
  | undefined
> {
  const rx = cfg.remoteExecution;
  const exec = rx.executionService;
  if (exec === undefined) return undefined;
  const opened: RemoteEndpoint[] = [];
  const open = async (s: RemoteService): Promise<RemoteEndpoint> => {
    const ep = await connectService(s);
    opened.push(ep);
    return ep;
  };
  let which = exec;
  try {
    const execution = await open(exec);
    which = rx.storageService ?? exec;
    const storage =
      rx.storageService === undefined || sameServer(rx.storageService, exec)
        ? execution
        : await open(rx.storageService);
    which = rx.actionCacheService ?? which;
    const ac =
      rx.actionCacheService === undefined ||
      sameServer(rx.actionCacheService, rx.storageService ?? exec)
        ? storage
        : await open(rx.actionCacheService);
    if (!execution.canExecute)
      throw new SpecbuildError(
        'remote/unsupported',
        `remote-execution.execution-service ${exec.url} does not offer remote execution`,
        {
          hint: 'point execution-service at a REAPI execution server (its Capabilities say exec_enabled)',
        },
      );
    return { execution, storage, ac, storageService: rx.storageService ?? exec };
  } catch (e) {
    for (const ep of opened) ep.close();
    // Credentials and TLS are errors; anything else the cluster answers, or
    // its absence: one warning, and the actions run here.
    if (
      !isSpecbuildError(e, 'remote/permission') &&
      !isSpecbuildError(e, 'remote/tls') &&
      !isSpecbuildError(e, 'load/missing-file')
    ) {
      events({
        type: 'share',
        remote: which.url,
        op: 'execute',
        outcome: 'unreachable',
        reason: unreachableReason(e).replace(/^\S+: /, ''),
      });
      return undefined;
    }
    const err = SpecbuildError.from(e);
    throw new SpecbuildError(err.code, `remote execution at ${which.url}: ${err.message}`, {
      hint: err.hint,
      cause: e,
    });
  }
}

export async function buildRemotes(opts: {
  cfg: UserConfig;
  project: Project;
  /** --remote URLs, instead of the configured artifact servers. */
  remote: string[] | undefined;
  mode: Mode;
  events: EventSink<ShareEvent>;
  /** The run's: pushes stop when it is aborted. */
  signal?: AbortSignal;
}): Promise<BuildRemotes> {
  const { cfg, project, mode, events } = opts;
  const remotes: ArtifactRemote[] =
    opts.remote === undefined
      ? artifactRemotes(cfg, project)
      : opts.remote.map((url) => ({ url, push: true }));
  const cluster = await connectCluster(cfg, events);
  let share: RemoteShare | undefined;
  let clusterExecutor: ClusterExecutor | undefined;
  const layer: ActionLayer | undefined =
    remotes.length === 0 && cluster === undefined
      ? undefined
      : (local) => {
          let executor: Executor = local.executor;
          let ac: ActionCache = local.ac;
          if (cluster !== undefined) {
            clusterExecutor = new ClusterExecutor({
              local: local.cas,
              localAc: local.ac,
              execution: cluster.execution,
              storage: cluster.storage,
              actionCache: cluster.ac,
              fallback: local.executor,
              onDown: (e) => {
                events({
                  type: 'share',
                  remote: cfg.remoteExecution.executionService?.url ?? '',
                  op: 'execute',
                  outcome: 'unreachable',
                  reason: unreachableReason(e),
                });
              },
            });
            executor = clusterExecutor;
          }
          if (remotes.length > 0) {
            share = new RemoteShare({
              remotes: remotes.map((r) => ({
                url: r.url,
                push: r.push,
                connect: () => connectRemote(r),
                // The cluster's storage already holds what its workers need.
                filesNeeded: cluster === undefined || !sameServer(r, cluster.storageService),
              })),
              project: project.name,
              artifacts: local.artifacts,
              ac: local.ac,
              priming: primes(mode),
              events,
              signal: opts.signal,
            });
            ac = share.actionCache(local.ac);
            executor = share.executor(executor, ac);
          }
          return { ac, executor };
        };
  return {
    layer,
    share: () => share,
    cluster: () => clusterExecutor,
    maxInFlight:
      cluster === undefined ? undefined : (cfg.remoteExecution.jobs ?? DEFAULT_CLUSTER_JOBS),
    open: async () => {
      await share?.open();
    },
    close: () => {
      share?.close();
      if (cluster !== undefined)
        for (const ep of new Set([cluster.execution, cluster.storage, cluster.ac])) ep.close();
    },
  };
}
