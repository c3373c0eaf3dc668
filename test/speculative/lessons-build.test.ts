// The lessons from BuildStream's implementation that only whole builds show,
// with real gcc in the real sandbox and exact counts: everything staged is
// indexed (transitive runtime dependencies too), chains primed after the
// final pass, stored actions kept by builds that generate nothing, no action
// submitted twice, and priming or generation failures that never fail a build.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionCache, Executor } from '../../src/cas/index.js';
import { digestKey, fromPb, parseDigest } from '../../src/reapi/index.js';
import { ProjectRig } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { CHAIN_PROJECT } from '../helpers/scenario.js';

function outcomes(r: RigBuild, element: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of r.events)
    if (
      (e.type === 'build-action' || e.type === 'prime') &&
      e.element === element &&
      !(
        e.type === 'prime' &&
        e.outcome === 'deferred' &&
        !(e.reason ?? '').startsWith('still waiting')
      )
    ) {
      const k = `${e.type}:${e.outcome}`;
      out[k] = (out[k] ?? 0) + 1;
    }
  return out;
}

/** Lesson 10: whatever the interleaving, no adapted action is submitted twice. */
function assertSubmittedOnce(r: RigBuild): void {
  const seen = new Map<string, number>();
  for (const e of r.events)
    if (e.type === 'prime' && e.outcome === 'submitted' && e.adapted !== undefined)
      seen.set(e.adapted, (seen.get(e.adapted) ?? 0) + 1);
  assert.deepEqual(
    [...seen.values()].filter((n) => n > 1),
    [],
    'an action was submitted twice',
  );
}

const PRIMED_CHAIN = {
  'prime:unchanged': 1,
  'prime:instantiated': 2,
  'prime:submitted': 2,
  'prime:completed': 2,
  'build-action:hit-primed': 2,
  'build-action:hit-cached': 1,
};

describe('speculative actions: lessons (builds)', () => {
  it('lessons 5 and 2: a header of a transitive runtime dependency is indexed, and the link waiting on the primed compile is primed after the final pass', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.equal(first.states['app.bst'], 'built');
    await rig.write({ 'base/base.h': '#define BASE 10\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    // liba only carries base at run time: its own key does not move, app's does.
    assert.deepEqual(second.states, {
      'base.bst': 'built',
      'liba.bst': 'cached',
      'app.bst': 'built',
    });
    assert.deepEqual(outcomes(second, 'app.bst'), PRIMED_CHAIN);
    // The link was still waiting for the primed compile when the build started.
    const linkWait = second.events.find(
      (e) => e.type === 'prime' && e.outcome === 'deferred' && /to complete$/.test(e.reason ?? ''),
    );
    assert.ok(linkWait, 'the link waited on the compile to complete');
    assertSubmittedOnce(second);
  });

  it('lesson 9: a build in none or prime-only keeps the stored actions under the weak key, and later builds prime from them', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    const stored = first.results.find((r) => r.name === 'app.bst')?.artifact?.speculativeActions;
    assert.ok(stored);
    await rig.write({ 'base/base.h': '#define BASE 3\n' });
    const plain = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.deepEqual(outcomes(plain, 'app.bst'), {
      'build-action:miss': 2,
      'build-action:hit-cached': 1,
    });
    const kept = plain.results.find((r) => r.name === 'app.bst')?.artifact?.speculativeActions;
    assert.equal(
      kept === undefined ? '' : digestKey(fromPb(kept)),
      digestKey(fromPb(stored)),
      'none keeps them',
    );
    await rig.write({ 'base/base.h': '#define BASE 4\n' });
    const primeOnly = await buildRig(rig, ['app.bst'], { mode: 'prime-only' });
    assert.deepEqual(outcomes(primeOnly, 'app.bst'), PRIMED_CHAIN);
    const still = primeOnly.results.find((r) => r.name === 'app.bst')?.artifact?.speculativeActions;
    assert.equal(
      still === undefined ? '' : digestKey(fromPb(still)),
      digestKey(fromPb(stored)),
      'prime-only generates nothing new',
    );
    assert.ok(primeOnly.events.some((e) => e.type === 'generate' && e.outcome === 'kept'));
  });

  it('mode none neither stores nor primes (but counts how the build was answered)', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.equal(
      first.results.find((r) => r.name === 'app.bst')?.artifact?.speculativeActions,
      undefined,
    );
    await rig.write({ 'base/base.h': '#define BASE 6\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.deepEqual(outcomes(second, 'app.bst'), {
      'build-action:miss': 2,
      'build-action:hit-cached': 1,
    });
    assert.equal(
      second.events.filter((e) => e.type === 'prime' || e.type === 'generate').length,
      0,
    );
  });

  it('lesson 8: a priming failure is an event, and the element still builds and hits what it can', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    // Recorded in command order: main.c's compile, other.c's, the link.
    const recorded = first.results.find((x) => x.name === 'app.bst')?.subactions ?? [];
    assert.equal(recorded.length, 3);
    await rig.write({ 'base/base.h': '#define BASE 5\n' });
    // The executor refuses every primed action: a fault a real executor cannot be made to produce on demand.
    const broken = (_real: Executor): Executor => ({
      execute: () => Promise.reject(new Error('the cluster is gone')),
    });
    const r = await buildRig(rig, ['app.bst'], { mode: 'full', primingExecutor: broken });
    assert.deepEqual(r.states, { 'base.bst': 'built', 'liba.bst': 'cached', 'app.bst': 'built' });
    const failed = r.events.flatMap((e) =>
      e.type === 'prime' && e.outcome === 'failed' ? [e] : [],
    );
    // main.c's compile fails to prime; the build runs it, and its result
    // wakes the link, whose priming fails too (other.c's is unchanged).
    assert.deepEqual(
      failed.map((e) => e.action),
      [recorded[0], recorded[2]],
    );
    for (const e of failed) assert.match(e.reason ?? '', /the cluster is gone/);
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(outcomes(r, 'app.bst')).filter(([k]) => k.startsWith('build-action')),
      ),
      { 'build-action:miss': 2, 'build-action:hit-cached': 1 },
    );
  });

  it('a primed action the build ran first is not counted as a primed hit', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.equal(first.results.find((x) => x.name === 'app.bst')?.subactions.length, 3);
    await rig.write({ 'base/base.h': '#define BASE 6\n' });
    // Priming is late: each submission reaches the executor only once the
    // build has run the action itself (a race a real executor cannot be made
    // to lose on demand). Its run then finds the build's result cached.
    const late = (real: Executor, ac: ActionCache): Executor => ({
      execute: async (d, o) => {
        while ((await ac.getActionResult(d)) === undefined)
          await new Promise((r) => setTimeout(r, 20));
        return real.execute(d, o);
      },
    });
    const r = await buildRig(rig, ['app.bst'], { mode: 'full', primingExecutor: late });
    assert.equal(r.states['app.bst'], 'built');
    const submitted = r.events.filter(
      (e) => e.type === 'prime' && e.element === 'app.bst' && e.outcome === 'submitted',
    );
    assert.equal(submitted.length, 2, 'main.c and the link were submitted');
    const s = r.results.find((x) => x.name === 'app.bst')?.speculative;
    assert.ok(s);
    assert.deepEqual(
      {
        primed: s.primed,
        hits_primed: s.hits_primed,
        hits_cached: s.hits_cached,
        misses: s.misses,
        precision: s.precision,
        recall: s.recall,
      },
      { primed: 0, hits_primed: 0, hits_cached: 1, misses: 2, precision: null, recall: 0 },
    );
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(outcomes(r, 'app.bst')).filter(([k]) => k.startsWith('build-action')),
      ),
      { 'build-action:miss': 2, 'build-action:hit-cached': 1 },
    );
  });

  it('lesson 8: an action generation cannot read is skipped with an event; the build succeeds', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const cacheDir = join(rig.scratch, 'cache');
    const first = await buildRig(rig, ['app.bst'], { mode: 'full', cacheDir });
    // The main.c compile's Action blob is evicted: its result stays in the action cache, so the
    // next build gets a hit for it (the wrapper looks up before it uploads) and records it.
    const compile = first.results.find((r) => r.name === 'app.bst')?.subactions[0];
    assert.ok(compile);
    const [hash, size] = compile.split('/');
    await rm(first.cas.pathOf(parseDigest(hash ?? '', size ?? '0')));
    await rig.write({ 'app/other.c': 'int other(void) { return 1; }\n' });
    const r = await buildRig(rig, ['app.bst'], { mode: 'full', cacheDir });
    assert.equal(r.states['app.bst'], 'built');
    const gen = r.events.find((e) => e.type === 'generate' && e.element === 'app.bst');
    assert.ok(gen?.type === 'generate');
    assert.deepEqual([gen.outcome, gen.actions, gen.skipped], ['stored', 2, 1]);
    assert.match(gen.reason ?? '', /blob|not found|missing/i);
  });
});
