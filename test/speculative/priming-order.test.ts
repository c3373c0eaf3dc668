// Cost-aware priming (issue 13, part 3), with real gcc in the real sandbox:
// the results a build records carry their execution time, and a rebuild
// submits its primed actions longest recorded first ('cost') or in recorded
// order ('recorded', the default); the slot pool and the limiter start
// waiting ones by the same priorities.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache } from '../../src/cas/index.js';
import { fromPb, parseDigestString } from '../../src/reapi/index.js';
import {
  primingPriority,
  recordedSeconds,
  type PrimingOrder,
} from '../../src/speculative/index.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { importElement, manualElement } from '../helpers/scenario.js';

/** `n` functions whose optimisation costs gcc -O2 some time, each using BASE. */
function functions(n: number, tag: string): string {
  return Array.from(
    { length: n },
    (_, k) =>
      `double ${tag}${String(k)}(double x) { double s = 0; for (int j = 0; j < ${String(k + 7)}; j++) s += x * j / (j + ${String(k + 1)}); return s + BASE; }`,
  ).join('\n');
}

const project = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst': importElement('base'),
  'elements/app.bst': manualElement({
    path: 'app',
    buildDepends: ['base.bst'],
    build: [
      '$CC -O2 -c light.c -o light.o',
      '$CC -O2 -c mid.c -o mid.o',
      '$CC -O2 -c heavy.c -o heavy.o',
      '$CC -O2 -c main.c -o main.o',
      '$CC -o app main.o light.o mid.o heavy.o',
    ],
    install: ['install -D app %{install-root}%{bindir}/app'],
  }),
  'base/base.h': '#define BASE 1\n',
  'app/light.c': `#include <base.h>\n${functions(1, 'l')}\n`,
  'app/mid.c': `#include <base.h>\n${functions(40, 'm')}\n`,
  'app/heavy.c': `#include <base.h>\n${functions(400, 'h')}\n`,
  'app/main.c': '#include <base.h>\nint main(void) { return BASE - 1; }\n',
};

/** The output file of each base action app's priming reported `outcome` for, in order. */
async function submittedOutputs(
  rig: ProjectRig,
  r: RigBuild,
  outcome = 'submitted',
): Promise<string[]> {
  const ac = await LocalActionCache.open(join(rig.scratch, 'cache'), r.cas);
  const out: string[] = [];
  for (const e of r.events) {
    if (e.type !== 'prime' || e.outcome !== outcome || e.element !== 'app.bst') continue;
    const result = await ac.getActionResult(parseDigestString(e.action));
    out.push(result?.outputFiles.map((f) => f.path).join(',') ?? '?');
  }
  return out;
}

/** Each recorded action of app's build `r`, by its outputs, with its recorded execution seconds. */
async function recordedTimes(rig: ProjectRig, r: RigBuild): Promise<Map<string, number>> {
  const ac = await LocalActionCache.open(join(rig.scratch, 'cache'), r.cas);
  const art = r.results.find((x) => x.name === 'app.bst')?.artifact;
  assert.ok(art !== undefined);
  const seconds = new Map<string, number>();
  for (const d of art.subactions) {
    const result = await ac.getActionResult(fromPb(d));
    seconds.set(result?.outputFiles.map((f) => f.path).join(',') ?? '?', recordedSeconds(result));
  }
  return seconds;
}

async function rebuild(
  rig: ProjectRig,
  base: string,
  order: PrimingOrder,
  budgetSeconds?: number,
): Promise<RigBuild> {
  await rig.write({ 'base/base.h': `#define BASE ${base}\n` });
  const r = await buildRig(rig, ['app.bst'], { mode: 'full', order, budgetSeconds });
  assert.equal(r.states['app.bst'], 'built');
  return r;
}

describe('speculative actions: cost-aware priming', () => {
  it('records execution times, and primes longest recorded first (cost) or in recorded order', async () => {
    await using rig = await ProjectRig.create(project);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.equal(first.states['app.bst'], 'built');

    // What the build recorded: each compile's result with its execution time.
    const seconds = await recordedTimes(rig, first);
    assert.deepEqual([...seconds.keys()], ['light.o', 'mid.o', 'heavy.o', 'main.o', 'app']);
    for (const [out, s] of seconds) assert.ok(s > 0, `${out}: no execution time recorded`);
    const at = (o: string): number => seconds.get(o) ?? NaN;
    assert.ok(
      at('heavy.o') > at('mid.o') && at('mid.o') > at('light.o'),
      JSON.stringify([...seconds]),
    );

    // base.h changes: all four compiles are primed (the link waits on them).
    const costly = await rebuild(rig, '2', 'cost');
    const byCost = await submittedOutputs(rig, costly);
    assert.deepEqual(byCost.slice(0, 2), ['heavy.o', 'mid.o']);
    assert.deepEqual([...byCost].sort(), ['app', 'heavy.o', 'light.o', 'main.o', 'mid.o']);
    assert.equal(byCost.at(-1), 'app', 'the link, once its compiles completed');

    const recorded = await rebuild(rig, '3', 'recorded');
    assert.deepEqual(await submittedOutputs(rig, recorded), [
      'light.o',
      'mid.o',
      'heavy.o',
      'main.o',
      'app',
    ]);

    // A budget of heavy.o's time as the last build recorded it (the stored
    // actions are that build's): heavy.o alone is primed; mid.o is over the
    // budget, and light.o and main.o too (or cheaper than priming them): the
    // build runs them, and gets heavy.o from priming.
    const last = await recordedTimes(rig, recorded);
    const budget = await rebuild(rig, '4', 'cost', (last.get('heavy.o') ?? NaN) + 1e-6);
    assert.deepEqual(await submittedOutputs(rig, budget), ['heavy.o']);
    const skipped = await submittedOutputs(rig, budget, 'skipped');
    assert.deepEqual([...skipped].filter((o) => o !== 'app').sort(), [
      'light.o',
      'main.o',
      'mid.o',
    ]);
    const midSkip = budget.events.find(
      (e) =>
        e.type === 'prime' &&
        e.outcome === 'skipped' &&
        /over the priming budget/.test(e.reason ?? ''),
    );
    assert.ok(midSkip, 'mid.o is over the budget');
    const app = budget.results.find((r) => r.name === 'app.bst')?.speculative;
    assert.ok(app);
    assert.equal(app.hits_primed, 1);
    assert.equal(app.primed, 1);
    assert.ok(app.skipped >= 3, String(app.skipped));
  });

  it('gives each element a band below the last, longest recorded first within it', () => {
    assert.equal(primingPriority(-1, 0, 0), -1.999);
    assert.equal(primingPriority(-1, 0, 1), -1.4995);
    assert.ok(primingPriority(-1, 0, 100) > primingPriority(-1, 0, 10));
    assert.ok(primingPriority(-1, 0, 0) > primingPriority(-1, 1, 1000), 'build order first');
    assert.ok(primingPriority(-1, 3, 1e9) < -1 - 3 + 1e-6 && primingPriority(-1, 3, 1e9) > -4.001);
    assert.equal(primingPriority(-1, 0, Number.NaN), -1.999);
    assert.equal(recordedSeconds(undefined), 0);
  });
});
