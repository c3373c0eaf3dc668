// The scenarios of speculative actions where an element compiles with a file
// made inside a dependency's build and not installed as such (a cross-element
// ACTION overlay, the dependency's action copied into the element's list):
// 3 (the dependency primed), 5 (the dependency itself changed) and 6 (two
// changed elements in a chain). Real gcc in the real sandbox, exact counts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import {
  EXEC,
  archive,
  counts,
  importElement,
  manualElement,
  statsOf,
  unresolvedReasons,
} from '../helpers/scenario.js';
import { OverlayType, loadSpeculativeActions } from '../../src/speculative/index.js';
import { join } from 'node:path';
import { LocalActionCache } from '../../src/cas/index.js';
import { fromPb, parseDigestString } from '../../src/reapi/index.js';

const GEN_SH = (factor: number): string =>
  `sed -n 's/^#define BASE \\(.*\\)$/#define GEN (\\1 * ${factor})/p' /usr/include/base.h > gen.h\n`;

/**
 * base (a header) <- codegen (gen.h made from base.h by `sh SCRIPT`, a
 * recorded action) <- liba (a.c includes gen.h; b.c includes nothing).
 * Installed: codegen installs gen.h and liba includes it from /usr/include.
 * Not installed: codegen installs a tarball of it (an unrecorded command),
 * which liba extracts (unrecorded) before compiling.
 */
function codegenElement(script: string, installed: boolean, startUp = false): string {
  return manualElement({
    path: 'codegen',
    buildDepends: ['base.bst'],
    build: [
      // A build system's own start-up before its first recorded action (the time priming has).
      ...(startUp ? ['sleep 1'] : []),
      `${EXEC} --input ${script} --input %{includedir}/base.h --output gen.h -- sh ${script}`,
    ],
    install: installed
      ? ['install -D -m 644 gen.h %{install-root}%{includedir}/gen.h']
      : [
          'mkdir -p %{install-root}%{datadir}/codegen',
          'tar --mtime=@0 --owner=0 --group=0 --numeric-owner -cf %{install-root}%{datadir}/codegen/gen.tar gen.h',
        ],
  });
}

function codegenProject(installed: boolean, startUp = false): Record<string, string> {
  return {
    'project.conf': PROJECT_CONF,
    'elements/base.bst': importElement('base'),
    'base/base.h': '#define BASE 1\n',
    'elements/codegen.bst': codegenElement('gen.sh', installed, startUp),
    'codegen/gen.sh': GEN_SH(10),
    'elements/liba.bst': manualElement({
      path: 'liba',
      buildDepends: ['codegen.bst'],
      build: [
        ...(installed ? [] : ['tar -xf %{datadir}/codegen/gen.tar']),
        '$CC -c a.c -o a.o',
        '$CC -c b.c -o b.o',
      ],
      install: [
        'install -D -m 644 a.o %{install-root}%{libdir}/a.o',
        'install -D -m 644 b.o %{install-root}%{libdir}/b.o',
      ],
    }),
    'liba/a.c': `#include ${installed ? '<gen.h>' : '"gen.h"'}\nint a(void) { return GEN; }\n`,
    'liba/b.c': 'int b(void) { return 0; }\n',
  };
}

const ALL = { 'base.bst': 'built', 'codegen.bst': 'built', 'liba.bst': 'built' };

/** The index of an element's state event. */
function stateAt(r: RigBuild, element: string, state: string): number {
  return r.events.findIndex(
    (e) => e.type === 'element' && e.element === element && e.state === state,
  );
}

describe('speculative actions: scenarios across elements', () => {
  it('3. cross-element intermediate file: codegen is primed, liba resolves gen.h through the global map', async () => {
    await using rig = await ProjectRig.create(codegenProject(false));
    const first = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(first.states, ALL);
    // liba's list holds codegen's action (copied in) and its a.c compile reads
    // gen.h from it: an ACTION overlay naming codegen, at liba's own gen.h.
    const liba = first.results.find((r) => r.name === 'liba.bst')?.artifact?.speculativeActions;
    assert.ok(liba !== undefined);
    const sa = await loadSpeculativeActions(first.cas, fromPb(liba));
    assert.deepEqual(
      sa.actions.map((a) => a.element),
      ['codegen.bst', '', ''],
    );
    const gen = sa.actions.flatMap((a) => a.overlays.filter((o) => o.type === OverlayType.ACTION));
    assert.deepEqual(
      gen.map((o) => [o.sourceElement, o.sourcePath, o.targetPaths]),
      [['codegen.bst', 'gen.h', ['buildstream/test/liba.bst/gen.h']]],
    );
    assert.equal(gen[0]?.sourceActionDigest?.hash, sa.actions[0]?.baseActionDigest?.hash);

    await rig.write({ 'base/base.h': '#define BASE 2\n' });
    const second = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(second.states, ALL);
    // codegen primes its own action; liba leaves its copy to it.
    assert.deepEqual(counts(second, 'codegen.bst'), {
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-primed': 1,
    });
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-primed': 1,
      'build-action:hit-cached': 1,
    });
    assert.deepEqual(statsOf(second, 'codegen.bst'), { precision: 1, recall: 1 });
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: 1, recall: 1 });
  });

  it("5. changed codegen, gen.h not installed, its script's content changed: liba follows its copy of codegen's action with codegen's new sources, and both builds hit", async () => {
    // codegen's own sources changed (another weak key, the same recipe key):
    // nothing is stored under its new weak key, but liba's copy of its action
    // records codegen's recipe key, so it is instantiated with codegen's new
    // gen.sh (a referenced speculative action) and primed; liba's compile
    // resolves gen.h through it. Before referenced actions (f85aeb0): codegen
    // 1 miss; liba 2 unresolved (the copy, then the compile), 1 miss, 1 cached
    // hit, recall 0.
    await using rig = await ProjectRig.create(codegenProject(false, true));
    const first = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(first.states, ALL);
    const liba = first.results.find((r) => r.name === 'liba.bst')?.artifact?.speculativeActions;
    assert.ok(liba !== undefined);
    const copy = (await loadSpeculativeActions(first.cas, fromPb(liba))).actions[0];
    assert.equal(copy?.element, 'codegen.bst');
    assert.match(copy.elementRecipeKey, /^[0-9a-f]{64}$/);
    assert.notEqual(copy.elementRecipeKey, copy.elementWeakKey);

    await rig.write({ 'codegen/gen.sh': GEN_SH(100) });
    const second = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { ...ALL, 'base.bst': 'cached' });
    // codegen's build finds its action primed (liba's priming ran it).
    assert.deepEqual(counts(second, 'codegen.bst'), { 'build-action:hit-primed': 1 });
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 2,
      'prime:submitted': 2,
      'prime:completed': 2,
      'build-action:hit-primed': 1,
      'build-action:hit-cached': 1,
    });
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: 1, recall: 1 });
    // codegen's action was primed with its new gen.sh: its gen.h is GEN = BASE * 100.
    const ac = await LocalActionCache.open(join(rig.scratch, 'cache'), second.cas);
    const gen = second.events.find(
      (e) => e.type === 'prime' && e.element === 'liba.bst' && e.outcome === 'completed',
    );
    assert.ok(gen?.type === 'prime' && gen.adapted !== undefined);
    const result = await ac.getActionResult(parseDigestString(gen.adapted));
    const genH = result?.outputFiles.find((f) => f.path === 'gen.h');
    assert.ok(genH?.digest !== undefined);
    assert.equal(
      (await second.cas.readBlob(fromPb(genH.digest))).toString(),
      '#define GEN (1 * 100)\n',
    );
  });

  it("5. changed codegen, gen.h not installed, its script moved: the chain breaks, liba's compile is unresolved and runs normally", async () => {
    // The script codegen's action reads is no longer where it was recorded:
    // no copy can follow that. liba's copy of codegen's action is unresolved,
    // so is the compile that reads its gen.h; that compile is a miss in the
    // build, and nothing fails.
    await using rig = await ProjectRig.create(codegenProject(false));
    const first = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(first.states, ALL);
    await rig.write({
      'codegen/tools/gen.sh': GEN_SH(100),
      'elements/codegen.bst': codegenElement('tools/gen.sh', false),
    });
    await rig.remove('codegen/gen.sh');
    const second = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { ...ALL, 'base.bst': 'cached' });
    assert.deepEqual(counts(second, 'codegen.bst'), { 'build-action:miss': 1 });
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 1,
      'prime:unresolved': 2,
      'build-action:miss': 1,
      'build-action:hit-cached': 1,
    });
    const [copy, compile] = unresolvedReasons(second, 'liba.bst');
    assert.equal(copy, 'codegen.bst changed itself since this action was recorded');
    assert.match(
      compile ?? '',
      /^ACTION codegen\.bst:gen\.h: action [0-9a-f]+ of codegen\.bst could not be instantiated/,
    );
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: null, recall: 0 });
  });

  it('5. changed codegen, gen.h installed: liba falls back to the ARTIFACT overlay and is primed once codegen is built', async () => {
    await using rig = await ProjectRig.create(codegenProject(true));
    const first = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(first.states, ALL);
    await rig.write({ 'codegen/gen.sh': GEN_SH(100) });
    const second = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { ...ALL, 'base.bst': 'cached' });
    assert.deepEqual(counts(second, 'codegen.bst'), { 'build-action:miss': 1 });
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-primed': 1,
      'build-action:hit-cached': 1,
    });
    const instantiated = second.events.findIndex(
      (e) => e.type === 'prime' && e.element === 'liba.bst' && e.outcome === 'instantiated',
    );
    assert.ok(instantiated > stateAt(second, 'codegen.bst', 'built'));
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: 1, recall: 1 });
  });

  it("6. two changed elements in a chain: app's compile that needs only artifacts hits, those needing liba's intermediate miss", async () => {
    // base (a header) <- liba (tab.h made from base.h by a recorded action and
    // shipped in a tarball; a.c compiled and archived) <- app (main.c includes
    // liba's and base's headers; util.c includes the extracted tab.h; the link
    // takes both objects and liba.a). base's header changes and liba's
    // generator script moves (a change no copy of liba's action can follow).
    const libaElement = (script: string): string =>
      manualElement({
        path: 'liba',
        buildDepends: ['base.bst'],
        build: [
          `${EXEC} --input ${script} --input %{includedir}/base.h --output tab.h -- sh ${script}`,
          '$CC -c a.c -o a.o',
          archive('liba.a', ['a.o']),
        ],
        install: [
          'install -D -m 644 a.h %{install-root}%{includedir}/a.h',
          'install -D -m 644 liba.a %{install-root}%{libdir}/liba.a',
          'mkdir -p %{install-root}%{datadir}/liba',
          'tar --mtime=@0 --owner=0 --group=0 --numeric-owner -cf %{install-root}%{datadir}/liba/tab.tar tab.h',
        ],
      });
    const TAB_SH =
      "sed -n 's/^#define BASE \\(.*\\)$/#define TAB (\\1 + 100)/p' /usr/include/base.h > tab.h\n";
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': importElement('base'),
      'base/base.h': '#define BASE 1\n',
      'elements/liba.bst': libaElement('tab.sh'),
      'liba/tab.sh': TAB_SH,
      'liba/a.h': 'int a(void);\n',
      'liba/a.c': '#include <base.h>\n#include "a.h"\nint a(void) { return BASE; }\n',
      'elements/app.bst': manualElement({
        path: 'app',
        buildDepends: ['base.bst', 'liba.bst'],
        build: [
          'tar -xf %{datadir}/liba/tab.tar',
          '$CC -c main.c -o main.o',
          '$CC -c util.c -o util.o',
          '$CC -o app main.o util.o %{libdir}/liba.a',
        ],
        install: ['install -D app %{install-root}%{bindir}/app'],
      }),
      'app/main.c':
        '#include <a.h>\n#include <base.h>\nint util(void);\nint main(void) { return a() - BASE + util(); }\n',
      'app/util.c': '#include "tab.h"\nint util(void) { return TAB - TAB; }\n',
    });
    const all = { 'base.bst': 'built', 'liba.bst': 'built', 'app.bst': 'built' };
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(first.states, all);
    assert.deepEqual(counts(first, 'app.bst'), { 'build-action:miss': 3 });
    await rig.write({
      'base/base.h': '#define BASE 2\n',
      'liba/gen/tab.sh': TAB_SH,
      'elements/liba.bst': libaElement('gen/tab.sh'),
    });
    await rig.remove('liba/tab.sh');
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(second.states, all);
    // liba changed: nothing stored for it, it builds from scratch.
    assert.deepEqual(counts(second, 'liba.bst'), { 'build-action:miss': 3 });
    // app: main.c's compile (headers of both artifacts) is primed once liba is
    // built and hits; the copy of liba's generator, util.c's compile and the
    // link (which needs util.o) are unresolved and run in the build.
    assert.deepEqual(counts(second, 'app.bst'), {
      'prime:unresolved': 3,
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-primed': 1,
      'build-action:miss': 2,
    });
    const reasons = unresolvedReasons(second, 'app.bst');
    assert.equal(reasons[0], 'liba.bst changed itself since this action was recorded');
    assert.match(
      reasons[1] ?? '',
      /^ACTION liba\.bst:tab\.h: action [0-9a-f]+ of liba\.bst could not be instantiated/,
    );
    assert.match(
      reasons[2] ?? '',
      /^ACTION \(own\):util\.o: action [0-9a-f]+ of app\.bst could not be instantiated/,
    );
    assert.deepEqual(statsOf(second, 'app.bst'), { precision: 1, recall: 1 / 3 });
  });
});
