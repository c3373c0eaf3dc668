// `specbuild artifact checkout | log | list-contents | delete` on artifacts
// built by the real CLI (gcc in the sandbox): the files of the current key,
// the build log (a failed build's too), a missing artifact as an error that
// names the element and key, and a blob gone from the CAS as a miss that the
// next build repairs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDirOf, ran, specbuild } from '../helpers/cli-rig.js';
import { assertGolden } from '../helpers/golden.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';

const README = 'hello, the program\n';

const files = {
  'project.conf': PROJECT_CONF,
  'elements/hello.bst': [
    'kind: manual',
    'sources:',
    '- kind: local',
    '  path: hello-src',
    'config:',
    '  build-commands:',
    '  - echo building hello',
    '  - gcc -o hello hello.c',
    '  install-commands:',
    '  - install -D hello %{install-root}%{bindir}/hello',
    '  - install -D -m 644 README %{install-root}%{docdir}/hello/README',
    '  - ln -s hello %{install-root}%{bindir}/hi',
    '',
  ].join('\n'),
  'hello-src/hello.c': '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
  'hello-src/README': README,
  'elements/broken.bst': [
    'kind: manual',
    'build-depends:',
    '- hello.bst',
    'config:',
    '  build-commands:',
    '  - echo about to fail; hello',
    '  - exit 4',
    '',
  ].join('\n'),
  'elements/never.bst': 'kind: manual\nconfig:\n  build-commands:\n  - "true"\n',
  'elements/untracked.bst': 'kind: manual\nsources:\n- kind: tar\n  url: file:///nowhere.tar\n',
  'elements/above.bst': 'kind: stack\ndepends:\n- untracked.bst\n',
};

async function keyOf(rig: ProjectRig, element: string): Promise<string> {
  const r = await specbuild(rig, ['show', '--deps', 'none', '--format', '%{full-key}', element]);
  assert.equal(r.code, 0, ran(r));
  return r.stdout.trim();
}

async function stateOf(rig: ProjectRig, element: string): Promise<string> {
  const r = await specbuild(rig, ['show', '--deps', 'none', '--format', '%{state}', element]);
  assert.equal(r.code, 0, ran(r));
  return r.stdout.trim();
}

async function build(rig: ProjectRig, element: string): Promise<Record<string, string>> {
  const report = join(rig.scratch, 'report.json');
  const r = await specbuild(rig, ['build', '--report', report, element]);
  assert.equal(r.code, 0, ran(r));
  const parsed = JSON.parse(await readFile(report, 'utf8')) as {
    elements: { name: string; state: string }[];
  };
  return Object.fromEntries(parsed.elements.map((e) => [e.name, e.state]));
}

describe('specbuild artifact', () => {
  it('checks out, lists, prints the log of, and deletes an artifact', async () => {
    await using rig = await ProjectRig.create(files);
    assert.deepEqual(await build(rig, 'hello.bst'), { 'hello.bst': 'built' });

    const list = await specbuild(rig, ['artifact', 'list-contents', 'hello.bst']);
    assert.equal(list.code, 0, ran(list));
    assert.equal(
      list.stdout,
      [
        'usr',
        'usr/bin',
        'usr/bin/hello',
        'usr/bin/hi',
        'usr/share',
        'usr/share/doc',
        'usr/share/doc/hello',
        'usr/share/doc/hello/README',
        '',
      ].join('\n'),
    );

    const out = join(rig.scratch, 'out');
    const co = await specbuild(rig, ['artifact', 'checkout', 'hello.bst', '--directory', out]);
    assert.equal(co.code, 0, ran(co));
    assert.equal(execFileSync(join(out, 'usr/bin/hello'), { encoding: 'utf8' }), 'hello\n');
    assert.equal(await readFile(join(out, 'usr/share/doc/hello/README'), 'utf8'), README);
    assert.equal(await readlink(join(out, 'usr/bin/hi')), 'hello');

    // A directory with something in it is refused, unless --force.
    await writeFile(join(out, 'usr/share/doc/hello/README'), 'edited');
    await writeFile(join(out, 'mine.txt'), 'mine');
    const again = await specbuild(rig, ['artifact', 'checkout', 'hello.bst', '--directory', out]);
    assert.equal(again.code, 2, ran(again));
    assert.match(again.stderr, /is not empty\n {2}hint: use --force/);
    assert.equal(await readFile(join(out, 'usr/share/doc/hello/README'), 'utf8'), 'edited');
    const forced = await specbuild(rig, [
      'artifact',
      'checkout',
      '--force',
      'hello.bst',
      '--directory',
      out,
    ]);
    assert.equal(forced.code, 0, ran(forced));
    assert.equal(await readFile(join(out, 'usr/share/doc/hello/README'), 'utf8'), README);
    assert.equal(await readFile(join(out, 'mine.txt'), 'utf8'), 'mine', 'other files stay');

    // Without --directory: the element's name in the current directory.
    const here = await specbuild(rig, ['artifact', 'checkout', 'hello.bst']);
    assert.equal(here.code, 0, ran(here));
    assert.match(here.stdout, /^hello\.bst \([0-9a-f]{8}\) checked out into .*\/hello\n$/);
    assert.equal(
      await readFile(join(rig.dir, 'hello', 'usr/share/doc/hello/README'), 'utf8'),
      README,
    );

    const log = await specbuild(rig, ['artifact', 'log', 'hello.bst']);
    assert.equal(log.code, 0, ran(log));
    assert.match(log.stdout, /^\[specbuild\] build-commands\nbuilding hello\n/);

    const del = await specbuild(rig, ['artifact', 'delete', 'hello.bst']);
    assert.equal(del.code, 0, ran(del));
    assert.match(del.stdout, /^deleted hello\.bst \(2 refs\)/);
    assert.equal(await stateOf(rig, 'hello.bst'), 'buildable');
    const gone = await specbuild(rig, ['artifact', 'list-contents', 'hello.bst']);
    assert.equal(gone.code, 1, ran(gone));
    const nothing = await specbuild(rig, ['artifact', 'delete', 'hello.bst']);
    assert.equal(nothing.code, 1, ran(nothing));
    assert.match(nothing.stderr, /nothing of hello\.bst is cached to delete/);
    assert.deepEqual(await build(rig, 'hello.bst'), { 'hello.bst': 'built' });
  });

  it("prints a failed build's log, and says plainly when there is no artifact", async () => {
    await using rig = await ProjectRig.create(files);
    const failed = await specbuild(rig, ['build', 'broken.bst']);
    assert.equal(failed.code, 1, ran(failed));
    const log = await specbuild(rig, ['artifact', 'log', 'broken.bst']);
    assert.equal(log.code, 0, ran(log));
    assert.equal(log.stdout, '[specbuild] build-commands\nabout to fail\nhello\n');
    assert.match(log.stderr, /the log of its failed build under key [0-9a-f]{64}/);

    // Every way of having no artifact, as the user reads it (keys replaced).
    const keys = new Map([
      [await keyOf(rig, 'broken.bst'), '<key of broken.bst>'],
      [await keyOf(rig, 'never.bst'), '<key of never.bst>'],
    ]);
    const runs = [
      ['artifact', 'checkout', 'broken.bst', '--directory', join(rig.scratch, 'x')],
      ['artifact', 'list-contents', 'never.bst'],
      ['artifact', 'log', 'never.bst'],
      ['artifact', 'list-contents', 'untracked.bst'],
      ['artifact', 'checkout', 'above.bst'],
    ];
    let text = '';
    for (const args of runs) {
      const r = await specbuild(rig, args);
      let stderr = r.stderr.replaceAll(join(rig.scratch, 'x'), 'DIR');
      for (const [k, v] of keys) stderr = stderr.replaceAll(k, v);
      text += `$ specbuild ${args.join(' ').replaceAll(join(rig.scratch, 'x'), 'DIR')}\n${stderr}exit ${r.code}\n\n`;
    }
    assertGolden('artifact-errors.expected', text);
  });

  it('takes an artifact whose blob left the CAS for a miss, and the next build repairs it', async () => {
    await using rig = await ProjectRig.create(files);
    assert.deepEqual(await build(rig, 'hello.bst'), { 'hello.bst': 'built' });
    assert.equal(await stateOf(rig, 'hello.bst'), 'cached');
    const hash = createHash('sha256').update(README).digest('hex');
    const blob = join(cacheDirOf(rig), 'cas', 'objects', hash.slice(0, 2), hash);
    assert.ok(existsSync(blob));
    await rm(blob);

    assert.equal(await stateOf(rig, 'hello.bst'), 'buildable');
    const list = await specbuild(rig, ['artifact', 'list-contents', 'hello.bst']);
    assert.equal(list.code, 1, ran(list));
    assert.match(
      list.stderr,
      /^error: no artifact of hello\.bst is cached under its key [0-9a-f]{64}\n/,
    );
    assert.deepEqual(await build(rig, 'hello.bst'), { 'hello.bst': 'built' });
    assert.ok(existsSync(blob), 'the rebuild stored the blob again');
    assert.equal(await stateOf(rig, 'hello.bst'), 'cached');
    await mkdir(join(rig.scratch, 'co'));
    const co = await specbuild(rig, [
      'artifact',
      'checkout',
      'hello.bst',
      '--directory',
      join(rig.scratch, 'co'),
    ]);
    assert.equal(co.code, 0, ran(co));
  });
});
