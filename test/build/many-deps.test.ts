// A build scope wider than one page of overlay options: 40 dependencies
// with files (160 failed a 200-element benchmark with E2BIG). The lowest are
// merged into one layer, later ones winning as in the overlay: every file
// of every dependency is there, and a path each of them installs holds the
// highest one's copy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fromPb } from '../../src/reapi/index.js';
import { listFiles, MAX_LAYERS } from '../../src/cas/index.js';
import { buildRig } from '../helpers/build-rig.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';

const DEPS = 40;

describe('a build scope of many dependencies', () => {
  it(`builds with ${DEPS} dependencies (more than ${MAX_LAYERS} layers): every file there, the highest copy of a shared path`, async () => {
    assert.ok(DEPS > 2 * MAX_LAYERS);
    const files: Record<string, string> = { 'project.conf': PROJECT_CONF };
    for (let i = 0; i < DEPS; i++) {
      files[`elements/d${i}.bst`] =
        `kind: import\nsources:\n- kind: local\n  path: d${i}\nconfig:\n  target: /usr/share/deps\n`;
      files[`d${i}/own-${i}.txt`] = `${i}\n`;
      files[`d${i}/shared.txt`] = `from d${i}\n`;
    }
    files['elements/app.bst'] = [
      'kind: manual',
      'build-depends:',
      ...Array.from({ length: DEPS }, (_, i) => `- d${i}.bst`),
      'config:',
      '  install-commands:',
      '  - mkdir -p %{install-root}/out',
      '  - cat /usr/share/deps/shared.txt > %{install-root}/out/shared',
      '  - ls /usr/share/deps | sort > %{install-root}/out/listing',
      '',
    ].join('\n');
    await using rig = await ProjectRig.create(files);
    const r = await buildRig(rig, ['app.bst']);
    assert.equal(
      r.states['app.bst'],
      'built',
      JSON.stringify(r.results.find((x) => x.error)?.error?.message),
    );
    const art = r.results.find((x) => x.name === 'app.bst')?.artifact;
    assert.ok(art?.files !== undefined);
    const read = async (path: string): Promise<string> => {
      const f = (await listFiles(r.cas, fromPb(art.files))).find((x) => x.path === path);
      assert.ok(f, path);
      return Buffer.from(await r.cas.readBlob(f.digest)).toString('utf8');
    };
    assert.equal(await read('out/shared'), `from d${DEPS - 1}\n`);
    const expected = [
      ...Array.from({ length: DEPS }, (_, i) => `own-${i}.txt`),
      'shared.txt',
    ].sort();
    assert.equal(await read('out/listing'), `${expected.join('\n')}\n`);
  });
});
