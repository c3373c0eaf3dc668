// The project loader on real files: BuildStream's defaults and layer order,
// list directives, variables, kinds, dependencies, and every problem of a
// run reported at once with its location.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  loadGraph,
  loadProject,
  buildScope,
  runtimeClosure,
  type Graph,
} from '../../src/project/index.js';
import type { SpecbuildError } from '../../src/core/index.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';

async function graphOf(rig: ProjectRig, targets: string[]): Promise<Graph> {
  const p = await loadProject(rig.dir, { maxJobs: 3 });
  assert.ok(p.ok, p.ok ? '' : p.errors.map((e) => `${e.provenance}: ${e.message}`).join('\n'));
  const g = await loadGraph(p.value, targets);
  assert.ok(g.ok, g.ok ? '' : g.errors.map((e) => `${e.provenance}: ${e.message}`).join('\n'));
  return g.value;
}

async function errorsOf(rig: ProjectRig, targets: string[]): Promise<SpecbuildError[]> {
  const p = await loadProject(rig.dir, { maxJobs: 3 });
  if (!p.ok) return [...p.errors];
  const g = await loadGraph(p.value, targets);
  assert.ok(!g.ok, 'the project should not load');
  return [...g.errors];
}

const brief = (e: SpecbuildError): string => `${e.provenance ?? '-'} ${e.code}`;

describe('project loader', () => {
  it('applies the built-in defaults and the kind defaults, with variables expanded', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/hello.bst': 'kind: make\nsources:\n- kind: local\n  path: src\n',
      'src/Makefile': 'all:\n',
    });
    const g = await graphOf(rig, ['hello.bst']);
    const el = g.nodes.get('hello.bst' as never)?.decl;
    assert.ok(el);
    assert.equal(el.buildRoot, '/buildstream/test/hello.bst');
    assert.equal(el.installRoot, '/buildstream-install');
    assert.deepEqual(el.commands, {
      configure: [],
      build: ['make PREFIX="/usr"'],
      install: ['make -j1 PREFIX="/usr" DESTDIR="/buildstream-install" install'],
      strip: [],
    });
    const env = Object.fromEntries(el.environment);
    assert.equal(env.MAKEFLAGS, '-j3');
    assert.equal(env.PATH, '/usr/bin:/bin:/usr/sbin:/sbin');
    assert.equal(env.SOURCE_DATE_EPOCH, '1321009871');
    assert.deepEqual(el.nocache, ['MAKEFLAGS', 'V']);
    assert.equal(el.variables.get('libdir'), '/usr/lib');
    assert.equal(el.variables.get('max-jobs'), '3');
    assert.equal(el.sources[0]?.config.path, 'src');
  });

  it('composes project < kind defaults < elements: override < element, with list directives', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': `${PROJECT_CONF}variables:\n  prefix: /opt\n  make: should-lose\nelements:\n  make:\n    variables:\n      make-args: -k\n    config:\n      build-commands:\n        (<):\n        - echo first\n`,
      'elements/a.bst': [
        'kind: make',
        'variables:',
        '  notparallel: true',
        'config:',
        '  build-commands:',
        '    (>):',
        '    - echo last',
        '  install-commands:',
        '    (=):',
        '    - make install-only',
        '',
      ].join('\n'),
    });
    const el = (await graphOf(rig, ['a.bst'])).nodes.get('a.bst' as never)?.decl;
    assert.ok(el?.commands);
    // The kind's own `make` wins over project.conf's; elements: beats the kind.
    assert.deepEqual(el.commands.build, ['echo first', 'make -k', 'echo last']);
    assert.deepEqual(el.commands.install, ['make install-only']);
    assert.equal(el.variables.get('bindir'), '/opt/bin');
    assert.equal(
      Object.fromEntries(el.environment).MAKEFLAGS,
      '-j1',
      'notparallel forces max-jobs 1',
    );
  });

  it('resolves dependencies by type, and the build scope with runtime closures', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': 'kind: stack\n',
      'elements/rt.bst': 'kind: stack\ndepends:\n- base.bst\n',
      'elements/tool.bst': 'kind: stack\n',
      'elements/app.bst': [
        'kind: manual',
        'depends:',
        '- rt.bst',
        '- filename: tool.bst',
        '  type: build',
        'runtime-depends:',
        '- base.bst',
        '',
      ].join('\n'),
    });
    const g = await graphOf(rig, ['app.bst']);
    const app = g.nodes.get('app.bst' as never);
    assert.ok(app);
    assert.deepEqual(
      app.buildDeps.map((n) => n.name),
      ['rt.bst', 'tool.bst'],
    );
    assert.deepEqual(
      app.runtimeDeps.map((n) => n.name),
      ['rt.bst', 'base.bst'],
    );
    assert.deepEqual(
      buildScope(app).map((n) => n.name),
      ['base.bst', 'rt.bst', 'tool.bst'],
    );
    assert.deepEqual(
      runtimeClosure(app).map((n) => n.name),
      ['base.bst', 'rt.bst', 'app.bst'],
    );
    assert.deepEqual(
      g.order.map((n) => n.name),
      ['base.bst', 'rt.bst', 'tool.bst', 'app.bst'],
    );
  });

  it('takes (@) includes beneath the including file', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': `${PROJECT_CONF}(@): include/common.yml\nvariables:\n  prefix: /own\n`,
      'include/common.yml': 'variables:\n  prefix: /included\n  extra: from-include\n',
      'elements/a.bst': 'kind: manual\nconfig:\n  build-commands:\n  - echo %{prefix} %{extra}\n',
    });
    const el = (await graphOf(rig, ['a.bst'])).nodes.get('a.bst' as never)?.decl;
    assert.deepEqual(el?.commands?.build, ['echo /own from-include']);
  });

  it('reports every problem of a run at once, each with its location', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/app.bst': [
        'kind: manual',
        'buidl-depends:',
        '- lib.bst',
        'depends:',
        '- missing.bst',
        '- lib.bst',
        'config:',
        '  build-commands:',
        '  - echo %{nope}',
        '',
      ].join('\n'),
      'elements/lib.bst': 'kind: manual\nvariables:\n  a: "%{b}"\n  b: "%{a}"\nenvironment: [1]\n',
    });
    const errors = await errorsOf(rig, ['app.bst', 'bad-name']);
    assert.deepEqual(errors.map(brief).sort(), [
      '- load/bad-element-name',
      'elements/app.bst:2:1 load/unknown-key',
      'elements/app.bst:5:3 load/missing-file',
      'elements/app.bst:9:5 load/undefined-variable',
      'elements/lib.bst:3:6 load/circular-variable',
      'elements/lib.bst:5:14 load/wrong-type',
    ]);
    const typo = errors.find((e) => e.code === 'load/unknown-key');
    assert.equal(typo?.hint, 'did you mean "build-depends"?');
  });

  it('names a dependency cycle with its whole path', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/a.bst': 'kind: stack\ndepends:\n- b.bst\n',
      'elements/b.bst': 'kind: stack\ndepends:\n- c.bst\n',
      'elements/c.bst': 'kind: stack\ndepends:\n- a.bst\n',
    });
    const errors = await errorsOf(rig, ['a.bst']);
    assert.deepEqual(
      errors.map((e) => e.message),
      ['dependency cycle: a.bst → b.bst → c.bst → a.bst'],
    );
    assert.equal(errors[0]?.provenance, 'elements/c.bst:3:3');
  });

  it('refuses list directives onto a list no layer defines, and redefinitions of protected variables', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/a.bst':
        'kind: manual\nvariables:\n  max-jobs: "9"\npublic:\n  bst:\n    integration-commands:\n      (>):\n      - ldconfig\n',
    });
    const errors = await errorsOf(rig, ['a.bst']);
    assert.deepEqual(errors.map(brief), [
      'elements/a.bst:3:3 load/protected-variable',
      'elements/a.bst:7:7 load/list-directive',
    ]);
  });

  it('refuses a BuildStream 1 project and a project without a name, saying what to write', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': 'format-version: 18\n' });
    const p = await loadProject(rig.dir);
    assert.ok(!p.ok);
    assert.deepEqual(
      p.errors.map((e) => e.code),
      ['load/unknown-key', 'load/missing-key', 'load/missing-key'],
    );
    assert.match(p.errors.map((e) => e.hint ?? '').join('\n'), /BuildStream 1 project/);
  });
});
