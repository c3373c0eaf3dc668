// Element builds end to end in the real sandbox: commands run in order in
// the build root, the install root becomes the artifact, dependencies are
// staged, a second run is all cached, a failure keeps its directory.
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { buildRig } from '../helpers/build-rig.js';
import { listFiles } from '../../src/cas/index.js';
import { fromPb } from '../../src/reapi/index.js';

describe('element builds', () => {
  it('builds a chain in order, stages dependencies, and is all cached the second time', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': [
        'kind: manual',
        'sources:',
        '- kind: local',
        '  path: base',
        'config:',
        '  build-commands:',
        '  - cat greeting.txt > out.txt',
        '  install-commands:',
        '  - install -D out.txt %{install-root}%{datadir}/base/out.txt',
        '',
      ].join('\n'),
      'elements/top.bst': [
        'kind: manual',
        'build-depends:',
        '- base.bst',
        'config:',
        '  build-commands:',
        '  - pwd > where.txt; id -u >> where.txt',
        '  - cat /usr/share/base/out.txt >> where.txt',
        '  install-commands:',
        '  - install -D where.txt %{install-root}/where.txt',
        '',
      ].join('\n'),
      'base/greeting.txt': 'hello from base\n',
    });
    const first = await buildRig(rig, ['top.bst']);
    assert.deepEqual(
      first.states,
      { 'base.bst': 'built', 'top.bst': 'built' },
      JSON.stringify(first.results.map((r) => r.error?.message)),
    );
    const top = first.results.find((r) => r.name === 'top.bst')?.artifact;
    assert.ok(top?.files);
    const files = await listFiles(first.cas, fromPb(top.files));
    assert.deepEqual(
      files.map((f) => f.path),
      ['where.txt'],
    );
    const text = Buffer.from(
      await first.cas.readBlob(files[0]?.digest ?? fromPb(top.files)),
    ).toString();
    // Commands run in the build root, as root of the sandbox, with base staged at /.
    assert.equal(text, '/buildstream/test/top.bst\n0\nhello from base\n');
    assert.deepEqual(
      top.buildDependencies.map((d) => d.element),
      ['base.bst'],
    );
    const second = await buildRig(rig, ['top.bst']);
    assert.deepEqual(second.states, { 'base.bst': 'cached', 'top.bst': 'cached' });
  });

  it('reports each phase as its commands start, and the live build tree', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/phases.bst': [
        'kind: manual',
        'config:',
        '  configure-commands:',
        '  - echo configured > config.txt',
        '  build-commands:',
        // Long enough that the builder sees the file while the build runs.
        '  - sleep 0.3',
        '  install-commands:',
        '  - install -D config.txt %{install-root}/config.txt',
        '',
      ].join('\n'),
    });
    const r = await buildRig(rig, ['phases.bst']);
    assert.equal(r.states['phases.bst'], 'built');
    const phases = r.events.flatMap((e) => (e.type === 'build-phase' ? [e.phase] : []));
    // Every phase with commands, in order, each once (however short), then capture.
    assert.deepEqual(phases, [
      'staging',
      'configure-commands',
      'build-commands',
      'install-commands',
      'capture',
    ]);
    const dirs = r.events.flatMap((e) => (e.type === 'build-dir' ? [e.path] : []));
    assert.equal(dirs.length, 1);
    assert.match(dirs[0] ?? '', /\/root$/);
  });
});

describe('element builds with many dependencies', () => {
  it('stage a build scope of more than 512 artifacts, most of them empty or the same tree', async () => {
    // 520 stacks in a chain (empty artifacts), under two imports of the same files.
    const files: Record<string, string> = { 'project.conf': PROJECT_CONF };
    const STACKS = 520;
    for (let i = 0; i < STACKS; i++)
      files[`elements/s${i}.bst`] = `kind: stack\n${i === 0 ? '' : `depends:\n- s${i - 1}.bst\n`}`;
    for (const name of ['imp1', 'imp2'])
      files[`elements/${name}.bst`] =
        'kind: import\nsources:\n- kind: local\n  path: data\nconfig:\n  target: /opt/data\n';
    files['data/hello.txt'] = 'hello\n';
    files['elements/top.bst'] = [
      'kind: manual',
      'depends:',
      '- imp1.bst',
      `- s${STACKS - 1}.bst`,
      '- imp2.bst',
      'config:',
      '  install-commands:',
      '  - install -D /opt/data/hello.txt %{install-root}/seen.txt',
      '',
    ].join('\n');
    await using rig = await ProjectRig.create(files);
    const built = await buildRig(rig, ['top.bst']);
    const top = built.results.find((r) => r.name === 'top.bst');
    assert.equal(top?.state, 'built', top?.error?.message);
    assert.ok(top.artifact?.files);
    const seen = await listFiles(built.cas, fromPb(top.artifact.files));
    assert.deepEqual(
      seen.map((f) => f.path),
      ['seen.txt'],
    );
  });
});

describe('element builds with a REAPI socket', () => {
  const appFiles = {
    'project.conf': PROJECT_CONF,
    'elements/app.bst': [
      'kind: manual',
      'sources:',
      '- kind: local',
      '  path: app',
      'environment:',
      '  CC: specbuild-cc gcc',
      '  SPECBUILD_SERVER: unix:/run/reapi.sock',
      '  SPECBUILD_LINK: "1"',
      '  SPECBUILD_WRAPPER_LOG: "%{build-root}/wrapper.log"',
      'sandbox:',
      '  remote-apis-socket:',
      '    path: /run/reapi.sock',
      'config:',
      '  build-commands:',
      '  - make',
      '  install-commands:',
      '  - install -D app %{install-root}%{bindir}/app',
      '  - install -D wrapper.log %{install-root}/wrapper.log',
      '',
    ].join('\n'),
    'app/Makefile':
      'app: main.o util.o\n\t$(CC) -o app main.o util.o\n%.o: %.c\n\t$(CC) -c $< -o $@\n',
    'app/main.c':
      '#include <stdio.h>\nint util(void);\nint main(void) { printf("%d\\n", util()); return 0; }\n',
    'app/util.c': 'int util(void) { return 42; }\n',
  };

  it('records every compile and link, in order, as the wrapper log shows them', async () => {
    await using rig = await ProjectRig.create(appFiles);
    const r = await buildRig(rig, ['app.bst']);
    const app = r.results[0];
    assert.equal(app?.state, 'built', app?.error?.message);
    assert.ok(app.artifact?.files);
    const files = await listFiles(r.cas, fromPb(app.artifact.files));
    const log = files.find((f) => f.path === 'wrapper.log');
    assert.ok(log, files.map((f) => f.path).join(','));
    const lines = Buffer.from(await r.cas.readBlob(log.digest))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { argv: string[]; outcome: string; action: string });
    assert.deepEqual(
      lines.map((l) => [l.argv.join(' '), l.outcome]),
      [
        ['gcc -c main.c -o main.o', 'miss'],
        ['gcc -c util.c -o util.o', 'miss'],
        ['gcc -o app main.o util.o', 'miss'],
      ],
    );
    assert.deepEqual(
      app.subactions,
      lines.map((l) => l.action),
    );
  });

  it('serves the socket whatever the length of the cache directory and the element name', async () => {
    // The build's own directory under this cache is far beyond the 107 bytes
    // of a unix socket's path.
    const name = 'an-application-with-a-rather-long-element-name';
    const { 'elements/app.bst': element, ...rest } = appFiles;
    await using rig = await ProjectRig.create({ ...rest, [`elements/${name}.bst`]: element });
    const r = await buildRig(rig, [`${name}.bst`], {
      cacheDir: join(rig.scratch, 'a-cache-directory-whose-path-is-long'.repeat(3)),
    });
    const app = r.results[0];
    assert.equal(app?.state, 'built', app?.error?.message);
    assert.equal(app.subactions.length, 3);
  });
});
