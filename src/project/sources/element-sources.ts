// An element's sources taken together: what they add to the element's cache
// key, the one tree they make when each is laid at its `directory` (later
// sources over earlier ones, as BuildStream stages them in order), and
// tracking them all into the element file.
import { join } from 'node:path';
import { layerTrees } from '../../cas/index.js';
import type { Digest } from '../../reapi/index.js';
import type { ElementDecl } from '../element.js';
import type { Plain } from '../yaml.js';
import { makeSource } from './make-source.js';
import type { SourceEnv } from './source.js';
import { writeSourceRef } from './track-edit.js';

/** Every source staged and laid at its directory; the root of the result. */
export async function stageElementSources(decl: ElementDecl, env: SourceEnv): Promise<Digest> {
  const layers: { path: string; root: Digest }[] = [];
  for (const s of decl.sources) {
    layers.push({ path: s.directory, root: await makeSource(s).stage(env) });
  }
  return layerTrees(env.cas, layers, { signal: env.signal });
}

/**
 * `[{kind, key, directory}]` for each source in order, or undefined when a
 * source has no ref yet (the element cannot have a cache key then).
 */
export async function elementSourceKeys(
  decl: ElementDecl,
  env: SourceEnv,
): Promise<Plain[] | undefined> {
  const out: Plain[] = [];
  for (const s of decl.sources) {
    const key = await makeSource(s).key(env);
    if (key === undefined) return undefined;
    out.push({ kind: s.kind, key, directory: s.directory });
  }
  return out;
}

export interface TrackedRef {
  /** The source's position in the element's sources. */
  index: number;
  /** Its ref before tracking (undefined when it had none). */
  before: string | undefined;
  after: string;
}

/**
 * Finds the newest ref of every source that tracks something and writes the
 * changed ones into the element file; returns what changed.
 */
export async function trackElementSources(
  decl: ElementDecl,
  env: SourceEnv,
): Promise<TrackedRef[]> {
  const changed: TrackedRef[] = [];
  for (const s of decl.sources) {
    const after = await makeSource(s).track(env);
    const before = s.config.ref;
    if (after === undefined || after === before) continue;
    await writeSourceRef(join(env.project.dir, decl.file), s.index, after, decl.file, s.kind);
    changed.push({ index: s.index, before, after });
  }
  return changed;
}
