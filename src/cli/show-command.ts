// `specbuild show`: each element's state and keys in BuildStream's format
// language (`%{state: >12} %{full-key} %{name}` by default), without building.
import { SpecbuildError } from '../core/index.js';
import {
  buildScope,
  makeSource,
  normalName,
  selectDeps,
  type ElementKeys,
  type GraphNode,
} from '../project/index.js';
import { resolveKeys } from '../scheduler/index.js';
import { digestKey, fromPb } from '../reapi/index.js';
import { loadSpeculativeActions, OverlayType, type Overlay } from '../speculative/index.js';
import { info } from './render/output.js';
import { EXIT } from './exit-codes.js';
import type { GlobalOptions } from './options.js';
import { openCache, openGraph, openProject, sourceEnv } from './workspace.js';

export const DEFAULT_SHOW_FORMAT = '%{state: >12} %{full-key} %{name}';
const DEPS = ['none', 'build', 'run', 'all'] as const;
export type DepsChoice = (typeof DEPS)[number];

export function parseDeps(v: string): DepsChoice {
  if ((DEPS as readonly string[]).includes(v)) return v as DepsChoice;
  throw new SpecbuildError('cli/usage', `--deps "${v}" is not one of ${DEPS.join(', ')}`);
}

/** Python-style `[[fill]align][width]` as BuildStream's format specs use. */
function pad(value: string, spec: string): string {
  const m = /^(.?[<>^])?(\d+)?$/.exec(spec.trim() === '' ? '' : spec.replace(/^\s?/, (s) => s));
  if (m === null) return value;
  const alignPart = m[1] ?? '';
  const width = Number(m[2] ?? 0);
  const align = alignPart.at(-1) ?? '<';
  const fill = alignPart.length === 2 ? (alignPart[0] ?? ' ') : ' ';
  const gap = Math.max(0, width - value.length);
  if (align === '>') return fill.repeat(gap) + value;
  if (align === '^')
    return fill.repeat(Math.floor(gap / 2)) + value + fill.repeat(Math.ceil(gap / 2));
  return value + fill.repeat(gap);
}

export function formatElement(format: string, fields: Record<string, string>): string {
  return format.replace(/%\{([a-z-]+)(?::([^}]*))?\}/g, (whole, name: string, spec?: string) => {
    const v = fields[name];
    if (v === undefined) return whole;
    return spec === undefined ? v : pad(v, spec);
  });
}

export async function showCommand(
  targets: string[],
  opts: { deps: DepsChoice; format: string },
  g: GlobalOptions,
): Promise<number> {
  const project = await openProject(g.directory, g.config);
  const graph = await openGraph(project, targets);
  const stores = await openCache(g.config);
  const env = sourceEnv(project, stores);
  const keys = await resolveKeys(graph, env, stores.toolchain);
  const cached = new Map<string, boolean>();
  const isCached = async (n: GraphNode, k: ElementKeys | undefined): Promise<boolean> => {
    let c = cached.get(n.name);
    if (c === undefined) {
      c =
        k !== undefined &&
        (await stores.artifacts.lookup(project.name, normalName(n.name), k.strong)) !== undefined;
      cached.set(n.name, c);
    }
    return c;
  };
  for (const node of selectDeps(graph, opts.deps)) {
    const k = keys.get(node.name);
    let state: string;
    if (k === undefined) state = 'no reference';
    else if (await isCached(node, k)) state = 'cached';
    else if (await stores.artifacts.failed(project.name, normalName(node.name), k.strong))
      state = 'failed';
    else if (
      (await Promise.all(node.decl.sources.map((s) => makeSource(s).isCached(env)))).some((x) => !x)
    )
      state = 'fetch needed';
    else {
      const deps = buildScope(node);
      const ready = await Promise.all(deps.map((d) => isCached(d, keys.get(d.name))));
      state = ready.every(Boolean) ? 'buildable' : 'waiting';
    }
    const missing = '?'.repeat(64);
    info(
      formatElement(opts.format, {
        name: node.name,
        state,
        key: (k?.strong ?? missing).slice(0, 8),
        'full-key': k?.strong ?? missing,
        'weak-key': k?.weak ?? missing,
        kind: node.decl.kind,
        description: node.decl.description,
      }),
    );
  }
  return EXIT.ok;
}

/** `specbuild show --speculative ELEMENT`: the stored actions and their overlays, readably. */
export async function showSpeculative(targets: string[], g: GlobalOptions): Promise<number> {
  const project = await openProject(g.directory, g.config);
  const graph = await openGraph(project, targets);
  const stores = await openCache(g.config);
  const keys = await resolveKeys(graph, sourceEnv(project, stores), stores.toolchain);
  for (const node of graph.targets) {
    const k = keys.get(node.name);
    if (k === undefined) {
      info(`${node.name}: no keys yet (a source has no ref)`);
      continue;
    }
    const art = await stores.artifacts.lookupRecord(project.name, normalName(node.name), k.weak);
    if (art?.speculativeActions === undefined) {
      info(`${node.name}: no speculative actions stored under weak key ${k.weak.slice(0, 8)}`);
      continue;
    }
    const d = fromPb(art.speculativeActions);
    const sa = await loadSpeculativeActions(stores.cas, d);
    info(
      `${node.name}: ${sa.actions.length} speculative actions (weak key ${k.weak.slice(0, 8)}, blob ${digestKey(d)})`,
    );
    for (const a of sa.actions) {
      const base = fromPb(a.baseActionDigest);
      info(`  action ${digestKey(base)}${a.element === '' ? '' : ` (from ${a.element})`}`);
      for (const o of a.overlays) info(`    ${describeOverlay(o)}`);
    }
    if (sa.artifactOverlays.length > 0) {
      info(`  artifact files:`);
      for (const o of sa.artifactOverlays) info(`    ${describeOverlay(o)}`);
    }
  }
  return EXIT.ok;
}

function describeOverlay(o: Overlay): string {
  const type = OverlayType[o.type].padEnd(8);
  const from = o.sourceElement === '' ? '(own)' : o.sourceElement;
  const via =
    o.type === OverlayType.ACTION && o.sourceActionDigest !== undefined
      ? ` of action ${fromPb(o.sourceActionDigest).hash.slice(0, 12)}`
      : '';
  return `${type} ${from}:${o.sourcePath}${via} → ${o.targetPaths.join(', ')}`;
}
