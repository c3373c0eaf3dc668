// `specbuild explain ELEMENT`: why the actions of the element's last build
// missed the cache, from the trace that build left (speculative/trace.ts):
// the build under the element's current key if there is one, else its
// latest. Read-only: it runs nothing and changes nothing in the cache.
import { join } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import { LocalActionCache } from '../cas/index.js';
import { normalName } from '../project/index.js';
import { BuildTraceStore, explainBuild } from '../speculative/index.js';
import { openElement } from './element-artifact.js';
import { EXIT } from './exit-codes.js';
import type { GlobalOptions } from './options.js';
import { renderExplanation } from './render/explain.js';
import { info, note } from './render/output.js';
import { openCache } from './workspace.js';

export interface ExplainOptions {
  json?: boolean;
}

export async function explainCommand(
  name: string,
  opts: ExplainOptions,
  g: GlobalOptions,
): Promise<number> {
  const stores = await openCache(g.config);
  const t = await openElement(g, name, stores);
  const element = normalName(t.node.name);
  const traces = new BuildTraceStore(join(stores.cacheDir, 'build-traces'));
  // No key (a source without a ref) is no reason not to explain the last build.
  const key = t.keys.get(t.node.name)?.strong;
  const trace =
    (key === undefined ? undefined : await traces.read(t.project.name, element, key)) ??
    (await traces.latest(t.project.name, element));
  if (trace === undefined)
    throw new SpecbuildError('artifact/not-cached', `no build of ${t.node.name} is recorded`, {
      hint: `build it (builds record what explain reads): specbuild build ${t.node.name}`,
    });
  if (trace.strong_key !== key)
    note(
      `${t.node.name} has changed since its last build: explaining that build (key ${trace.strong_key.slice(0, 8)})`,
    );
  const ac = await LocalActionCache.open(stores.cacheDir, stores.cas);
  const x = await explainBuild({ cas: stores.cas, ac, artifacts: stores.artifacts }, trace);
  if (opts.json === true) info(JSON.stringify(x, null, 2));
  else for (const line of renderExplanation(x)) info(line);
  return EXIT.ok;
}
