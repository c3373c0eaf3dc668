// The scenarios of speculative actions, with real gcc in the real sandbox and
// exact counts: what priming instantiates and submits, and how the rebuild's
// actions are answered.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig, type RigBuild } from '../helpers/build-rig.js';

const SOCKET_ENV = [
  'environment:',
  '  CC: specbuild-cc gcc',
  '  SPECBUILD_SERVER: unix:/run/reapi.sock',
  '  SPECBUILD_LINK: "1"',
  'sandbox:',
  '  remote-apis-socket:',
  '    path: /run/reapi.sock',
];

/**
 * Counts of one element's build-action outcomes and prime outcomes. Deferrals
 * while inputs are not known yet depend on timing (a dependency may finish
 * before or after priming starts), so they are checked apart: every action
 * deferred was instantiated later (or is counted as deferred at build end).
 */
function counts(r: RigBuild, element: string): Record<string, number> {
  const out: Record<string, number> = {};
  const deferred = new Set<string>();
  const settled = new Set<string>();
  for (const e of r.events) {
    if ((e.type === 'build-action' || e.type === 'prime') && e.element === element) {
      if (
        e.type === 'prime' &&
        e.outcome === 'deferred' &&
        !(e.reason ?? '').startsWith('still waiting')
      ) {
        deferred.add(e.action);
        continue;
      }
      if (e.type === 'prime' && ['instantiated', 'unchanged', 'unresolved'].includes(e.outcome))
        settled.add(e.action);
      const k = `${e.type}:${e.outcome}`;
      out[k] = (out[k] ?? 0) + 1;
    }
  }
  for (const a of deferred) assert.ok(settled.has(a), `${a} was deferred and never settled`);
  return out;
}

describe('speculative actions: scenarios', () => {
  it('multifile app: after dep.h changes, main.c and the link are primed, util.c is unchanged, 3 of 3 hits', async () => {
    await using rig = await ProjectRig.create({
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
        ...SOCKET_ENV,
        'config:',
        '  build-commands:',
        '  - make',
        '  install-commands:',
        '  - install -D app %{install-root}%{bindir}/app',
        '',
      ].join('\n'),
      'dep/dep.h': '#define DEP 1\n',
      'app/Makefile':
        'app: main.o util.o\n\t$(CC) -o app main.o util.o\n%.o: %.c\n\t$(CC) -c $< -o $@\n',
      'app/main.c': '#include <dep.h>\nint util(void);\nint main(void) { return DEP + util(); }\n',
      'app/util.c': 'int util(void) { return 0; }\n',
    });
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
    const app = second.results.find((r) => r.name === 'app.bst');
    assert.equal(app?.speculative?.precision, 1);
    assert.equal(app.speculative.recall, 1);
  });
});
