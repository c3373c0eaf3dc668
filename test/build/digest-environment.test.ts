// BuildStream's `digest-environment`: a build dependency's `config:
// digest-environment: VAR` gives the build VAR = the digest (HASH/SIZE) of
// that dependency staged with its runtime closure, the tree a recorded
// action names as its chrootRootDigest. The name is part of the element's
// key; a wrong name, or one on a runtime dependency, is a load error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layerTrees, listFiles } from '../../src/cas/index.js';
import { loadGraph, loadProject } from '../../src/project/index.js';
import { fromPb } from '../../src/reapi/index.js';
import { resolveKeys } from '../../src/scheduler/index.js';
import { buildRig } from '../helpers/build-rig.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { LocalCas } from '../../src/cas/index.js';
import { join } from 'node:path';

function app(config: string): string {
  return [
    'kind: manual',
    'build-depends:',
    '- filename: sysroot.bst',
    ...config.split('\n').filter((l) => l !== ''),
    'config:',
    '  install-commands:',
    '  - mkdir -p %{install-root}/out',
    `  - printf '%s' "$SYSROOT_DIGEST" > %{install-root}/out/digest`,
    '',
  ].join('\n');
}

const files = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst':
    'kind: import\nsources:\n- kind: local\n  path: base\nconfig:\n  target: /usr/share/base\n',
  'elements/sysroot.bst':
    'kind: import\ndepends:\n- base.bst\nsources:\n- kind: local\n  path: sys\nconfig:\n  target: /usr/share/sys\n',
  'elements/app.bst': app('  config:\n    digest-environment: SYSROOT_DIGEST'),
  'base/a.txt': 'base\n',
  'sys/b.txt': 'sysroot\n',
};

describe('digest-environment', () => {
  it('gives the build the digest of the dependency staged with its runtime closure', async () => {
    await using rig = await ProjectRig.create(files);
    const r = await buildRig(rig, ['app.bst']);
    assert.deepEqual(r.states, { 'base.bst': 'built', 'sysroot.bst': 'built', 'app.bst': 'built' });
    const art = (name: string) => {
      const a = r.results.find((x) => x.name === name)?.artifact;
      assert.ok(a?.files !== undefined, name);
      return fromPb(a.files);
    };
    const expected = await layerTrees(r.cas, [
      { path: '', root: art('base.bst') },
      { path: '', root: art('sysroot.bst') },
    ]);
    // The tree holds both dependencies' files.
    assert.deepEqual((await listFiles(r.cas, expected)).map((f) => f.path).sort(), [
      'usr/share/base/a.txt',
      'usr/share/sys/b.txt',
    ]);
    const out = (await listFiles(r.cas, art('app.bst'))).find((f) => f.path === 'out/digest');
    assert.ok(out !== undefined);
    assert.equal(
      Buffer.from(await r.cas.readBlob(out.digest)).toString('utf8'),
      `${expected.hash}/${expected.size}`,
    );
  });

  it('is part of the key; a bad name or a runtime dependency is a load error', async () => {
    const keyOf = async (appFile: string): Promise<string> => {
      await using rig = await ProjectRig.create({ ...files, 'elements/app.bst': appFile });
      const p = await loadProject(rig.dir, {});
      assert.ok(p.ok);
      const g = await loadGraph(p.value, ['app.bst']);
      assert.ok(g.ok, g.ok ? '' : g.errors.map((e) => e.message).join('\n'));
      const cas = await LocalCas.open({ dir: join(rig.scratch, 'cache') });
      const keys = await resolveKeys(
        g.value,
        { project: p.value, sourceDir: join(rig.scratch, 'sources'), cas },
        'toolchain',
      );
      return keys.get(g.value.targets[0]?.name ?? ('' as never))?.strong ?? '';
    };
    const withVar = await keyOf(app('  config:\n    digest-environment: SYSROOT_DIGEST'));
    const otherVar = await keyOf(app('  config:\n    digest-environment: OTHER'));
    const none = await keyOf(app(''));
    assert.equal(new Set([withVar, otherVar, none]).size, 3, 'three different keys');

    await using bad = await ProjectRig.create({
      ...files,
      'elements/app.bst': [
        'kind: manual',
        'build-depends:',
        '- filename: sysroot.bst',
        '  config:',
        '    digest-environment: 1BAD',
        'runtime-depends:',
        '- filename: base.bst',
        '  config:',
        '    digest-environment: BASE',
        '',
      ].join('\n'),
    });
    const p = await loadProject(bad.dir, {});
    assert.ok(p.ok);
    const g = await loadGraph(p.value, ['app.bst']);
    assert.ok(!g.ok);
    assert.deepEqual(
      g.errors.map((e) => [e.message, e.location?.line, e.location?.col]),
      [
        ['digest-environment "1BAD" is not an environment variable name', 5, 25],
        ['digest-environment is only for build dependencies', 9, 25],
      ],
    );
  });
});
