// `explain` over real builds (real gcc, the real sandbox): each build's
// trace is written, and each cache miss of the last build is matched to the
// previous build's action with exact input differences, their origins, and
// why priming did not match.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache } from '../../src/cas/index.js';
import { digestKey, parseDigestString } from '../../src/reapi/index.js';
import {
  BuildTraceStore,
  explainBuild,
  outputFilesOf,
  TRACES_KEPT,
  type Explanation,
  type InputOrigin,
} from '../../src/speculative/index.js';
import { renderExplanation } from '../../src/cli/render/explain.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import type { Executor } from '../../src/cas/index.js';
import { appElement, CHAIN_PROJECT, importElement } from '../helpers/scenario.js';

async function explain(rig: ProjectRig, r: RigBuild, element: string): Promise<Explanation> {
  const cacheDir = join(rig.scratch, 'cache');
  const trace = await new BuildTraceStore(join(cacheDir, 'build-traces')).latest('test', element);
  assert.ok(trace, `a trace of ${element}`);
  const ac = await LocalActionCache.open(cacheDir, r.cas);
  return explainBuild({ cas: r.cas, ac, artifacts: r.artifacts }, trace);
}

/** What a miss amounts to, compactly: argv, how it matched, each input difference, priming. */
function summary(x: Explanation): unknown {
  return x.misses.map((m) => ({
    argv: m.argv.join(' '),
    by: m.previous?.by ?? null,
    inputs: m.previous?.inputs.map((d) => [d.path, d.old?.digest ?? null, d.new?.digest ?? null]),
    priming: [m.priming.status, m.priming.reason, m.priming.mismatch?.reasons ?? null],
  }));
}

/** The recorded actions of the element's build, HASH/SIZE. */
function recorded(r: RigBuild, element: string): string[] {
  return r.results.find((x) => x.name === element)?.subactions ?? [];
}

/** The digest of the file `path` among the outputs of `action`'s result in the action cache. */
async function outputOf(
  rig: ProjectRig,
  r: RigBuild,
  action: string,
  path: string,
): Promise<string> {
  const ac = await LocalActionCache.open(join(rig.scratch, 'cache'), r.cas);
  const result = await ac.getActionResult(parseDigestString(action));
  assert.ok(result, `a result for ${action}`);
  const f = (await outputFilesOf(r.cas, result)).find((o) => o.path === path);
  assert.ok(f, `${path} among its outputs`);
  return digestKey(f.digest);
}

const BASE_H_1 = '4870ffa6a974c097bf0131e8e9c4a43b519b3a3befcede0cad57421dec77032c/15';
const BASE_H_10 = '7c6cf8b86288fda770dffa103a6f8a050f3d92e9db410bf4b1a18728f0870e73/16';
const MAIN_O = 'buildstream/test/app.bst/main.o';
const DEP_H = '0811351c9558fc2edf1d1b6aa205297fffad3759cbcad57e96c0ade14c3e7cbc/14';
const OVERRIDE_DEP_H = 'a3f484dd0832162f16064f47bb9be3f5968225ae12c36b883a75d43228f4ec07/14';

describe('explain (builds)', () => {
  it('(a) a changed header of a dependency, mode none: each miss, its previous action, the file that differs and where it came from', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.equal(first.states['app.bst'], 'built');
    await rig.write({ 'base/base.h': '#define BASE 10\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.equal(second.states['app.bst'], 'built');
    const x = await explain(rig, second, 'app');
    const [was, now] = [recorded(first, 'app.bst'), recorded(second, 'app.bst')];
    assert.equal(was.length, 3);
    assert.equal(now.length, 3);
    assert.deepEqual(x.actions, { total: 3, hits_primed: 0, hits_cached: 1, misses: 2 });
    assert.equal(x.previous?.via, 'weak-key');
    assert.equal(x.previous.found, true);
    assert.equal(
      x.previous.strong_key,
      first.results.find((r) => r.name === 'app.bst')?.keys?.strong,
    );
    const base = (path: string): InputOrigin => ({ type: 'artifact', element: 'base.bst', path });
    const off = { status: 'off', reason: 'off in mode none' };
    assert.deepEqual(x.misses[0], {
      action: now[0],
      index: 0,
      argv: ['gcc', '-c', 'main.c', '-o', 'main.o'],
      working_directory: 'buildstream/test/app.bst',
      outputs: ['main.o'],
      previous: {
        by: 'same-command',
        action: was[0],
        index: 0,
        command: {},
        inputs: [
          {
            path: 'usr/include/base.h',
            old: { digest: BASE_H_1, origin: base('usr/include/base.h') },
            new: { digest: BASE_H_10, origin: base('usr/include/base.h') },
          },
        ],
      },
      priming: off,
    });
    // The link: only main.o differs (not other.o, not the host's libraries).
    const action = (a: string | undefined): InputOrigin => ({
      type: 'action',
      element: 'app.bst',
      path: 'main.o',
      action: a,
      index: 0,
    });
    assert.deepEqual(x.misses[1], {
      action: now[2],
      index: 2,
      argv: ['gcc', '-o', 'app', 'main.o', 'other.o'],
      working_directory: 'buildstream/test/app.bst',
      outputs: ['app'],
      previous: {
        by: 'same-command',
        action: was[2],
        index: 2,
        command: {},
        inputs: [
          {
            path: MAIN_O,
            old: {
              digest: await outputOf(rig, first, was[0] ?? '', 'main.o'),
              origin: action(was[0]),
            },
            new: {
              digest: await outputOf(rig, second, now[0] ?? '', 'main.o'),
              origin: action(now[0]),
            },
          },
        ],
      },
      priming: off,
    });
    assert.equal(x.misses.length, 2);
  });

  it('(b) the same change primed, mode full: no action missed', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    await buildRig(rig, ['app.bst'], { mode: 'full' });
    await rig.write({ 'base/base.h': '#define BASE 10\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    const x = await explain(rig, second, 'app');
    assert.deepEqual(x.actions, { total: 3, hits_primed: 2, hits_cached: 1, misses: 0 });
    assert.deepEqual(x.misses, []);
  });

  it('(c) a new header in the input set: priming found nothing changed, the build read another header', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/dep.bst': importElement('dep'),
      'elements/app.bst': appElement(
        ['dep.bst'],
        ['$CC -I/usr/include/override -c main.c -o main.o', '$CC -o app main.o'],
      ),
      'dep/dep.h': '#define DEP 1\n',
      'app/main.c': '#include <dep.h>\nint main(void) { return DEP; }\n',
    });
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    await rig.write({ 'dep/override/dep.h': '#define DEP 3\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    const x = await explain(rig, second, 'app');
    const [was, now] = [recorded(first, 'app.bst'), recorded(second, 'app.bst')];
    const [oldO, newO] = [
      await outputOf(rig, first, was[0] ?? '', 'main.o'),
      await outputOf(rig, second, now[0] ?? '', 'main.o'),
    ];
    const unchanged = 'primed as recorded (nothing it tracks had changed)';
    assert.deepEqual(summary(x), [
      {
        argv: 'gcc -I/usr/include/override -c main.c -o main.o',
        by: 'same-command',
        inputs: [
          ['usr/include/dep.h', DEP_H, null],
          ['usr/include/override/dep.h', null, OVERRIDE_DEP_H],
        ],
        priming: [
          'unchanged',
          unchanged,
          ['usr/include/dep.h no longer read', 'new input usr/include/override/dep.h'],
        ],
      },
      {
        argv: 'gcc -o app main.o',
        by: 'same-command',
        inputs: [[MAIN_O, oldO, newO]],
        priming: ['unchanged', unchanged, [`${MAIN_O} differs`]],
      },
    ]);
    const compile = x.misses[0]?.priming;
    assert.ok(compile);
    assert.equal(compile.base, was[0]);
    assert.deepEqual(compile.mismatch?.inputs[1]?.new?.origin, {
      type: 'artifact',
      element: 'dep.bst',
      path: 'usr/include/override/dep.h',
    });
    // The link was primed with the old main.o (the previous build's compile's), the build had the new one.
    assert.deepEqual(
      x.misses[1]?.priming.mismatch?.inputs.map((d) => [
        d.old?.origin.action,
        d.new?.origin.action,
      ]),
      [[was[0], now[0]]],
    );
    assert.deepEqual(
      renderExplanation(x).filter((l) => l.startsWith('  priming:')),
      [
        `  priming: ${unchanged}; did not match: usr/include/dep.h no longer read, new input usr/include/override/dep.h`,
        `  priming: ${unchanged}; did not match: ${MAIN_O} differs`,
      ],
    );
  });

  it('(d) a changed command line: matched by outputs, argv differs, primed as recorded', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/dep.bst': importElement('dep', '/usr/share/app'),
      'elements/app.bst': appElement(
        ['dep.bst'],
        ['$CC $(cat /usr/share/app/cflags) -c main.c -o main.o', '$CC -o app main.o'],
      ),
      'dep/cflags': '-DLEVEL=1\n',
      'app/main.c': 'int main(void) { return LEVEL; }\n',
    });
    await buildRig(rig, ['app.bst'], { mode: 'full' });
    await rig.write({ 'dep/cflags': '-DLEVEL=2\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    const x = await explain(rig, second, 'app');
    const compile = x.misses[0];
    assert.equal(compile?.previous?.by, 'same-outputs');
    const argv = {
      old: ['gcc', '-DLEVEL=1', '-c', 'main.c', '-o', 'main.o'],
      new: ['gcc', '-DLEVEL=2', '-c', 'main.c', '-o', 'main.o'],
      first_difference: 1,
      removed: ['-DLEVEL=1'],
      added: ['-DLEVEL=2'],
    };
    assert.deepEqual(compile.previous.command, { argv });
    assert.deepEqual(compile.previous.inputs, []);
    assert.equal(compile.priming.status, 'unchanged');
    assert.deepEqual(compile.priming.mismatch, {
      reasons: ['changed command line'],
      command: { argv },
      inputs: [],
    });
    assert.deepEqual(
      x.misses.map((m) => m.argv.join(' ')),
      ['gcc -DLEVEL=2 -c main.c -o main.o', 'gcc -o app main.o'],
    );
  });

  it('(e) priming failed: the reason it gave', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    await rig.write({ 'base/base.h': '#define BASE 5\n' });
    // The executor refuses every primed action (lessons-build.test.ts, lesson 8).
    const broken = (_real: Executor): Executor => ({
      execute: () => Promise.reject(new Error('the cluster is gone')),
    });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full', primingExecutor: broken });
    const x = await explain(rig, second, 'app');
    const was = recorded(first, 'app.bst');
    assert.deepEqual(
      x.misses.map((m) => [m.argv.join(' '), m.priming.status, m.priming.base, m.priming.reason]),
      [
        ['gcc -c main.c -o main.o', 'failed', was[0], 'failed: the cluster is gone'],
        ['gcc -o app main.o other.o', 'failed', was[2], 'failed: the cluster is gone'],
      ],
    );
  });

  it('(f) an own source changed: the previous build is the latest traced, the file is a source', async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    await rig.write({ 'app/other.c': 'int other(void) { return 1; }\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    const x = await explain(rig, second, 'app');
    assert.equal(x.previous?.via, 'latest');
    assert.equal(
      x.previous.strong_key,
      first.results.find((r) => r.name === 'app.bst')?.keys?.strong,
    );
    assert.deepEqual(x.actions, { total: 3, hits_primed: 0, hits_cached: 1, misses: 2 });
    const other = x.misses[0];
    assert.equal(other?.argv.join(' '), 'gcc -c other.c -o other.o');
    assert.deepEqual(
      other.previous?.inputs.map((d) => [d.path, d.old?.origin, d.new?.origin]),
      [
        [
          'buildstream/test/app.bst/other.c',
          { type: 'source', element: 'app.bst', path: 'other.c' },
          { type: 'source', element: 'app.bst', path: 'other.c' },
        ],
      ],
    );
    assert.deepEqual(
      [other.priming.status, x.misses[1]?.priming.status],
      ['nothing-stored', 'nothing-stored'],
    );
  });

  it(`keeps the last ${TRACES_KEPT} traces of an element, latest among them`, async () => {
    await using rig = await ProjectRig.create(CHAIN_PROJECT);
    const store = new BuildTraceStore(join(rig.scratch, 'cache', 'build-traces'));
    const keys: string[] = [];
    for (let i = 0; i < TRACES_KEPT + 1; i++) {
      await rig.write({ 'app/other.c': `int other(void) { return ${i}; }\n` });
      const r = await buildRig(rig, ['app.bst'], { mode: 'none' });
      keys.push(r.results.find((x) => x.name === 'app.bst')?.keys?.strong ?? '');
    }
    const kept = await Promise.all(keys.map((k) => store.read('test', 'app', k)));
    assert.deepEqual(
      kept.map((t) => t !== undefined),
      [false, ...Array<boolean>(TRACES_KEPT).fill(true)],
    );
    assert.equal((await store.latest('test', 'app'))?.strong_key, keys.at(-1));
  });
});
