// An element's sources together: staged into one tree at their directories
// (later over earlier), their keys in order, and tracking written back into
// the element file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestKey } from '../../src/reapi/index.js';
import {
  elementSourceKeys,
  stageElementSources,
  trackElementSources,
} from '../../src/project/sources/index.js';
import { tempDir } from '../helpers/tmp.js';
import { expectedTree, gitIn, makeRig, readTree, run, writeFiles } from '../helpers/source-rig.js';

describe('element sources', () => {
  it('lays local, tar and git sources at their directories, later ones over earlier ones', async () => {
    await using t = await tempDir();
    await writeFiles(join(t.path, 'work', 'pkg-2.0'), { 'lib.c': 'lib\n', 'config.h': 'old\n' });
    await mkdir(join(t.path, 'mirror'));
    const archive = join(t.path, 'mirror', 'pkg.tar.gz');
    run('tar', ['-cz', '-f', archive, '-C', join(t.path, 'work'), 'pkg-2.0']);
    const ref = createHash('sha256')
      .update(await readFile(archive))
      .digest('hex');
    const repo = join(t.path, 'repos', 'dep');
    await mkdir(repo, { recursive: true });
    gitIn(repo, ['init', '--quiet', '--initial-branch=main']);
    await writeFiles(repo, { 'dep.h': 'dep\n' });
    gitIn(repo, ['add', '-A']);
    gitIn(repo, ['commit', '--quiet', '-m', 'dep']);
    const commit = gitIn(repo, ['rev-parse', 'HEAD']);
    const element = [
      'kind: import',
      'sources:',
      '- kind: local',
      '  path: files',
      '- kind: tar',
      '  url: mirror:pkg.tar.gz',
      `  ref: ${ref}`,
      '  directory: vendor',
      '- kind: git',
      '  url: repos:dep',
      `  ref: ${commit}`,
      '  directory: vendor/dep',
      '- kind: local',
      '  path: overrides',
      '  directory: vendor',
      '',
    ].join('\n');
    const rig = await makeRig(
      t.path,
      {
        'files/main.c': 'main\n',
        'files/build.sh': 'build\n',
        'overrides/config.h': 'new\n',
        'elements/a.bst': element,
      },
      { mirror: `file://${t.path}/mirror/`, repos: `file://${t.path}/repos/` },
    );
    await chmod(join(rig.project.dir, 'files/build.sh'), 0o755);
    const el = await rig.element('a.bst');
    const root = await stageElementSources(el, rig.env);
    const want = {
      'build.sh': 'x:build\n',
      'main.c': 'main\n',
      'vendor/config.h': 'new\n',
      'vendor/dep/dep.h': 'dep\n',
      'vendor/lib.c': 'lib\n',
    };
    assert.deepEqual(await readTree(rig.cas, root), want);
    assert.equal(digestKey(root), digestKey(expectedTree(want)));
    const files = digestKey(expectedTree({ 'build.sh': 'x:build\n', 'main.c': 'main\n' }));
    const overrides = digestKey(expectedTree({ 'config.h': 'new\n' }));
    assert.deepEqual(await elementSourceKeys(el, rig.env), [
      { kind: 'local', key: files, directory: '' },
      { kind: 'tar', key: ['mirror:pkg.tar.gz', ref, '*'], directory: 'vendor' },
      { kind: 'git', key: ['repos:dep', commit], directory: 'vendor/dep' },
      { kind: 'local', key: overrides, directory: 'vendor' },
    ]);
  });

  it('has no keys while a source has no ref; tracking writes the refs into the element file', async () => {
    await using t = await tempDir();
    const repo = join(t.path, 'repos', 'dep');
    await mkdir(repo, { recursive: true });
    gitIn(repo, ['init', '--quiet', '--initial-branch=main']);
    await writeFiles(repo, { 'dep.h': 'dep\n' });
    gitIn(repo, ['add', '-A']);
    gitIn(repo, ['commit', '--quiet', '-m', 'dep']);
    const commit = gitIn(repo, ['rev-parse', 'HEAD']);
    await mkdir(join(t.path, 'mirror'));
    await writeFile(join(t.path, 'mirror', 'x.tar'), 'not really a tar, but tracked all the same');
    const sha = createHash('sha256')
      .update('not really a tar, but tracked all the same')
      .digest('hex');
    const text = [
      '# the dependency, tracked',
      'kind: import',
      'sources:',
      '- kind: git   # from our mirror',
      '  url: repos:dep',
      '  track: main',
      '',
      '- kind: tar',
      "  url: 'mirror:x.tar'",
      `  ref: "${'0'.repeat(64)}"  # old`,
      '- kind: local',
      '  path: files',
      '',
    ].join('\n');
    const rig = await makeRig(
      t.path,
      { 'files/a': 'a\n', 'elements/a.bst': text },
      { mirror: `file://${t.path}/mirror/`, repos: `file://${t.path}/repos/` },
    );
    const el = await rig.element('a.bst');
    assert.equal(await elementSourceKeys(el, rig.env), undefined);
    assert.deepEqual(await trackElementSources(el, rig.env), [
      { index: 0, before: undefined, after: commit },
      { index: 1, before: '0'.repeat(64), after: sha },
    ]);
    const file = join(rig.project.dir, 'elements', 'a.bst');
    assert.equal(
      await readFile(file, 'utf8'),
      [
        '# the dependency, tracked',
        'kind: import',
        'sources:',
        '- kind: git   # from our mirror',
        '  url: repos:dep',
        '  track: main',
        `  ref: ${commit}`,
        '',
        '- kind: tar',
        "  url: 'mirror:x.tar'",
        `  ref: "${sha}"  # old`,
        '- kind: local',
        '  path: files',
        '',
      ].join('\n'),
    );
    assert.deepEqual(await readdir(join(rig.project.dir, 'elements')), ['a.bst']);
    // A fresh load (a project's loader reads each file once).
    const reloaded = await makeRig(
      t.path,
      {},
      { mirror: `file://${t.path}/mirror/`, repos: `file://${t.path}/repos/` },
    );
    const again = await reloaded.element('a.bst');
    const keys = await elementSourceKeys(again, rig.env);
    assert.deepEqual(keys?.slice(0, 2), [
      { kind: 'git', key: ['repos:dep', commit], directory: '' },
      { kind: 'tar', key: ['mirror:x.tar', sha, '*'], directory: '' },
    ]);
    assert.deepEqual(await trackElementSources(again, rig.env), []);
  });
});
