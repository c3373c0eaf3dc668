// `specbuild shell` as a user runs it, on elements built by the real CLI
// (gcc in the sandbox): a command in the staged runtime, in the build
// environment (--build), in the directory a failed build left, and an
// interactive shell on a terminal; each exits with the shell's status.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliEnv, ran, specbuild } from '../helpers/cli-rig.js';
import { cliMain } from '../helpers/paths.js';
import { requireCommand } from '../helpers/prereq.js';
import { runProcess } from '../helpers/process.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';

const files = {
  'project.conf': PROJECT_CONF,
  'elements/lib.bst': [
    'kind: manual',
    'config:',
    '  install-commands:',
    '  - mkdir -p %{install-root}%{datadir}/lib',
    '  - echo lib data > %{install-root}%{datadir}/lib/data.txt',
    '',
  ].join('\n'),
  'elements/app.bst': [
    'kind: manual',
    'depends:',
    '- lib.bst',
    'sources:',
    '- kind: local',
    '  path: app-src',
    'environment:',
    '  GREETING: hello from the environment',
    'config:',
    '  build-commands:',
    '  - gcc -o app app.c',
    '  install-commands:',
    '  - install -D app %{install-root}%{bindir}/app',
    '',
  ].join('\n'),
  'app-src/app.c': '#include <stdio.h>\nint main(void) { puts("app runs"); return 0; }\n',
  'elements/broken.bst': [
    'kind: manual',
    'build-depends:',
    '- lib.bst',
    'config:',
    '  build-commands:',
    '  - echo left by the build > made-by-build.txt',
    '  - exit 1',
    '',
  ].join('\n'),
};

describe('specbuild shell', () => {
  it("runs a command in the staged runtime, with the terminal's stdio and its exit status", async () => {
    await using rig = await ProjectRig.create(files);
    const missing = await specbuild(rig, ['shell', 'app.bst', '--', 'true']);
    assert.equal(missing.code, 1, ran(missing));
    assert.match(
      missing.stderr,
      /^error: no artifact of (lib|app)\.bst is cached under its key [0-9a-f]{64}\n {2}hint: build it: specbuild build (lib|app)\.bst\n$/,
    );
    const built = await specbuild(rig, ['build', 'app.bst']);
    assert.equal(built.code, 0, ran(built));

    const r = await specbuild(
      rig,
      [
        'shell',
        'app.bst',
        '--',
        'sh',
        '-c',
        'app; cat /usr/share/lib/data.txt; pwd; echo "$GREETING"; read line; echo "read: $line"; echo to-stderr >&2; exit 3',
      ],
      { input: 'typed in\n' },
    );
    assert.equal(r.code, 3, ran(r));
    assert.equal(r.stdout, 'app runs\nlib data\n/\nhello from the environment\nread: typed in\n');
    assert.equal(r.stderr, 'to-stderr\n');
  });

  it('opens the build environment with --build', async () => {
    await using rig = await ProjectRig.create(files);
    const built = await specbuild(rig, ['build', 'lib.bst']);
    assert.equal(built.code, 0, ran(built));
    const r = await specbuild(rig, [
      'shell',
      '--build',
      'app.bst',
      '--',
      'sh',
      '-c',
      'pwd; ls; cat /usr/share/lib/data.txt; echo "$GREETING"; gcc -o app app.c && ./app && touch /buildstream-install/x && echo installable',
    ]);
    assert.equal(r.code, 0, ran(r));
    assert.equal(
      r.stdout,
      '/buildstream/test/app.bst\napp.c\nlib data\nhello from the environment\napp runs\ninstallable\n',
    );
  });

  it('opens the directory a failed build left, with --build', async () => {
    await using rig = await ProjectRig.create(files);
    const failed = await specbuild(rig, ['build', 'broken.bst']);
    assert.equal(failed.code, 1, ran(failed));
    const r = await specbuild(rig, [
      'shell',
      '--build',
      'broken.bst',
      '--',
      'sh',
      '-c',
      'cat made-by-build.txt; echo edited >> made-by-build.txt && echo writable; exit 5',
    ]);
    assert.equal(r.code, 5, ran(r));
    assert.equal(r.stdout, 'left by the build\nwritable\n');
    assert.match(
      r.stderr,
      /^broken\.bst: the directory of its failed build under key [0-9a-f]{64}\n$/,
    );
    // The edit stays for the next look.
    const again = await specbuild(rig, [
      'shell',
      '--build',
      'broken.bst',
      '--',
      'cat',
      'made-by-build.txt',
    ]);
    assert.equal(again.stdout, 'left by the build\nedited\n', ran(again));
  });

  it('is an interactive sh -i on a terminal', async () => {
    requireCommand('script', 'apt-get install bsdutils');
    await using rig = await ProjectRig.create(files);
    const built = await specbuild(rig, ['build', 'app.bst']);
    assert.equal(built.code, 0, ran(built));
    const r = await runProcess(
      'script',
      ['-qec', `${process.execPath} ${cliMain} shell app.bst`, '/dev/null'],
      { cwd: rig.dir, env: cliEnv(rig), timeoutMs: 60_000, input: 'app\nexit 4\n' },
    );
    assert.equal(r.code, 4, ran(r));
    // The prompt names the element and its key; the program ran.
    assert.match(r.stdout, /^\[app\.bst:[0-9a-f]{8}\] \$ app runs\r?$/m);
    assert.doesNotMatch(r.stdout, /process group|job control/i);
  });
});
