// The composition root of project commands: the embedded default (local
// CAS, action cache and executor under the cache directory, one CPU slot
// pool for builds and actions), the artifact cache and the builder, and the
// project and graph of the targets, whose problems are reported all at once.
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { SlotPool, SpecbuildError } from '../core/index.js';
import {
  ArtifactCache,
  FsPool,
  LocalActionCache,
  LocalCas,
  RefStore,
  type ActionCache,
  type Executor,
} from '../cas/index.js';
import { ElementBuilder } from '../build/index.js';
import { LocalExecutor, prepareWorkDir } from '../exec/index.js';
import {
  loadGraph,
  loadProject,
  type Graph,
  type Project,
  type SourceEnv,
} from '../project/index.js';
import { hostPlatform, TOOLCHAIN_PROPERTY } from '../reapi/index.js';
import { formatDiagnostics } from './render/diagnostic.js';
import type { UserConfig } from './user-config.js';

/** What commands that only read or name artifacts and sources need. */
export interface CacheStores {
  cacheDir: string;
  cas: LocalCas;
  artifacts: ArtifactCache;
  /** The host toolchain identity (part of the keys of elements that run commands). */
  toolchain: string;
  /** Worker threads for the CAS's writes and the executor's staging (started when first used). */
  fsPool: FsPool;
}

export interface Stores extends CacheStores {
  ac: LocalActionCache;
  executor: LocalExecutor;
  /** What builds and priming look results up in and run actions on (the local ones, or layered). */
  actions: { ac: ActionCache; executor: Executor };
  slots: SlotPool;
  builder: ElementBuilder;
}

/** The local CAS and the artifact refs, without an executor. */
export async function openCache(cfg: UserConfig): Promise<CacheStores> {
  const cacheDir = cfg.cacheDir;
  const fsPool = new FsPool();
  const cas = await LocalCas.open({ dir: cacheDir, quotaBytes: cfg.quota, pool: fsPool });
  const artifacts = new ArtifactCache(
    cas,
    new RefStore(join(cacheDir, 'refs', 'artifacts')),
    new RefStore(join(cacheDir, 'refs', 'failed')),
  );
  const toolchain = (await hostPlatform()).get(TOOLCHAIN_PROPERTY) ?? '';
  return { cacheDir, cas, artifacts, toolchain, fsPool };
}

/** Puts something between builds and the local action cache and executor (artifact remotes). */
export type ActionLayer = (local: {
  cas: LocalCas;
  artifacts: ArtifactCache;
  ac: LocalActionCache;
  executor: LocalExecutor;
}) => { ac: ActionCache; executor: Executor };

export async function openStores(cfg: UserConfig, layer?: ActionLayer): Promise<Stores> {
  const { cacheDir, cas, artifacts, toolchain, fsPool } = await openCache(cfg);
  const ac = await LocalActionCache.open(cacheDir, cas);
  const slots = new SlotPool(availableParallelism());
  const executor = new LocalExecutor({
    cas,
    ac,
    workDir: (await prepareWorkDir(join(cacheDir, 'exec'))).path,
    slots,
    fsPool,
  });
  const actions = layer?.({ cas, artifacts, ac, executor }) ?? { ac, executor };
  const platform = cfg.remoteExecution.platform;
  const builder = new ElementBuilder({
    // The cluster's platform on every recorded action (the wrapper reads it).
    env:
      platform === undefined || platform.length === 0
        ? undefined
        : { SPECBUILD_REMOTE_PLATFORM: platform.map(([k, v]) => `${k}=${v}`).join(',') },
    cas,
    ac: actions.ac,
    executor: actions.executor,
    artifacts,
    slots,
    cacheDir,
    toolchain,
  });
  return { cacheDir, cas, ac, executor, actions, artifacts, slots, builder, toolchain, fsPool };
}

/** Every load problem, already rendered (file:line:col, the text, the hint). */
export class LoadFailed extends SpecbuildError {
  constructor(readonly rendered: string) {
    super('cli/usage', 'the project does not load');
  }
}

export async function openProject(dir: string, cfg: UserConfig): Promise<Project> {
  const p = await loadProject(resolve(dir), { maxJobs: cfg.maxJobs });
  if (!p.ok) throw new LoadFailed(formatDiagnostics(p.errors, resolve(dir)));
  return p.value;
}

export async function openGraph(project: Project, targets: readonly string[]): Promise<Graph> {
  if (targets.length === 0)
    throw new SpecbuildError('cli/usage', 'no element given', {
      hint: 'name the elements, e.g. specbuild build app.bst',
    });
  const g = await loadGraph(project, targets);
  if (!g.ok) throw new LoadFailed(formatDiagnostics(g.errors, project.dir));
  return g.value;
}

export function sourceEnv(
  project: Project,
  stores: Pick<Stores, 'cacheDir' | 'cas'>,
  signal?: AbortSignal,
): SourceEnv {
  return { project, sourceDir: join(stores.cacheDir, 'sources'), cas: stores.cas, signal };
}
