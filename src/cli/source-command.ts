// `specbuild source fetch` and `specbuild source track`: the sources of the
// elements (and, with --deps, of their dependencies) brought into the source
// cache, or their refs moved to what they track and written into the element
// files in place. Every failure is reported with its place; exit 1 if any.
import { isSpecbuildError, Limiter, SpecbuildError } from '../core/index.js';
import {
  makeSource,
  selectDeps,
  trackElementSources,
  type GraphNode,
  type SourceEnv,
} from '../project/index.js';
import { EXIT } from './exit-codes.js';
import type { GlobalOptions } from './options.js';
import { info } from './render/output.js';
import { sourceRenderer, type SourceRenderer } from './render/sources.js';
import type { DepsChoice } from './show-command.js';
import { openCache, openGraph, openProject, sourceEnv } from './workspace.js';

/** Elements whose sources are fetched at once (each element's sources in order). */
const FETCHERS = 4;

export interface SourceOptions {
  deps: DepsChoice;
}

/** Runs `work` with SIGINT/SIGTERM turned into an abort; returns the exit code. */
async function interruptible(work: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const abort = new AbortController();
  const interrupt = (): void => {
    abort.abort(new SpecbuildError('build/interrupted', 'interrupted'));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const code = await work(abort.signal);
    return abort.signal.aborted ? EXIT.interrupted : code;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

async function open(
  targets: string[],
  deps: DepsChoice,
  g: GlobalOptions,
  signal: AbortSignal,
): Promise<{ nodes: GraphNode[]; env: SourceEnv; render: SourceRenderer }> {
  const project = await openProject(g.directory, g.config);
  const graph = await openGraph(project, targets);
  const stores = await openCache(g.config);
  return {
    nodes: selectDeps(graph, deps),
    env: sourceEnv(project, stores, signal),
    render: sourceRenderer({ projectDir: project.dir }),
  };
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

export function sourceFetchCommand(
  targets: string[],
  opts: SourceOptions,
  g: GlobalOptions,
): Promise<number> {
  return interruptible(async (signal) => {
    const { nodes, env, render } = await open(targets, opts.deps, g, signal);
    // A function: TypeScript would take the property for constant between awaits.
    const aborted = (): boolean => signal.aborted;
    const count = { fetched: 0, cached: 0, failed: 0 };
    const limiter = new Limiter(FETCHERS);
    await Promise.all(
      nodes.map((node) =>
        limiter.run(async () => {
          for (const decl of node.decl.sources) {
            // A local source is part of the project: there is nothing to fetch.
            if (decl.kind === 'local' || aborted()) continue;
            const source = { element: node.name, index: decl.index, kind: decl.kind };
            try {
              const s = makeSource(decl);
              if (await s.isCached(env)) {
                count.cached++;
                render.event({ type: 'fetch', source, outcome: 'cached' });
                continue;
              }
              render.event({ type: 'fetch', source, outcome: 'fetching' });
              await s.fetch(env);
              count.fetched++;
              render.event({ type: 'fetch', source, outcome: 'fetched' });
            } catch (e) {
              if (aborted()) return;
              count.failed++;
              render.event({
                type: 'failed',
                element: node.name,
                source,
                error: SpecbuildError.from(e, 'source/fetch'),
              });
            }
          }
        }),
      ),
    );
    render.done();
    info(
      `${count.failed === 0 ? 'fetch succeeded' : 'fetch failed'}: ${plural(count.fetched, 'source')} fetched, ${count.cached} already cached, ${count.failed} failed`,
    );
    return count.failed === 0 ? EXIT.ok : EXIT.failure;
  });
}

export function sourceTrackCommand(
  targets: string[],
  opts: SourceOptions,
  g: GlobalOptions,
): Promise<number> {
  return interruptible(async (signal) => {
    const { nodes, env, render } = await open(targets, opts.deps, g, signal);
    const aborted = (): boolean => signal.aborted;
    const count = { changed: 0, elements: 0, failed: 0 };
    // One element at a time, in dependency order: the output reads the same every run.
    for (const node of nodes) {
      if (aborted()) break;
      if (node.decl.sources.every((s) => s.kind === 'local')) continue;
      try {
        const changed = await trackElementSources(node.decl, env);
        for (const c of changed) {
          const kind = node.decl.sources[c.index]?.kind ?? '?';
          render.event({
            type: 'tracked',
            source: { element: node.name, index: c.index, kind },
            before: c.before,
            after: c.after,
          });
        }
        if (changed.length === 0) render.event({ type: 'up-to-date', element: node.name });
        else count.elements++;
        count.changed += changed.length;
      } catch (e) {
        if (aborted()) break;
        count.failed++;
        render.event({
          type: 'failed',
          element: node.name,
          error: isSpecbuildError(e) ? e : SpecbuildError.from(e, 'source/track'),
        });
      }
    }
    render.done();
    info(
      `${count.failed === 0 ? 'track succeeded' : 'track failed'}: ${plural(count.changed, 'ref')} changed in ${plural(count.elements, 'element')}, ${count.failed} failed`,
    );
    return count.failed === 0 ? EXIT.ok : EXIT.failure;
  });
}
