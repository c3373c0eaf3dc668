// Builds through the command line, end to end: real gcc in the real sandbox,
// small projects written with ProjectRig, the CLI run as a child process.
// A build killed with SIGKILL leaves a cache that verifies and a rebuild
// that succeeds; a failing element says where and why and stores nothing; a
// tar source with the wrong sha256 is refused with both digests; a change at
// the bottom of a chain rebuilds exactly its reverse dependencies; an
// independent REAPI client's action inside a build is recorded; and `show`
// prints each state as BuildStream does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCache } from '../helpers/cache-check.js';
import { cacheDirOf, ran, specbuild, startSpecbuild } from '../helpers/cli-rig.js';
import { assertGolden } from '../helpers/golden.js';
import { repoRoot } from '../helpers/paths.js';
import { onPath } from '../helpers/prereq.js';
import { runProcess } from '../helpers/process.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { run } from '../helpers/source-rig.js';

interface ReportElement {
  name: string;
  state: string;
  strong_key: string | null;
  subactions: string[];
  error: string | null;
}

/** `specbuild build --report` of `targets`: its run and the states it reports. */
async function buildWithReport(rig: ProjectRig, targets: string[], globals: string[] = []) {
  const file = join(rig.scratch, `report-${Date.now()}.json`);
  const r = await specbuild(rig, [...globals, 'build', '--report', file, ...targets]);
  const elements = existsSync(file)
    ? (JSON.parse(await readFile(file, 'utf8')) as { elements: ReportElement[] }).elements
    : [];
  const states = Object.fromEntries(elements.map((e) => [e.name, e.state]));
  return { run: r, elements, states };
}

async function fullKey(rig: ProjectRig, element: string): Promise<string> {
  const r = await specbuild(rig, ['show', '--deps', 'none', '--format', '%{full-key}', element]);
  assert.equal(r.code, 0, ran(r));
  return r.stdout.trim();
}

/** Processes whose command line mentions `marker` (a path only our runs use). */
function processesWith(marker: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** A manual element compiling `name`.c from a local source, and installing what `install` says. */
function ccElement(opts: {
  src: string;
  build: string[];
  install: string[];
  deps?: string[];
  extra?: string[];
}): string {
  return [
    'kind: manual',
    ...(opts.deps === undefined ? [] : ['build-depends:', ...opts.deps.map((d) => `- ${d}`)]),
    'sources:',
    '- kind: local',
    `  path: ${opts.src}`,
    ...(opts.extra ?? []),
    'config:',
    '  build-commands:',
    ...opts.build.map((c) => `  - ${c}`),
    '  install-commands:',
    ...opts.install.map((c) => `  - ${c}`),
    '',
  ].join('\n');
}

/** A sleep long enough never to end during a test, and unique to this file. */
const NAP = `600.${process.pid}`;

describe('specbuild build, end to end', () => {
  it('survives kill -9 mid-build: the cache verifies and a rebuild succeeds', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/first.bst': ccElement({
        src: 'first',
        build: ['gcc -c first.c -o first.o'],
        install: ['install -D first.o %{install-root}%{libdir}/first.o'],
      }),
      'first/first.c': 'int first(void) { return 1; }\n',
      'elements/slow.bst': ccElement({
        src: 'slow',
        deps: ['first.bst'],
        // NAP is kept out of the key: the rebuild below is under the same key.
        // Its value marks the command's process (a sandbox forked by the
        // spawner has no command line of its own to find it by).
        extra: ['environment:', `  NAP: "${NAP}"`, 'environment-nocache:', '- NAP'],
        build: ['gcc -c slow.c -o slow.o', 'echo compiled, now sleeping', 'sleep "$NAP"'],
        install: ['install -D slow.o %{install-root}%{libdir}/slow.o'],
      }),
      'slow/slow.c': 'int slow(void) { return 2; }\n',
    });
    const cacheDir = cacheDirOf(rig);
    const key = await fullKey(rig, 'slow.bst');
    const build = await startSpecbuild(rig, ['build', 'slow.bst'], async (out) => {
      const log = /log slow\.bst: (\S+)/.exec(out)?.[1];
      return (
        log !== undefined && (await readFile(log, 'utf8').catch(() => '')).includes('sleeping')
      );
    });
    assert.equal(processesWith(`sleep\0${NAP}\0`), 1, 'its sandbox is running');
    const exit = await build.kill();
    assert.equal(exit.signal, 'SIGKILL');
    // Its sandbox goes with it (the helper dies with its caller).
    const left = (): number => processesWith(cacheDir) + processesWith(`sleep\0${NAP}\0`);
    for (let i = 0; i < 500 && left() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(left(), 0, 'no process of the killed build is left');
    assert.deepEqual(await verifyCache(cacheDir), []);
    assert.ok(!existsSync(join(cacheDir, 'refs', 'artifacts', 'test', 'slow', key)));

    await rig.write({
      'elements/slow.bst': (await rig.read('elements/slow.bst')).replace(
        `NAP: "${NAP}"`,
        'NAP: "0"',
      ),
    });
    assert.equal(await fullKey(rig, 'slow.bst'), key, 'the same key');
    const again = await buildWithReport(rig, ['slow.bst']);
    assert.equal(again.run.code, 0, ran(again.run));
    assert.deepEqual(again.states, { 'first.bst': 'cached', 'slow.bst': 'built' });
    assert.deepEqual(await verifyCache(cacheDir), []);
    // What the killed run left under cache/build is gone.
    assert.ok(!existsSync(join(cacheDir, 'build', String(build.pid))));
  });

  it('reports a failing element with its last log lines and log path, and stores nothing for it', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/fail.bst': ccElement({
        src: 'fail',
        build: [
          'gcc -c ok.c -o ok.o',
          'for i in $(seq 1 30); do echo "log line $i"; done',
          'gcc -c broken.c -o broken.o',
        ],
        install: ['true'],
      }),
      'fail/ok.c': 'int ok(void) { return 0; }\n',
      'fail/broken.c': 'int broken(void) { return }\n',
    });
    const key = await fullKey(rig, 'fail.bst');
    const r = await buildWithReport(rig, ['fail.bst']);
    assert.equal(r.run.code, 1, ran(r.run));
    assert.deepEqual(r.states, { 'fail.bst': 'failed' });
    const log = join(cacheDirOf(rig), 'logs', 'test', 'fail', `${key}.log`);
    const stderr = r.run.stderr;
    assert.match(r.run.stdout, /^build failed: 0 built, 0 cached, 1 failed, 0 skipped in /);
    assert.ok(
      stderr.includes(`\nfail.bst: fail.bst failed (exit code 1); last lines of its log:\n`),
      stderr,
    );
    assert.ok(stderr.includes(`  hint: full log: ${log}\n`), stderr);
    // The tail of the log: gcc's complaint and the lines before it, not the early ones.
    const tail = stderr.slice(stderr.indexOf('last lines of its log:'));
    assert.match(tail, /\n {4}log line 30\n/);
    assert.match(tail, /broken\.c:1:\d+: error: expected expression/);
    assert.doesNotMatch(tail, /\n {4}log line 1\n/);
    assert.match(await readFile(log, 'utf8'), /^\[specbuild\] build-commands\nlog line 1\n/);
    // Nothing stored under its keys; show says failed.
    const refs = join(cacheDirOf(rig), 'refs', 'artifacts');
    assert.deepEqual(existsSync(refs) ? readdirSync(refs) : [], []);
    const show = await specbuild(rig, ['show', 'fail.bst']);
    assert.equal(show.stdout, `      failed ${key} fail.bst\n`);
  });

  it('refuses a tar source whose sha256 is not its ref, with both digests', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    const up = join(rig.scratch, 'upstream');
    await mkdir(join(up, 'pkg'), { recursive: true });
    await writeFile(join(up, 'pkg', 'pkg.c'), 'int pkg;\n');
    run('tar', ['-C', up, '-cf', join(up, 'pkg.tar'), 'pkg']);
    const actual = createHash('sha256')
      .update(readFileSync(join(up, 'pkg.tar')))
      .digest('hex');
    const expected = '0'.repeat(64);
    await rig.write({
      'elements/pkg.bst': [
        'kind: manual',
        'sources:',
        '- kind: tar',
        `  url: file://${join(up, 'pkg.tar')}`,
        `  ref: ${expected}`,
        'config:',
        '  build-commands:',
        '  - gcc -c pkg.c',
        '',
      ].join('\n'),
    });
    const r = await buildWithReport(rig, ['pkg.bst']);
    assert.equal(r.run.code, 1, ran(r.run));
    assert.deepEqual(r.states, { 'pkg.bst': 'failed' });
    assert.ok(
      r.run.stderr.includes(`has sha256 ${actual}, but its ref is ${expected}`),
      r.run.stderr,
    );
    assert.ok(!existsSync(join(cacheDirOf(rig), 'sources', 'tar', actual)));
    assert.ok(!existsSync(join(cacheDirOf(rig), 'sources', 'tar', expected)));
  });

  it('rebuilds exactly the reverse dependencies of a changed element', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/lib.bst': ccElement({
        src: 'lib',
        build: ['gcc -c lib.c -o lib.o', 'ar rcs liblib.a lib.o'],
        install: [
          'install -D -m 644 liblib.a %{install-root}%{libdir}/liblib.a',
          'install -D -m 644 lib.h %{install-root}%{includedir}/lib.h',
        ],
      }),
      'lib/lib.c': 'int lib(void) { return 1; }\n',
      'lib/lib.h': 'int lib(void);\n',
      'elements/util.bst': ccElement({
        src: 'util',
        build: ['gcc -c util.c -o util.o', 'ar rcs libextra.a util.o'],
        install: ['install -D -m 644 libextra.a %{install-root}%{libdir}/libextra.a'],
      }),
      'util/util.c': 'int util(void) { return 10; }\n',
      'elements/app.bst': ccElement({
        src: 'app',
        deps: ['lib.bst', 'util.bst'],
        build: ['gcc -o app app.c -llib -lextra'],
        install: ['install -D app %{install-root}%{bindir}/app'],
      }),
      'app/app.c':
        '#include <stdio.h>\n#include <lib.h>\nint util(void);\nint main(void) { printf("%d\\n", lib() + util()); return 0; }\n',
      'elements/top.bst': 'kind: stack\ndepends:\n- app.bst\n',
      'elements/other.bst': ccElement({
        src: 'util',
        deps: ['util.bst'],
        build: ['true'],
        install: ['cp util.c %{install-root}/'],
      }),
      'elements/all.bst': 'kind: stack\ndepends:\n- top.bst\n- other.bst\n',
    });
    const first = await buildWithReport(rig, ['all.bst']);
    assert.equal(first.run.code, 0, ran(first.run));
    for (const state of Object.values(first.states)) assert.equal(state, 'built');
    const app = async (): Promise<string> => {
      const r = await specbuild(rig, ['shell', 'app.bst', '--', 'app']);
      assert.equal(r.code, 0, ran(r));
      return r.stdout;
    };
    assert.equal(await app(), '11\n');

    await rig.write({ 'lib/lib.c': 'int lib(void) { return 2; }\n' });
    const second = await buildWithReport(rig, ['all.bst']);
    assert.equal(second.run.code, 0, ran(second.run));
    assert.deepEqual(second.states, {
      'lib.bst': 'built',
      'util.bst': 'cached',
      'app.bst': 'built',
      'top.bst': 'built',
      'other.bst': 'cached',
      'all.bst': 'built',
    });
    assert.equal(await app(), '12\n');
    const third = await buildWithReport(rig, ['all.bst']);
    assert.ok(
      Object.values(third.states).every((s) => s === 'cached'),
      JSON.stringify(third.states),
    );
  });

  it("records the action of a REAPI client not ours, run inside the element's build", async () => {
    const python = '/usr/bin/python3';
    assert.ok(
      existsSync(python) && onPath('protoc'),
      'the Python REAPI client needs /usr/bin/python3 with grpc and protoc: apt-get install protobuf-compiler python3-grpcio python3-protobuf bazel-bootstrap-source',
    );
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/python-client.bst': [
        'kind: manual',
        'sources:',
        '- kind: local',
        '  path: client',
        'environment:',
        '  PYTHONDONTWRITEBYTECODE: "1"',
        'sandbox:',
        '  remote-apis-socket:',
        '    path: /run/reapi.sock',
        'config:',
        '  build-commands:',
        '  - python3 execute_one.py unix:/run/reapi.sock generated > result.json',
        '  install-commands:',
        '  - install -D -m 644 result.json %{install-root}/result.json',
        '',
      ].join('\n'),
    });
    // The client and the message modules protoc makes for it (on the host,
    // as the interop test does), staged into the build as its source.
    const client = join(rig.dir, 'client');
    await mkdir(join(client, 'generated'), { recursive: true });
    for (const f of ['reapi_client.py', 'execute_one.py'])
      copyFileSync(join(repoRoot, 'test', 'interop', f), join(client, f));
    const gen = await runProcess(
      python,
      [
        '-c',
        'import sys; sys.path.insert(0, sys.argv[1]); import reapi_client; reapi_client.generate_modules(sys.argv[2])',
        client,
        join(client, 'generated'),
      ],
      { timeoutMs: 60_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
    );
    assert.equal(gen.code, 0, ran(gen));

    const r = await buildWithReport(rig, ['python-client.bst']);
    assert.equal(r.run.code, 0, ran(r.run));
    const out = join(rig.scratch, 'out');
    const co = await specbuild(rig, [
      'artifact',
      'checkout',
      'python-client.bst',
      '--directory',
      out,
    ]);
    assert.equal(co.code, 0, ran(co));
    const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8')) as {
      action: string;
      output: string;
    };
    assert.equal(result.output, 'executed for python\n');
    assert.deepEqual(r.elements[0]?.subactions, [result.action]);
  });

  it('shows every state exactly', async () => {
    await using rig = await ProjectRig.create({ 'project.conf': PROJECT_CONF });
    const up = join(rig.scratch, 'upstream');
    await mkdir(join(up, 'pkg'), { recursive: true });
    await writeFile(join(up, 'pkg', 'pkg.c'), 'int pkg;\n');
    run('tar', ['-C', up, '-cf', join(up, 'pkg.tar'), 'pkg']);
    const sha = createHash('sha256')
      .update(readFileSync(join(up, 'pkg.tar')))
      .digest('hex');
    const tar = (ref: string | undefined): string =>
      [
        'kind: manual',
        'sources:',
        '- kind: tar',
        `  url: file://${join(up, 'pkg.tar')}`,
        ...(ref === undefined ? [] : [`  ref: ${ref}`]),
        'config:',
        '  build-commands:',
        '  - gcc -c pkg.c',
        '',
      ].join('\n');
    await rig.write({
      'elements/base.bst': ccElement({
        src: 'base',
        build: ['gcc -c base.c'],
        install: ['install -D base.o %{install-root}%{libdir}/base.o'],
      }),
      'base/base.c': 'int base;\n',
      'elements/mid.bst': 'kind: manual\nbuild-depends:\n- base.bst\n',
      'elements/top.bst': 'kind: manual\nbuild-depends:\n- mid.bst\n',
      'elements/fetch-me.bst': tar(sha),
      'elements/no-ref.bst': tar(undefined),
      'elements/all.bst': 'kind: stack\ndepends:\n- top.bst\n- fetch-me.bst\n- no-ref.bst\n',
      'elements/some.bst': 'kind: stack\ndepends:\n- top.bst\n- fetch-me.bst\n',
    });
    const built = await specbuild(rig, ['build', 'base.bst']);
    assert.equal(built.code, 0, ran(built));
    const keys = new Map<string, string>();
    for (const e of ['base.bst', 'mid.bst', 'top.bst', 'fetch-me.bst', 'some.bst'])
      keys.set(await fullKey(rig, e), `<key of ${e}>`);
    let text = '';
    for (const args of [
      ['show', 'all.bst'],
      ['show', 'some.bst'],
      ['show', '--deps', 'none', '--format', '%{name}: %{state} %{key}', 'top.bst', 'no-ref.bst'],
    ]) {
      const r = await specbuild(rig, args);
      assert.equal(r.code, 0, ran(r));
      let out = r.stdout;
      for (const [k, v] of keys) out = out.replaceAll(k, v).replaceAll(k.slice(0, 8), v);
      text += `$ specbuild ${args.join(' ')}\n${out}\n`;
    }
    assertGolden('show.expected', text);
  });
});
