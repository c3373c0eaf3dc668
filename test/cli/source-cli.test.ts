// `specbuild source fetch` and `specbuild source track` as a user runs them:
// which elements' sources --deps reaches, archives checked against their
// refs (every failure reported with its place), and refs rewritten in the
// element files in place, printed as old → new.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDirOf, ran, specbuild } from '../helpers/cli-rig.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { gitIn, run } from '../helpers/source-rig.js';

/** Makes `upstream/NAME.tar` holding NAME/file.txt with `text`; returns its sha256. */
async function archive(rig: ProjectRig, name: string, text: string): Promise<string> {
  const up = join(rig.scratch, 'upstream');
  await mkdir(join(up, name), { recursive: true });
  await writeFile(join(up, name, 'file.txt'), text);
  run('tar', ['--sort=name', '--mtime=@0', '-C', up, '-cf', join(up, `${name}.tar`), name]);
  return sha256(join(up, `${name}.tar`));
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function tarElement(rig: ProjectRig, name: string, ref: string | undefined, deps: string[] = []) {
  return [
    'kind: manual',
    ...(deps.length === 0 ? [] : ['build-depends:', ...deps.map((d) => `- ${d}`)]),
    'sources:',
    '# upstream release',
    '- kind: tar',
    `  url: file://${join(rig.scratch, 'upstream', `${name}.tar`)}`,
    ...(ref === undefined ? [] : [`  ref: ${ref}`]),
    'config:',
    '  install-commands:',
    '  - cp file.txt %{install-root}/',
    '',
  ].join('\n');
}

const fetched = (rig: ProjectRig, sha: string): boolean =>
  existsSync(join(cacheDirOf(rig), 'sources', 'tar', sha));

describe('specbuild source fetch', () => {
  it('fetches the targets only by default, their dependencies with --deps', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    const lib = await archive(rig, 'lib', 'lib 1\n');
    const app = await archive(rig, 'app', 'app 1\n');
    await rig.write({
      'elements/lib.bst': tarElement(rig, 'lib', lib),
      'elements/app.bst': tarElement(rig, 'app', app, ['lib.bst']),
    });
    const none = await specbuild(rig, ['source', 'fetch', 'app.bst']);
    assert.equal(none.code, 0, ran(none));
    assert.ok(fetched(rig, app));
    assert.ok(!fetched(rig, lib), 'a dependency is not fetched without --deps');
    assert.match(none.stderr, /fetched app\.bst sources\[0\] \(tar\)/);
    assert.equal(none.stdout, 'fetch succeeded: 1 source fetched, 0 already cached, 0 failed\n');

    const all = await specbuild(rig, ['source', 'fetch', '--deps', 'all', 'app.bst']);
    assert.equal(all.code, 0, ran(all));
    assert.ok(fetched(rig, lib));
    assert.equal(all.stdout, 'fetch succeeded: 1 source fetched, 1 already cached, 0 failed\n');
    assert.match(all.stderr, /cached app\.bst sources\[0\] \(tar\)/);

    const bad = await specbuild(rig, ['source', 'fetch', '--deps', 'sideways', 'app.bst']);
    assert.equal(bad.code, 2, ran(bad));
    assert.match(bad.stderr, /--deps "sideways" is not one of none, build, run, all/);
  });

  it('reports every source that fails, at its place, with both digests, and exits 1', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    const good = await archive(rig, 'good', 'good\n');
    const actual = await archive(rig, 'bad', 'bad\n');
    const wrong = 'ab'.repeat(32);
    await rig.write({
      'elements/good.bst': tarElement(rig, 'good', good),
      'elements/bad.bst': tarElement(rig, 'bad', wrong),
      'elements/noref.bst': tarElement(rig, 'good', undefined),
      'elements/all.bst': 'kind: stack\ndepends:\n- good.bst\n- bad.bst\n- noref.bst\n',
    });
    const r = await specbuild(rig, ['source', 'fetch', '--deps', 'all', 'all.bst']);
    assert.equal(r.code, 1, ran(r));
    assert.ok(fetched(rig, good), 'a failure elsewhere does not stop the other fetches');
    assert.ok(!fetched(rig, actual) && !fetched(rig, wrong));
    assert.match(
      r.stderr,
      new RegExp(`error: elements/bad\\.bst:6:8: .*has sha256 ${actual}, but its ref is ${wrong}`),
    );
    assert.match(r.stderr, /error: elements\/noref\.bst:\d+:\d+: the tar source .* has no ref/);
    assert.match(r.stderr, /hint: run specbuild source track/);
    assert.equal(r.stdout, 'fetch failed: 1 source fetched, 0 already cached, 2 failed\n');
  });
});

describe('specbuild source track', () => {
  it('writes new refs into the element files in place and prints old → new', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    const first = await archive(rig, 'app', 'app 1\n');
    const repo = join(rig.scratch, 'repo');
    await mkdir(repo);
    gitIn(repo, ['init', '-q', '-b', 'main']);
    await writeFile(join(repo, 'lib.c'), 'int lib;\n');
    gitIn(repo, ['add', '.']);
    gitIn(repo, ['commit', '-q', '-m', 'one']);
    const c1 = gitIn(repo, ['rev-parse', 'HEAD']);
    const libText = [
      'kind: manual',
      'sources:',
      '- kind: git',
      `  url: file://${repo}`,
      '  track: main   # the release branch',
      '',
    ].join('\n');
    await rig.write({
      'elements/lib.bst': libText,
      'elements/app.bst': tarElement(rig, 'app', undefined, ['lib.bst']),
    });

    // The target only, by default.
    const own = await specbuild(rig, ['source', 'track', 'app.bst']);
    assert.equal(own.code, 0, ran(own));
    assert.equal(
      own.stdout,
      `app.bst sources[0] (tar): (no ref) → ${first}\ntrack succeeded: 1 ref changed in 1 element, 0 failed\n`,
    );
    assert.equal(await rig.read('elements/app.bst'), tarElement(rig, 'app', first, ['lib.bst']));
    assert.equal(await rig.read('elements/lib.bst'), libText);

    // With its dependencies: the git source gets its ref; the tar one is up to date.
    const all = await specbuild(rig, ['source', 'track', '--deps', 'all', 'app.bst']);
    assert.equal(all.code, 0, ran(all));
    assert.equal(
      all.stdout,
      `lib.bst sources[0] (git): (no ref) → ${c1}\napp.bst: up to date\ntrack succeeded: 1 ref changed in 1 element, 0 failed\n`,
    );
    assert.equal(
      await rig.read('elements/lib.bst'),
      `${libText}  ref: ${c1}\n`,
      'only a ref line is added; the comment stays',
    );

    // Upstream moves: old → new, and the element files say so.
    const second = await archive(rig, 'app', 'app 2\n');
    await writeFile(join(repo, 'lib.c'), 'int lib = 2;\n');
    gitIn(repo, ['commit', '-q', '-am', 'two'], '2020-01-02T00:00:00Z');
    const c2 = gitIn(repo, ['rev-parse', 'HEAD']);
    const moved = await specbuild(rig, ['source', 'track', '--deps', 'all', 'app.bst']);
    assert.equal(moved.code, 0, ran(moved));
    assert.equal(
      moved.stdout,
      [
        `lib.bst sources[0] (git): ${c1} → ${c2}`,
        `app.bst sources[0] (tar): ${first} → ${second}`,
        'track succeeded: 2 refs changed in 2 elements, 0 failed',
        '',
      ].join('\n'),
    );
    assert.equal(await rig.read('elements/app.bst'), tarElement(rig, 'app', second, ['lib.bst']));
    assert.equal(await rig.read('elements/lib.bst'), `${libText}  ref: ${c2}\n`);
    // And the tracked sources fetch.
    const fetch = await specbuild(rig, ['source', 'fetch', '--deps', 'all', 'app.bst']);
    assert.equal(fetch.code, 0, ran(fetch));
  });

  it('reports a source it cannot track and exits 1', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    await rig.write({ 'elements/gone.bst': tarElement(rig, 'gone', undefined) });
    const r = await specbuild(rig, ['source', 'track', 'gone.bst']);
    assert.equal(r.code, 1, ran(r));
    assert.match(r.stderr, /error: elements\/gone\.bst:\d+:\d+: cannot read/);
    assert.equal(r.stdout, 'track failed: 0 refs changed in 0 elements, 1 failed\n');
  });
});
