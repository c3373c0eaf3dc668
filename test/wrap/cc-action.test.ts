// The compile action specbuild-cc builds: exactly what goes into it, that the
// same command gives the same digest, the pre-2.1 shape, and the compiler
// binary being part of it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  ActionSchema,
  CommandSchema,
  DirectorySchema,
  digestKey,
  digestOfFile,
  fromPb,
  type Digest,
} from '../../src/reapi/index.js';
import {
  ACTION_PATH,
  COMPILER_DIGEST_ENV,
  DirectCache,
  StatCache,
  absentCandidates,
  buildCompileAction,
  kindAt,
  parseSearchPath,
  linkerInputs,
  ccConfig,
  type BuiltAction,
} from '../../src/wrap/index.js';
import { tempDir } from '../helpers/tmp.js';

const API = { low: '2.0', high: '2.3' };

function message<T>(built: BuiltAction, d: Digest, decode: (b: Uint8Array) => T): T {
  const u = built.uploads.get(digestKey(d));
  assert.ok(u?.bytes, `no bytes uploaded for ${digestKey(d)}`);
  return decode(u.bytes);
}

function decoded(built: BuiltAction) {
  const action = message(built, built.action, (b) => fromBinary(ActionSchema, b));
  const command = message(built, fromPb(action.commandDigest), (b) => fromBinary(CommandSchema, b));
  return { action, command };
}

/** Paths of every file in the input root. */
function inputFiles(built: BuiltAction, root: Digest, prefix = ''): string[] {
  const dir = message(built, root, (b) => fromBinary(DirectorySchema, b));
  return [
    ...dir.files.map((f) => prefix + f.name),
    ...dir.directories.flatMap((d) => inputFiles(built, fromPb(d.digest), `${prefix}${d.name}/`)),
  ];
}

describe('specbuild-cc compile action', () => {
  it('holds the arguments, a fixed environment, sorted outputs, the toolchain and every input', async () => {
    await using dir = await tempDir();
    mkdirSync(join(dir.path, 'inc'));
    writeFileSync(join(dir.path, 'inc', 'x.h'), '#define X 1\n');
    writeFileSync(join(dir.path, 'a.c'), '#include <stdio.h>\n#include "x.h"\nint a = X;\n');
    const env = new Map([
      ['PATH', process.env.PATH ?? '/usr/bin:/bin'],
      ['HOME', '/home/someone'],
      ['LANG', 'C.UTF-8'],
      ['SPECBUILD_SERVER', 'grpc://example:1'],
    ]);
    const argv = ['gcc', '-Iinc', '-MMD', '-c', 'a.c', '-o', 'a.o'];
    const req = { argv, cwd: dir.path, env };
    const built = await buildCompileAction(req, ccConfig(env), new StatCache(undefined), API);
    assert.ok(!('local' in built), JSON.stringify(built));
    const { action, command } = decoded(built);
    assert.deepEqual(command.arguments, argv);
    assert.equal(command.workingDirectory, dir.path.slice(1));
    assert.deepEqual(command.outputPaths, ['a.d', 'a.o']);
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- checking the legacy field is empty
    assert.deepEqual(command.outputFiles, []);
    const gcc = await digestOfFile(realpathSync('/usr/bin/gcc'));
    assert.deepEqual(
      command.environmentVariables.map((v) => [v.name, v.value]),
      [
        ['LANG', 'C.UTF-8'],
        ['PATH', ACTION_PATH],
        [COMPILER_DIGEST_ENV, digestKey(gcc)],
      ],
      'only the allow-list, the fixed PATH and the compiler digest; never HOME or the user PATH',
    );
    assert.deepEqual(
      action.platform?.properties.map((p) => p.name),
      ['ISA', 'OSFamily', 'specbuild-toolchain'],
    );
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- checking the legacy field is unset
    assert.equal(command.platform, undefined);
    const files = inputFiles(built, fromPb(action.inputRootDigest));
    const wd = dir.path.slice(1);
    for (const f of [`${wd}/a.c`, `${wd}/inc/x.h`, 'usr/include/stdio.h'])
      assert.ok(files.includes(f), `${f} is not in the input root: ${files.join(', ')}`);

    // The same command on the same files: the same digest, in a fresh cache.
    const again = await buildCompileAction(req, ccConfig(env), new StatCache(undefined), API);
    assert.ok(!('local' in again));
    assert.equal(digestKey(again.action), digestKey(built.action));

    // A changed header changes the action.
    writeFileSync(join(dir.path, 'inc', 'x.h'), '#define X 2\n');
    const changed = await buildCompileAction(req, ccConfig(env), new StatCache(undefined), API);
    assert.ok(!('local' in changed));
    assert.notEqual(digestKey(changed.action), digestKey(built.action));
  });

  it("reads a relative @response file from the command's directory, not the daemon's", async () => {
    await using dir = await tempDir();
    mkdirSync(join(dir.path, 'inc'));
    writeFileSync(join(dir.path, 'inc', 'x.h'), '#define X 1\n');
    writeFileSync(join(dir.path, 'a.c'), '#include "x.h"\nint a = X;\n');
    writeFileSync(join(dir.path, 'args.rsp'), '-Iinc -c a.c -o a.o\n');
    assert.notEqual(process.cwd(), dir.path);
    const env = new Map([['PATH', '/usr/bin:/bin']]);
    const built = await buildCompileAction(
      { argv: ['gcc', '@args.rsp'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.ok(!('local' in built), JSON.stringify(built));
    const { command } = decoded(built);
    assert.deepEqual(command.arguments, ['gcc', '-Iinc', '-c', 'a.c', '-o', 'a.o']);
    assert.deepEqual(command.outputPaths, ['a.o']);
  });

  it('uses output_files and the Command platform for a REAPI 2.0 server', async () => {
    await using dir = await tempDir();
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([['PATH', '/usr/bin:/bin']]);
    const built = await buildCompileAction(
      { argv: ['gcc', '-c', 'a.c'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      { low: '2.0', high: '2.0' },
    );
    assert.ok(!('local' in built));
    const { action, command } = decoded(built);
    /* eslint-disable @typescript-eslint/no-deprecated -- REAPI 2.0's fields are the point here */
    assert.deepEqual(command.outputFiles, ['a.o']);
    assert.deepEqual(command.outputPaths, []);
    assert.equal(action.platform, undefined);
    assert.equal(command.platform?.properties.length, 3);
    /* eslint-enable @typescript-eslint/no-deprecated */
  });

  it('carries the include-search variables, and runs locally with ones it cannot honour', async () => {
    await using dir = await tempDir();
    mkdirSync(join(dir.path, 'extra'));
    writeFileSync(join(dir.path, 'extra', 'extra.h'), '#define E 3\n');
    writeFileSync(join(dir.path, 'a.c'), '#include <extra.h>\nint a = E;\n');
    const env = new Map([
      ['PATH', '/usr/bin:/bin'],
      ['CPATH', join(dir.path, 'extra')],
    ]);
    const req = { argv: ['gcc', '-c', 'a.c'], cwd: dir.path, env };
    const built = await buildCompileAction(req, ccConfig(env), new StatCache(undefined), API);
    assert.ok(!('local' in built), JSON.stringify(built));
    const { action, command } = decoded(built);
    assert.equal(
      command.environmentVariables.find((v) => v.name === 'CPATH')?.value,
      join(dir.path, 'extra'),
    );
    assert.ok(
      inputFiles(built, fromPb(action.inputRootDigest)).includes(
        `${dir.path.slice(1)}/extra/extra.h`,
      ),
    );
    const withDeps = new Map([...env, ['DEPENDENCIES_OUTPUT', 'deps.d']]);
    const local = await buildCompileAction(
      { ...req, env: withDeps },
      ccConfig(withDeps),
      new StatCache(undefined),
      API,
    );
    assert.deepEqual(local, { local: 'DEPENDENCIES_OUTPUT is set' });
  });

  it('runs locally when an output directory is missing, as gcc would fail there', async () => {
    await using dir = await tempDir();
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([['PATH', '/usr/bin:/bin']]);
    const built = await buildCompileAction(
      { argv: ['gcc', '-c', 'a.c', '-o', 'no/such/dir/a.o'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.deepEqual(built, { local: 'the directory of output no/such/dir/a.o does not exist' });
  });

  it("takes the platform from SPECBUILD_REMOTE_PLATFORM, for a cluster's workers", async () => {
    await using dir = await tempDir();
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([
      ['PATH', '/usr/bin:/bin'],
      ['SPECBUILD_REMOTE_PLATFORM', 'container-image=docker://img@sha256:ab=cd, OSFamily=linux'],
    ]);
    const built = await buildCompileAction(
      { argv: ['gcc', '-c', 'a.c'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.ok(!('local' in built));
    assert.deepEqual(
      decoded(built).action.platform?.properties.map((p) => `${p.name}=${p.value}`),
      ['OSFamily=linux', 'container-image=docker://img@sha256:ab=cd'],
    );
    const bad = ccConfig(new Map([['SPECBUILD_REMOTE_PLATFORM', 'OSFamily']]));
    assert.equal(typeof bad.platform, 'string');
    assert.match(String(bad.platform), /"OSFamily" is not KEY=VALUE/);
  });

  it('runs locally when the compiler on PATH is not the one the action would run', async () => {
    await using dir = await tempDir();
    const bin = join(dir.path, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'real-cc'), '#!/bin/sh\nexec /usr/bin/gcc "$@"\n', { mode: 0o755 });
    symlinkSync('real-cc', join(bin, 'gcc'));
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([['PATH', `${bin}:/usr/bin:/bin`]]);
    const built = await buildCompileAction(
      { argv: ['gcc', '-c', 'a.c'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.ok('local' in built);
    assert.match(built.local, /real-cc here but .* on the action PATH/);

    // Named by its path, the same compiler is its own action (its digest in it).
    const byPath = await buildCompileAction(
      { argv: [join(bin, 'gcc'), '-c', 'a.c'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.ok(!('local' in byPath), JSON.stringify(byPath));
    const { command } = decoded(byPath);
    const own = await digestOfFile(join(bin, 'real-cc'));
    assert.equal(
      command.environmentVariables.find((v) => v.name === COMPILER_DIGEST_ENV)?.value,
      digestKey(own),
    );
  });

  it("names the compiler the kernel runs when a link's target has .. after another link", async () => {
    // tc/bin/cc -> ../current/../bin/real: current is a link to
    // releases/12, so the kernel runs releases/bin/real; read as text,
    // current/.. is tc, and tc/bin/real is another program.
    await using dir = await tempDir();
    const tc = join(dir.path, 'tc');
    mkdirSync(join(tc, 'releases', '12'), { recursive: true });
    mkdirSync(join(tc, 'releases', 'bin'));
    mkdirSync(join(tc, 'bin'));
    writeFileSync(join(tc, 'releases', 'bin', 'real'), '#!/bin/sh\nexec /usr/bin/gcc "$@"\n', {
      mode: 0o755,
    });
    writeFileSync(join(tc, 'bin', 'real'), '#!/bin/sh\nexit 99\n', { mode: 0o755 });
    symlinkSync('releases/12', join(tc, 'current'));
    symlinkSync('../current/../bin/real', join(tc, 'bin', 'cc'));
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([['PATH', '/usr/bin:/bin']]);
    const built = await buildCompileAction(
      { argv: [join(tc, 'bin', 'cc'), '-c', 'a.c'], cwd: dir.path, env },
      ccConfig(env),
      new StatCache(undefined),
      API,
    );
    assert.ok(!('local' in built), JSON.stringify(built));
    const runs = await digestOfFile(join(tc, 'releases', 'bin', 'real'));
    assert.equal(
      decoded(built).command.environmentVariables.find((v) => v.name === COMPILER_DIGEST_ENV)
        ?.value,
      digestKey(runs),
    );
  });

  it('finds a compiler installed earlier on PATH after it appeared (within a second)', async () => {
    await using dir = await tempDir();
    const bin = join(dir.path, 'bin');
    mkdirSync(bin);
    writeFileSync(join(dir.path, 'a.c'), 'int a;\n');
    const env = new Map([['PATH', `${bin}:/usr/bin:/bin`]]);
    const build = () =>
      buildCompileAction(
        { argv: ['gcc', '-c', 'a.c'], cwd: dir.path, env },
        ccConfig(env),
        new StatCache(undefined),
        API,
      );
    const before = await build();
    assert.ok(!('local' in before), JSON.stringify(before));
    // Another gcc, earlier on PATH: the command now runs it, not /usr/bin's.
    writeFileSync(join(bin, 'gcc'), '#!/bin/sh\nexec /usr/bin/gcc "$@"\n', { mode: 0o755 });
    await new Promise((r) => setTimeout(r, 1100));
    const after = await build();
    assert.ok('local' in after, 'the action may not name the compiler found before');
    assert.match(after.local, /bin\/gcc here but .* on the action PATH/);
  });
});

/**
 * A file system for absentCandidates: each path a file, or with a trailing
 * slash a directory; every directory above them a directory.
 */
function tree(paths: string[]): Map<string, 'dir' | 'other'> {
  const out = new Map<string, 'dir' | 'other'>();
  for (const p of paths) {
    const path = p.endsWith('/') ? p.slice(0, -1) : p;
    out.set(path, p.endsWith('/') ? 'dir' : 'other');
    for (let at = path.indexOf('/', 1); at > 0; at = path.indexOf('/', at + 1))
      out.set(path.slice(0, at), 'dir');
  }
  return out;
}

/** gcc 12's default <...> directories on Debian: its system headers' places. */
const GCC_SYSTEM = [
  '/usr/lib/gcc/x86_64-linux-gnu/12/include',
  '/usr/local/include',
  '/usr/include/x86_64-linux-gnu',
  '/usr/include',
];

/** A command run in /p with no -include or -imacros. */
const inP = { cwd: '/p', forced: [], system: GCC_SYSTEM };

describe('specbuild-cc direct mode (on unless SPECBUILD_DIRECT=0)', () => {
  /** Writes `files` (path: text) under root, older than a second so the stat cache trusts them. */
  function files(root: string, all: Record<string, string>): void {
    const old = new Date(Date.now() - 60_000);
    for (const [f, text] of Object.entries(all)) {
      mkdirSync(dirname(join(root, f)), { recursive: true });
      writeFileSync(join(root, f), text);
      utimesSync(join(root, f), old, old);
    }
  }

  /** A project for `gcc -Ifirst -Iinc -c a.c`: a.c includes x.h, found in inc. */
  function project(root: string, first = true): void {
    if (first) mkdirSync(join(root, 'first'));
    files(root, { 'inc/x.h': '#define X 1\n', 'a.c': '#include "x.h"\nint a = X;\n' });
  }

  const directEnv = new Map([
    ['PATH', '/usr/bin:/bin'],
    ['SPECBUILD_DIRECT', '1'],
  ]);
  const plainEnv = new Map([
    ['PATH', '/usr/bin:/bin'],
    ['SPECBUILD_DIRECT', '0'],
  ]);

  /** Builds `argv` in cwd with one stat cache and direct memory. */
  function builderOf(cwd: string, argv: string[], direct = new DirectCache(undefined)) {
    const req = { argv, cwd, env: directEnv };
    const stats = new StatCache(undefined);
    return async (env = directEnv) => {
      const b = await buildCompileAction({ ...req, env }, ccConfig(env), stats, API, direct);
      assert.ok(!('local' in b), JSON.stringify(b));
      return b;
    };
  }

  /** Builds `gcc -Ifirst -Iinc -c a.c` in root with one stat cache and direct memory. */
  function builder(root: string) {
    return builderOf(root, ['gcc', '-Ifirst', '-Iinc', '-c', 'a.c']);
  }

  /**
   * Builds `argv` in cwd twice (a scan, then a direct hit), runs `change`,
   * and checks that the next build scans again and makes the action a build
   * without direct mode makes, then that the one after is a direct hit again.
   */
  async function rescansAfter(cwd: string, argv: string[], change: () => void): Promise<void> {
    const build = builderOf(cwd, argv);
    const first = await build();
    assert.equal(first.deps, 'scan');
    assert.equal((await build()).deps, 'direct');
    change();
    const after = await build();
    assert.equal(after.deps, 'scan', 'a direct hit after the change');
    assert.notEqual(digestKey(after.action), digestKey(first.action));
    const plain = await builderOf(cwd, argv)(plainEnv);
    assert.equal(digestKey(after.action), digestKey(plain.action));
    assert.equal((await build()).deps, 'direct');
  }

  it('skips the scan while every listed input is unchanged, and scans again when one changes', async () => {
    await using dir = await tempDir();
    project(dir.path);
    const build = builder(dir.path);
    const first = await build();
    assert.equal(first.deps, 'scan');
    const second = await build();
    assert.equal(second.deps, 'direct');
    assert.equal(digestKey(second.action), digestKey(first.action));

    // On by default; SPECBUILD_DIRECT=0 turns it off.
    assert.equal((await build(new Map([['PATH', '/usr/bin:/bin']]))).deps, 'direct');
    assert.equal((await build(plainEnv)).deps, 'scan');
    // Another include search path is another command: scanned.
    const withCpath = new Map([...directEnv, ['CPATH', join(dir.path, 'first')]]);
    assert.equal((await build(withCpath)).deps, 'scan');
    assert.equal((await build(withCpath)).deps, 'direct');

    // A changed header: scanned again, a new action, the same as without direct mode.
    writeFileSync(join(dir.path, 'inc', 'x.h'), '#define X 2\n');
    const changed = await build();
    assert.equal(changed.deps, 'scan');
    assert.notEqual(digestKey(changed.action), digestKey(first.action));
    const fresh = await builder(dir.path)(plainEnv);
    assert.equal(digestKey(changed.action), digestKey(fresh.action));
  });

  it('sees a new header that would shadow a listed one, earlier on the search path or beside the includer', async () => {
    await using dir = await tempDir();
    project(dir.path);
    const build = builder(dir.path);
    const first = await build();
    assert.equal((await build()).deps, 'direct');
    // first/x.h now comes earlier on the include path than inc/x.h.
    writeFileSync(join(dir.path, 'first', 'x.h'), '#define X 3\n');
    const after = await build();
    assert.equal(after.deps, 'scan');
    assert.notEqual(digestKey(after.action), digestKey(first.action));
    const plain = await builder(dir.path)(plainEnv);
    assert.equal(digestKey(after.action), digestKey(plain.action));
    assert.equal((await build()).deps, 'direct');
    // A quoted include looks beside the including file first: ./x.h shadows both.
    writeFileSync(join(dir.path, 'x.h'), '#define X 4\n');
    const beside = await build();
    assert.equal(beside.deps, 'scan');
    const root = fromPb(decoded(beside).action.inputRootDigest);
    const files = inputFiles(beside, root).filter((f) => f.endsWith('x.h'));
    assert.deepEqual(files, [`${dir.path.slice(1)}/x.h`]);
  });

  it('lists where each header would have been found first, and only paths that do not exist', () => {
    const path = parseSearchPath(
      [
        'ignoring nonexistent directory "/nowhere"',
        '#include "..." search starts here:',
        ' q',
        '#include <...> search starts here:',
        ' inc',
        ' /usr/local/include',
        ' /usr/include',
        'End of search list.',
      ].join('\n'),
      '/p',
    );
    assert.deepEqual(path, {
      quote: ['/p/q'],
      bracket: ['/p/inc', '/usr/local/include', '/usr/include'],
      missing: ['/nowhere'],
    });
    const fs = tree([
      '/usr/include/stdio.h',
      '/usr/local/include/',
      '/p/inc/x.h',
      '/p/inc/sub/y.h',
    ]);
    fs.set('/p/q', 'dir').set('/p/a.c', 'other');
    assert.deepEqual(
      absentCandidates(
        '/p/a.c',
        ['/p/a.c', '/usr/include/stdio.h', '/p/inc/x.h', '/p/inc/sub/y.h'],
        path,
        inP,
        (p) => fs.get(p),
      ),
      [
        '/nowhere', // ignored as nonexistent: before every directory, for every header
        // stdio.h: every directory before /usr/include (no includer dirs: a system header).
        '/p/inc/stdio.h',
        '/p/inc/sub/x.h', // beside the includer inc/sub/y.h
        '/p/inc/sub/sub', // sub/y.h beside the includer inc/sub/y.h: its directory is missing
        '/p/q/stdio.h',
        '/p/q/sub', // for q/sub/y.h
        '/p/q/x.h',
        '/p/sub', // sub/y.h beside a.c
        '/p/x.h',
        '/usr/local/include/stdio.h',
      ].sort(),
    );
  });

  it('tells a missing directory written with .. from the existing one it normalises to', async () => {
    await using dir = await tempDir();
    assert.equal(kindAt(dir.path), 'dir');
    assert.equal(kindAt(`${dir.path}/nosuch/..`), undefined);
    mkdirSync(join(dir.path, 'nosuch'));
    assert.equal(kindAt(`${dir.path}/nosuch/..`), 'dir');
  });

  it('watches the -I directories gcc ignored as nonexistent, for every header found through the chain', () => {
    const path = parseSearchPath(
      [
        'ignoring nonexistent directory "first"',
        'ignoring nonexistent directory "nosuch/.."',
        'cc1: warning: afile: not a directory',
        'ignoring nonexistent directory "/usr/local/include/x86_64-linux-gnu"',
        '#include "..." search starts here:',
        '#include <...> search starts here:',
        ' inc',
        ' /usr/include',
        'End of search list.',
      ].join('\n'),
      '/p',
    );
    // As printed, not normalised: /p/nosuch/.. is missing while /p/nosuch is
    // (normalised, it would be /p, which exists: the search path would be
    // read again at every miss).
    assert.deepEqual(path?.missing, [
      '/p/first',
      '/p/nosuch/..',
      '/p/afile',
      '/usr/local/include/x86_64-linux-gnu',
    ]);
    const deps = ['/p/inc/x.h', '/usr/include/stdio.h'];
    const fs = tree(['/p/a.c', '/p/afile', '/usr/local/include/', ...deps]);
    assert.deepEqual(
      absentCandidates('/p/a.c', ['/p/a.c', ...deps], path, inP, (p) => fs.get(p)),
      [
        '/p/afile/stdio.h', // under a file: watched whole
        '/p/afile/x.h',
        '/p/first', // for first/x.h and first/stdio.h
        '/p/inc/stdio.h',
        '/p/stdio.h', // nosuch/../stdio.h, once nosuch exists
        '/p/x.h', // beside a.c, and nosuch/../x.h
        '/usr/local/include/x86_64-linux-gnu',
      ],
    );
  });

  it('sees a header appear in an -I directory that did not exist (gcc leaves it out of the search list)', async () => {
    await using dir = await tempDir();
    project(dir.path, false);
    const argv = ['gcc', '-Ifirst', '-Iinc', '-c', 'a.c'];
    await rescansAfter(dir.path, argv, () => {
      mkdirSync(join(dir.path, 'first'));
      writeFileSync(join(dir.path, 'first', 'x.h'), '#define X 5\n');
    });
    // The search path read again with first/ on it: a new ./x.h (before
    // first/x.h for a quoted include) is seen too.
    await rescansAfter(dir.path, argv, () => {
      writeFileSync(join(dir.path, 'x.h'), '#define X 6\n');
    });
  });

  it('watches a missing directory once for the headers under it, and a path under a file whole', () => {
    const path = {
      quote: [],
      missing: [],
      bracket: ['/p/inc', '/usr/local/include', '/usr/include'],
    };
    const deps = ['/usr/include/sys/types.h', '/usr/include/sys/stat.h', '/p/inc/util/str.h'];
    // /p/util is a file (a program beside a.c): util/str.h appears there only if it becomes a directory.
    const fs = tree(['/p/a.c', '/p/util', '/usr/local/include/', ...deps]);
    assert.deepEqual(
      absentCandidates('/p/a.c', ['/p/a.c', ...deps], path, inP, (p) => fs.get(p)),
      [
        '/p/inc/sys', // sys/types.h and sys/stat.h
        '/p/inc/util/util', // util/str.h beside itself
        '/p/util/str.h',
        '/usr/local/include/sys',
      ],
    );
  });

  it('runs from a directory holding a file named like an include subdirectory, and sees it become one', async () => {
    await using dir = await tempDir();
    files(dir.path, {
      'inc/util/str.h': 'int v = 1;\n',
      'a.c': '#include "util/str.h"\nint get(void) { return v; }\n',
      util: '#!/bin/sh\n', // a program built beside its source
    });
    await rescansAfter(dir.path, ['gcc', '-Iinc', '-c', 'a.c'], () => {
      rmSync(join(dir.path, 'util'));
      mkdirSync(join(dir.path, 'util'));
      writeFileSync(join(dir.path, 'util', 'str.h'), 'int v = 2;\n');
    });
  });

  it('counts a header under several search directories as found through each (-I. -Iinclude)', () => {
    // include/config.h is under both . and include: gcc found it through
    // include, where ./config.h would have come first.
    const path = { quote: [], missing: [], bracket: ['/p', '/p/include', '/usr/include'] };
    const fs = tree(['/p/src/a.c', '/p/include/config.h', '/usr/include/']);
    const deps = ['/p/src/a.c', '/p/include/config.h'];
    assert.deepEqual(
      absentCandidates('/p/src/a.c', deps, path, inP, (p) => fs.get(p)),
      [
        '/p/config.h', // . before include
        '/p/include/include', // include/config.h beside the includer include/config.h
        '/p/src/config.h', // beside a.c
        '/p/src/include', // include/config.h beside a.c
      ],
    );
  });

  it('sees a new ./config.h shadowing include/config.h under -I. -Iinclude', async () => {
    await using dir = await tempDir();
    files(dir.path, {
      'include/config.h': 'int v = 1;\n',
      'src/a.c': '#include "config.h"\nint get(void) { return v; }\n',
    });
    await rescansAfter(dir.path, ['gcc', '-I.', '-Iinclude', '-c', 'src/a.c'], () => {
      writeFileSync(join(dir.path, 'config.h'), 'int v = 2;\n');
    });
  });

  it('watches the working directory for an -include or -imacros file', () => {
    const path = { quote: [], missing: [], bracket: ['/p/inc', '/usr/include'] };
    const deps = ['/p/inc/pre.h', '/p/inc/m.h'];
    const fs = tree(['/p/src/a.c', '/p/build/', ...deps]);
    const scope = {
      cwd: '/p/build',
      forced: ['pre.h', 'sub/m.h', '/p/inc/m.h'],
      system: GCC_SYSTEM,
    };
    assert.deepEqual(
      absentCandidates('/p/src/a.c', deps, path, scope, (p) => fs.get(p)),
      [
        '/p/build/pre.h',
        '/p/build/sub', // for sub/m.h
        '/p/src/m.h', // beside a.c
        '/p/src/pre.h',
      ],
    );
  });

  it('sees a new -include file in the working directory, where gcc looks for it first', async () => {
    await using dir = await tempDir();
    files(dir.path, {
      'inc/pre.h': 'int v = 1;\n',
      'src/a.c': 'int get(void) { return v; }\n',
      'build/.keep': '',
    });
    const build = join(dir.path, 'build');
    const argv = ['gcc', '-include', 'pre.h', '-I../inc', '-c', '../src/a.c', '-o', 'a.o'];
    await rescansAfter(build, argv, () => {
      writeFileSync(join(build, 'pre.h'), 'int v = 2;\n');
    });
  });

  it("takes the compiler's default directories, not /usr, as the system headers' places", () => {
    // A project in /usr/src: its headers are its own, watched beside its files.
    const path = {
      quote: [],
      missing: [],
      bracket: ['/usr/src/proj/inc', '/usr/local/include', '/usr/include'],
    };
    const deps = ['/usr/src/proj/a.c', '/usr/src/proj/inc/x.h', '/usr/include/stdio.h'];
    const fs = tree(['/usr/local/include/', ...deps]);
    const scope = { cwd: '/usr/src/proj', forced: [], system: GCC_SYSTEM };
    assert.deepEqual(
      absentCandidates(deps[0] ?? '', deps, path, scope, (p) => fs.get(p)),
      [
        '/usr/local/include/stdio.h',
        '/usr/src/proj/inc/stdio.h',
        '/usr/src/proj/x.h', // beside a.c
      ],
    );
  });

  it("reads gcc's default directories: its headers are not watched beside the project's files", async () => {
    await using dir = await tempDir();
    files(dir.path, {
      'inc/x.h': '#define X 1\n',
      'a.c': '#include <stdio.h>\n#include "x.h"\nint a = X;\n',
    });
    const file = join(dir.path, 'direct.json');
    const direct = new DirectCache(file);
    await builderOf(dir.path, ['gcc', '-Iinc', '-c', 'a.c'], direct)();
    await direct.save();
    const entries = Object.values(
      JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>,
    );
    assert.equal(entries.length, 1);
    const { absent } = entries[0] as { absent: string[] };
    // stdio.h and the headers it reads are gcc's: before /usr/include on the
    // chain (inc/ among them) but not beside a.c, as x.h is.
    assert.ok(absent.includes(join(dir.path, 'inc', 'stdio.h')), absent.join('\n'));
    assert.deepEqual(
      absent.filter((p) => p.startsWith(`${dir.path}/`) && !p.startsWith(`${dir.path}/inc/`)),
      [join(dir.path, 'x.h')],
    );
  });

  it('saves and loads its memory, and starts empty from a damaged file', async () => {
    await using dir = await tempDir();
    const file = join(dir.path, 'direct.json');
    const a = new DirectCache(file, 2);
    const f = { path: '/x.h', hash: 'a'.repeat(64), size: 3, executable: false };
    const e = { files: [f], absent: ['/usr/local/include/x.h'] };
    a.set('1'.repeat(64), e);
    a.set('2'.repeat(64), e);
    a.get('1'.repeat(64)); // now the most recently used
    a.set('3'.repeat(64), e); // evicts the least recently used: '2...'
    await a.save();
    const b = await DirectCache.load(file, 2);
    assert.equal(b.size, 2);
    assert.deepEqual(b.get('1'.repeat(64)), e);
    assert.equal(b.get('2'.repeat(64)), undefined);
    writeFileSync(file, '{"broken');
    assert.equal((await DirectCache.load(file)).size, 0);
  });

  it('keeps a remembered result only with its action, and drops a malformed one on load', async () => {
    await using dir = await tempDir();
    const file = join(dir.path, 'direct.json');
    const f = { path: '/x.h', hash: 'a'.repeat(64), size: 3, executable: false };
    const action = `${'b'.repeat(64)}/140`;
    const good = { files: [f], absent: [], action, result: 'CAAS' };
    const entries = {
      ['1'.repeat(64)]: good,
      ['2'.repeat(64)]: { files: [f], absent: [], result: 'CAAS' }, // no action
      ['3'.repeat(64)]: { ...good, result: 'not base64!' },
      ['4'.repeat(64)]: { ...good, result: 'A'.repeat(64 * 1024 + 4) }, // too long
      ['5'.repeat(64)]: { ...good, result: 7 },
    };
    writeFileSync(file, JSON.stringify(entries));
    const c = await DirectCache.load(file);
    assert.equal(c.size, 1);
    assert.deepEqual(c.get('1'.repeat(64)), good);
    // A change in place is saved once said.
    const e = c.get('1'.repeat(64));
    assert.ok(e !== undefined);
    e.result = 'CAES';
    c.changed();
    await c.save();
    assert.equal((await DirectCache.load(file)).get('1'.repeat(64))?.result, 'CAES');
  });
});

describe('linkerInputs', () => {
  it("lists what a real link opens: objects, the archive, crt files, libc's linker script", async () => {
    await using dir = await tempDir();
    writeFileSync(join(dir.path, 'main.c'), 'int lib(void);\nint main(void) { return lib(); }\n');
    writeFileSync(join(dir.path, 'lib.c'), 'int lib(void) { return 0; }\n');
    const sh = (cmd: string) => {
      const r = spawnSync('sh', ['-c', cmd], { cwd: dir.path, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    sh('gcc -c main.c lib.c && ar rcs liblib.a lib.o');
    const files = linkerInputs(sh('gcc main.o liblib.a -Wl,--trace -o /dev/null'));
    assert.ok(files.includes('main.o'), files.join(', '));
    assert.ok(files.includes('liblib.a'), files.join(', '));
    assert.ok(
      files.some((f) => f.endsWith('/crt1.o') || f.endsWith('/Scrt1.o')),
      files.join(', '),
    );
    assert.ok(
      files.some((f) => /\/libc\.so(\.\d+)*$/.test(f)),
      files.join(', '),
    );
    for (const f of files) assert.ok(!f.includes('(') && !f.includes(':'), `not a path: ${f}`);
  });
});
