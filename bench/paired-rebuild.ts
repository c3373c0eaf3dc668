// What two benchmarks of a feature of stored speculative actions share: build
// a project once with `full`, then for each run change it and rebuild one
// element twice from copies of that first cache, once with the stored
// actions as generated and once with the feature stripped from them (as
// they were stored before it existed), the order alternated run by run.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactCache, LocalCas, RefStore } from '../src/cas/index.js';
import { fromPb, toPb } from '../src/reapi/index.js';
import {
  loadSpeculativeActions,
  storeSpeculativeActions,
  type SpeculativeActions,
} from '../src/speculative/index.js';
import { buildRig, type RigBuild } from '../test/helpers/build-rig.js';
import { stopDaemonsUnder } from '../test/helpers/daemons.js';
import type { ProjectRig } from '../test/helpers/project-rig.js';

export type Variant = 'with' | 'without';

/**
 * Edits the speculative actions stored for `element` (project `project`,
 * weak key `weakKey`) in the cache at `dir`; `edit` returns how many things
 * it changed, which is returned.
 */
export async function editStoredActions(
  dir: string,
  project: string,
  element: string,
  weakKey: string,
  edit: (sa: SpeculativeActions) => number,
): Promise<number> {
  const cas = await LocalCas.open({ dir });
  const artifacts = new ArtifactCache(cas, new RefStore(join(dir, 'refs')));
  const art = await artifacts.lookupRecord(project, element, weakKey);
  if (art?.speculativeActions === undefined) throw new Error(`${element} has no stored actions`);
  const sa = await loadSpeculativeActions(cas, fromPb(art.speculativeActions));
  const changed = edit(sa);
  art.speculativeActions = toPb(await storeSpeculativeActions(cas, sa));
  await artifacts.store(project, element, art);
  return changed;
}

export interface PairedOptions<F> {
  rig: ProjectRig;
  /** The element built first and rebuilt, e.g. `libpng.bst`. */
  element: string;
  runs: number;
  log: (line: string) => void;
  /** Prefix of the temporary directory. */
  tmpPrefix: string;
  /** Changes the project before run `run`'s pair (1-based). */
  change: (run: number) => Promise<void>;
  /** Strips the feature from the stored actions in the cache at `dir`; how many things it removed. */
  strip: (dir: string, weakKey: string) => Promise<number>;
  /** The figures of one rebuild. */
  figures: (r: RigBuild, seconds: number) => F;
}

export async function pairedRebuilds<F>(
  o: PairedOptions<F>,
): Promise<{ rows: Record<Variant, F>[]; stripped: number }> {
  const work = await mkdtemp(join(tmpdir(), o.tmpPrefix));
  const rows: Record<Variant, F>[] = [];
  let stripped = 0;
  try {
    const start = join(work, 'start');
    const t0 = performance.now();
    const first = await buildRig(o.rig, [o.element], { mode: 'full', cacheDir: start });
    if (first.states[o.element] !== 'built')
      throw new Error(`first build failed: ${JSON.stringify(first.results.map((r) => r.error))}`);
    o.log(`first build: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const weak = first.results.find((r) => r.name === o.element)?.keys?.weak;
    if (weak === undefined) throw new Error(`no weak key for ${o.element}`);
    await stopDaemonsUnder(start);
    for (let run = 1; run <= o.runs; run++) {
      await o.change(run);
      const row: Partial<Record<Variant, F>> = {};
      const order: Variant[] = run % 2 === 1 ? ['with', 'without'] : ['without', 'with'];
      for (const variant of order) {
        const cache = join(work, `${variant}-${String(run)}`);
        await cp(start, cache, { recursive: true });
        if (variant === 'without') stripped = await o.strip(cache, weak);
        const t = performance.now();
        const r = await buildRig(o.rig, [o.element], { mode: 'full', cacheDir: cache });
        const f = o.figures(r, (performance.now() - t) / 1000);
        o.log(`run ${String(run)} ${variant}: ${JSON.stringify(f)}`);
        row[variant] = f;
        await stopDaemonsUnder(cache);
        await rm(cache, { recursive: true, force: true });
      }
      if (row.with !== undefined && row.without !== undefined)
        rows.push({ with: row.with, without: row.without });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { rows, stripped };
}
