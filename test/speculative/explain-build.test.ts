// `explain` over real builds (real gcc, the real sandbox): each build's
// trace is written, and each cache miss of the last build is matched to the
// previous build's action with exact input differences, their origins, and
// why priming did not match.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalActionCache } from '../../src/cas/index.js';
import { BuildTraceStore, explainBuild, type Explanation } from '../../src/speculative/index.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';
import { SOCKET_SERIAL } from '../helpers/scenario.js';

/** base (a header) ← liba (runtime-depends on base) ← app: as in lessons-build.test.ts. */
const chain = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst':
    'kind: import\nsources:\n- kind: local\n  path: base\nconfig:\n  target: /usr/include\n',
  'elements/liba.bst': [
    'kind: manual',
    'runtime-depends:',
    '- base.bst',
    'sources:',
    '- kind: local',
    '  path: liba',
    'config:',
    '  install-commands:',
    '  - install -D liba.h %{install-root}%{includedir}/liba.h',
    '',
  ].join('\n'),
  'elements/app.bst': [
    'kind: manual',
    'build-depends:',
    '- liba.bst',
    'sources:',
    '- kind: local',
    '  path: app',
    ...SOCKET_SERIAL,
    'config:',
    '  build-commands:',
    '  - $CC -c main.c -o main.o',
    '  - $CC -c other.c -o other.o',
    '  - $CC -o app main.o other.o',
    '  install-commands:',
    '  - install -D app %{install-root}%{bindir}/app',
    '',
  ].join('\n'),
  'base/base.h': '#define BASE 1\n',
  'liba/liba.h': '#define LIBA 2\n',
  'app/main.c':
    '#include <base.h>\n#include <liba.h>\nint other(void);\nint main(void) { return BASE + LIBA + other(); }\n',
  'app/other.c': 'int other(void) { return 0; }\n',
};

async function explain(rig: ProjectRig, r: RigBuild, element: string): Promise<Explanation> {
  const cacheDir = join(rig.scratch, 'cache');
  const trace = await new BuildTraceStore(join(cacheDir, 'build-traces')).latest('test', element);
  assert.ok(trace, `a trace of ${element}`);
  const ac = await LocalActionCache.open(cacheDir, r.cas);
  return explainBuild({ cas: r.cas, ac, artifacts: r.artifacts }, trace);
}

describe('explain (builds)', () => {
  it('(a) a changed header of a dependency, mode none', async () => {
    await using rig = await ProjectRig.create(chain);
    const first = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.equal(first.states['app.bst'], 'built');
    await rig.write({ 'base/base.h': '#define BASE 10\n' });
    const second = await buildRig(rig, ['app.bst'], { mode: 'none' });
    assert.equal(second.states['app.bst'], 'built');
    const x = await explain(rig, second, 'app');
    console.log(JSON.stringify(x, null, 1));
  });
});
