// The scenarios of speculative actions, with real gcc in the real sandbox and
// exact counts: what priming instantiates and submits, and how the rebuild's
// actions are answered. Scenarios within a dependency chain (1, 2, 4, 7) are
// here; those with an intermediate file of a dependency's build (3, 5, 6) are
// in scenarios-cross.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig } from '../helpers/build-rig.js';
import {
  archive,
  counts,
  importElement,
  manualElement,
  multifileApp,
  statsOf,
} from '../helpers/scenario.js';

describe('speculative actions: scenarios', () => {
  it('1. multifile app: after dep.h changes, main.c and the link are primed, util.c is unchanged, 3 of 3 hits', async () => {
    await using rig = await ProjectRig.create(multifileApp());
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(first.states, { 'dep.bst': 'built', 'app.bst': 'built' });
    assert.deepEqual(counts(first, 'app.bst'), { 'build-action:miss': 3 });
    await rig.write({ 'dep/dep.h': '#define DEP 2\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { 'dep.bst': 'built', 'app.bst': 'built' });
    assert.deepEqual(counts(second, 'app.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 2,
      'prime:submitted': 2,
      'prime:completed': 2,
      'build-action:hit-primed': 2,
      'build-action:hit-cached': 1,
    });
    assert.deepEqual(statsOf(second, 'app.bst'), { precision: 1, recall: 1 });
  });

  it('2. single dependency change: base builds from scratch, liba and app are primed and get full hits', async () => {
    // base (compile, archive) <- liba (compile, archive) <- app (compile, link
    // with both archives). base's own header changes: its weak key changes, so
    // nothing is stored for it and it builds from scratch; liba and app keep
    // theirs and prime as soon as base's header and archive are known.
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': manualElement({
        path: 'base',
        build: ['$CC -c base.c -o base.o', archive('libbase.a', ['base.o'])],
        install: [
          'install -D -m 644 base.h %{install-root}%{includedir}/base.h',
          'install -D -m 644 libbase.a %{install-root}%{libdir}/libbase.a',
        ],
      }),
      'base/base.h': '#define BASE 1\nint base(void);\n',
      'base/base.c': '#include "base.h"\nint base(void) { return BASE; }\n',
      'elements/liba.bst': manualElement({
        path: 'liba',
        buildDepends: ['base.bst'],
        build: ['$CC -c a.c -o a.o', archive('liba.a', ['a.o'])],
        install: [
          'install -D -m 644 a.h %{install-root}%{includedir}/a.h',
          'install -D -m 644 liba.a %{install-root}%{libdir}/liba.a',
        ],
      }),
      'liba/a.h': 'int a(void);\n',
      'liba/a.c': '#include <base.h>\n#include "a.h"\nint a(void) { return base() + BASE; }\n',
      'elements/app.bst': manualElement({
        path: 'app',
        buildDepends: ['base.bst', 'liba.bst'],
        build: [
          '$CC -c main.c -o main.o',
          '$CC -o app main.o %{libdir}/liba.a %{libdir}/libbase.a',
        ],
        install: ['install -D app %{install-root}%{bindir}/app'],
      }),
      'app/main.c':
        '#include <a.h>\n#include <base.h>\nint main(void) { return a() - 2 * BASE; }\n',
    });
    const all = { 'base.bst': 'built', 'liba.bst': 'built', 'app.bst': 'built' };
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(first.states, all);
    await rig.write({ 'base/base.h': '#define BASE 2\nint base(void);\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(second.states, all);
    assert.deepEqual(counts(second, 'base.bst'), { 'build-action:miss': 2 });
    const primedChain = {
      'prime:instantiated': 2,
      'prime:submitted': 2,
      'prime:completed': 2,
      'build-action:hit-primed': 2,
    };
    assert.deepEqual(counts(second, 'liba.bst'), primedChain);
    assert.deepEqual(counts(second, 'app.bst'), primedChain);
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: 1, recall: 1 });
    assert.deepEqual(statsOf(second, 'app.bst'), { precision: 1, recall: 1 });
  });

  it('4. intra-element chain: the archive resolves its .o inputs through ACTION overlays once the compiles are primed', async () => {
    // liba compiles a.c and b.c (both include base.h) and c.c (own code only),
    // then archives the three objects with ar through specbuild-exec.
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': importElement('base'),
      'base/base.h': '#define BASE 1\n',
      'elements/liba.bst': manualElement({
        path: 'liba',
        buildDepends: ['base.bst'],
        build: [
          '$CC -c a.c -o a.o',
          '$CC -c b.c -o b.o',
          '$CC -c c.c -o c.o',
          archive('liba.a', ['a.o', 'b.o', 'c.o']),
        ],
        install: ['install -D -m 644 liba.a %{install-root}%{libdir}/liba.a'],
      }),
      'liba/a.c': '#include <base.h>\nint a(void) { return BASE; }\n',
      'liba/b.c': '#include <base.h>\nint b(void) { return BASE + 1; }\n',
      'liba/c.c': 'int c(void) { return 3; }\n',
    });
    const first = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(first.states, { 'base.bst': 'built', 'liba.bst': 'built' });
    assert.deepEqual(counts(first, 'liba.bst'), { 'build-action:miss': 4 });
    await rig.write({ 'base/base.h': '#define BASE 2\n' });
    const second = await buildRig(rig, ['liba.bst'], { mode: 'full' });
    assert.deepEqual(second.states, { 'base.bst': 'built', 'liba.bst': 'built' });
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 3,
      'prime:submitted': 3,
      'prime:completed': 3,
      'build-action:hit-primed': 3,
      'build-action:hit-cached': 1,
    });
    assert.deepEqual(statsOf(second, 'liba.bst'), { precision: 1, recall: 1 });
    // The archive (the last action instantiated) waited for both changed
    // compiles: it is instantiated only after each was submitted, and its
    // primed hit above shows it used their new outputs. (Its instantiation
    // may come before a compile's own 'completed' event: the result is in
    // the action cache, where the overlay reads it, a moment before the
    // executor's answer reaches the engine.)
    const prime = second.events.flatMap((e) =>
      e.type === 'prime' && e.element === 'liba.bst' ? [e] : [],
    );
    const archiveAt = prime.findLastIndex((e) => e.outcome === 'instantiated');
    const compiles = prime.filter((e) => e.outcome === 'instantiated').slice(0, 2);
    assert.equal(compiles.length, 2);
    for (const c of compiles) {
      const submitted = prime.findIndex((e) => e.outcome === 'submitted' && e.action === c.action);
      assert.ok(
        submitted >= 0 && submitted < archiveAt,
        'the archive was instantiated after its compiles were submitted',
      );
    }
    const archiveEvent = prime[archiveAt];
    assert.equal(
      prime.filter((e) => e.outcome === 'instantiated' && e.action === archiveEvent?.action).length,
      1,
      'the archive was instantiated once, not before its inputs were known',
    );
  });

  it('7. dependency adapted, sources unchanged: base primes, liba and app resolve its archive through the global map', async () => {
    // sys (a header) <- base (compile, archive) <- liba (compile, archive, a
    // test program linked with libbase.a) <- app (compile, link with liba.a
    // and libbase.a). sys changes; base's own sources do not.
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/sys.bst': importElement('sys'),
      'sys/sys.h': '#define SYS 1\n',
      'elements/base.bst': manualElement({
        path: 'base',
        buildDepends: ['sys.bst'],
        build: ['$CC -c base.c -o base.o', archive('libbase.a', ['base.o'])],
        install: [
          'install -D -m 644 base.h %{install-root}%{includedir}/base.h',
          'install -D -m 644 libbase.a %{install-root}%{libdir}/libbase.a',
        ],
      }),
      'base/base.h': 'int base(void);\n',
      'base/base.c': '#include <sys.h>\n#include "base.h"\nint base(void) { return SYS; }\n',
      'elements/liba.bst': manualElement({
        path: 'liba',
        buildDepends: ['base.bst'],
        build: [
          '$CC -c a.c -o a.o',
          archive('liba.a', ['a.o']),
          '$CC -c t.c -o t.o',
          '$CC -o atest t.o liba.a %{libdir}/libbase.a',
        ],
        install: [
          'install -D -m 644 a.h %{install-root}%{includedir}/a.h',
          'install -D -m 644 liba.a %{install-root}%{libdir}/liba.a',
        ],
      }),
      'liba/a.h': 'int a(void);\n',
      'liba/a.c': '#include <base.h>\n#include "a.h"\nint a(void) { return base() + 1; }\n',
      'liba/t.c': '#include "a.h"\nint main(void) { return a() == 0; }\n',
      'elements/app.bst': manualElement({
        path: 'app',
        buildDepends: ['base.bst', 'liba.bst'],
        build: [
          '$CC -c main.c -o main.o',
          '$CC -o app main.o %{libdir}/liba.a %{libdir}/libbase.a',
        ],
        install: ['install -D app %{install-root}%{bindir}/app'],
      }),
      'app/main.c': '#include <a.h>\nint main(void) { return a() - 2; }\n',
    });
    const all = {
      'sys.bst': 'built',
      'base.bst': 'built',
      'liba.bst': 'built',
      'app.bst': 'built',
    };
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(first.states, all);
    await rig.write({ 'sys/sys.h': '#define SYS 2\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.deepEqual(second.states, all);
    assert.deepEqual(counts(second, 'base.bst'), {
      'prime:instantiated': 2,
      'prime:submitted': 2,
      'prime:completed': 2,
      'build-action:hit-primed': 2,
    });
    // liba: a.c, its archive and t.c are unchanged; the test program's link takes the new libbase.a.
    assert.deepEqual(counts(second, 'liba.bst'), {
      'prime:unchanged': 3,
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-cached': 3,
      'build-action:hit-primed': 1,
    });
    assert.deepEqual(counts(second, 'app.bst'), {
      'prime:unchanged': 1,
      'prime:instantiated': 1,
      'prime:submitted': 1,
      'prime:completed': 1,
      'build-action:hit-cached': 1,
      'build-action:hit-primed': 1,
    });
    for (const e of ['base.bst', 'liba.bst', 'app.bst'])
      assert.deepEqual(statsOf(second, e), { precision: 1, recall: 1 }, e);
  });
});
