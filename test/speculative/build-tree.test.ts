// BUILD_TREE overlays (issue 13, part 2), with real gcc in the real sandbox:
// a header written by the element's own configure step (not a recorded
// action) from a dependency's header is read from the live build directory
// once the build reaches the phase its readers ran in, and every compile
// waiting on it is instantiated again and primed at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { fromPb, parseDigestString } from '../../src/reapi/index.js';
import {
  loadSpeculativeActions,
  OverlayType,
  type SpeculativeStats,
} from '../../src/speculative/index.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { SOCKET_SERIAL } from '../helpers/scenario.js';

/** dep (a header) ← app, whose configure step writes gen.h from it; three compiles and a link read gen.h. */
const project = {
  'project.conf': PROJECT_CONF,
  'elements/dep.bst':
    'kind: import\nsources:\n- kind: local\n  path: dep\nconfig:\n  target: /usr/include\n',
  'elements/app.bst': [
    'kind: manual',
    'build-depends:',
    '- dep.bst',
    'sources:',
    '- kind: local',
    '  path: app',
    ...SOCKET_SERIAL,
    'config:',
    '  configure-commands:',
    "  - sed 's/DEP_VERSION/GEN_VERSION/' /usr/include/dep.h > gen.h",
    '  build-commands:',
    // make's own start-up, before its first compile: the time priming has.
    '  - sleep 1',
    '  - $CC -c a.c -o a.o',
    '  - $CC -c b.c -o b.o',
    '  - $CC -c c.c -o c.o',
    '  - $CC -o app a.o b.o c.o',
    '  install-commands:',
    '  - install -D app %{install-root}%{bindir}/app',
    '',
  ].join('\n'),
  'dep/dep.h': '#define DEP_VERSION 1\n',
  'app/a.c':
    '#include "gen.h"\nint b(void);\nint c(void);\nint main(void) { return b() + c() - 2 * GEN_VERSION; }\n',
  'app/b.c': '#include "gen.h"\nint b(void) { return GEN_VERSION; }\n',
  'app/c.c': '#include "gen.h"\nint c(void) { return GEN_VERSION; }\n',
};

function figures(r: RigBuild): Partial<SpeculativeStats> {
  const s = r.results.find((x) => x.name === 'app.bst')?.speculative;
  assert.ok(s);
  return {
    primed: s.primed,
    unchanged: s.unchanged,
    hits_primed: s.hits_primed,
    hits_cached: s.hits_cached,
    misses: s.misses,
    precision: s.precision,
    recall: s.recall,
  };
}

describe('speculative actions: files generated in the build tree', () => {
  it('primes every compile of a configure-generated header as soon as configure has written it', async () => {
    await using rig = await ProjectRig.create(project);
    const first = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.equal(first.states['app.bst'], 'built');

    // What was stored: each compile reads gen.h from the build tree, as of build-commands.
    const cache = join(rig.scratch, 'cache');
    const cas = await LocalCas.open({ dir: cache });
    const ac = await LocalActionCache.open(cache, cas);
    const art = first.results.find((x) => x.name === 'app.bst')?.artifact;
    assert.ok(art?.speculativeActions !== undefined);
    const sa = await loadSpeculativeActions(cas, fromPb(art.speculativeActions));
    const tree = sa.actions.flatMap((a) =>
      a.overlays.filter((o) => o.type === OverlayType.BUILD_TREE),
    );
    assert.deepEqual(
      tree.map((o) => [o.sourcePath, o.phase, o.targetPaths.length]),
      [
        ['gen.h', 'build-commands', 1],
        ['gen.h', 'build-commands', 1],
        ['gen.h', 'build-commands', 1],
      ],
    );
    assert.equal(tree[0]?.targetPaths[0], 'buildstream/test/app.bst/gen.h');

    // dep.h changes: gen.h changes with it, in app's own configure step.
    await rig.write({ 'dep/dep.h': '#define DEP_VERSION 2\n' });
    const r = await buildRig(rig, ['app.bst'], { mode: 'full' });
    assert.equal(r.states['app.bst'], 'built');
    // Before the build, each compile looked unchanged (gen.h as recorded);
    // once configure wrote the new gen.h, all three and the link were primed.
    assert.deepEqual(figures(r), {
      primed: 4,
      unchanged: 0,
      hits_primed: 4,
      hits_cached: 0,
      misses: 0,
      precision: 1,
      recall: 1,
    });
    // The primed compiles read the new gen.h.
    const submitted = r.events.flatMap((e) =>
      e.type === 'prime' && e.element === 'app.bst' && e.outcome === 'submitted' ? [e] : [],
    );
    assert.equal(submitted.length, 4);
    const outputs = [];
    for (const e of submitted) {
      const res = await ac.getActionResult(parseDigestString(e.adapted ?? ''));
      outputs.push(res?.outputFiles.map((f) => f.path).join(','));
    }
    assert.deepEqual(outputs.sort(), ['a.o', 'app', 'b.o', 'c.o']);
  });
});
