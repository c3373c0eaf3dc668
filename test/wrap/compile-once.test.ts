// specbuild-cc against a server that executes on this machine (reached through
// a unix socket): a compile missing the cache runs here once, its dependency
// list written by that same compiler run, instead of a -M scan followed by
// the compile. The action it stores must be the one the scan-then-execute
// path builds, byte for byte; a stored result for a command the build
// recorded before is still found.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  ActionSchema,
  digestKey,
  digestOf,
  fromPb,
  parseDigestString,
} from '../../src/reapi/index.js';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import { recordedSeconds } from '../../src/speculative/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { startCliServer } from '../helpers/cli-server.js';
import {
  assertSameOutputs,
  isCompile,
  makeWithWrapper,
  prepareCproject,
  readWrapperLog,
  sourceOf,
  specbuildCc,
  type LogLine,
} from '../helpers/cproject.js';
import { tempDir } from '../helpers/tmp.js';
import { startWrapRig } from '../helpers/wrap-rig.js';
import { repoRoot } from '../helpers/paths.js';
import { pidsWhere, stopDaemonsUnder } from '../helpers/daemons.js';

const bySource = (lines: LogLine[]): Map<string, LogLine> =>
  new Map(lines.filter(isCompile).map((l) => [sourceOf(l), l]));

describe('specbuild-cc with a server on this machine', () => {
  it('learns from Capabilities, through a unix socket only, that the server executes here and where its blobs are', async () => {
    await using dir = await tempDir();
    const unix = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const tcp = await startCliServer(join(dir.path, 'cache-tcp'));
    try {
      const a = await RemoteEndpoint.connect({ target: unix.address });
      assert.equal(a.executesHere, true);
      assert.equal(a.localObjects, realpathSync(join(dir.path, 'cache', 'cas', 'objects')));
      a.close();
      // The same server software over TCP may be another machine's: neither is used.
      const b = await RemoteEndpoint.connect({ target: tcp.address });
      assert.equal(b.executesHere, false);
      assert.equal(b.localObjects, undefined);
      b.close();
    } finally {
      await unix.stop();
      await tcp.stop();
    }
  });

  it('compiles a miss once, storing the very action the scan path builds; hits and header changes as before', async () => {
    await using dir = await tempDir();
    const once = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const remote = await startCliServer(join(dir.path, 'cache-remote'), {
      listen: `unix:${join(dir.path, 'reapi-remote.sock')}`,
    });
    try {
      const run = prepareCproject(dir.path, once.address, { SPECBUILD_LINK: '1' });
      makeWithWrapper(run.proj, run.env);
      const first = readWrapperLog(run.log);
      const compiles = first.filter(isCompile);
      const how = (lines: LogLine[]) =>
        [...bySource(lines).entries()].map(([src, l]) => [src, l.outcome, l.deps]).sort();
      assert.deepEqual(how(first), [
        ['lib/add.c', 'miss', 'compile'],
        ['lib/mul.c', 'miss', 'compile'],
        ['src/appxx.cpp', 'miss', 'compile'],
        // -MMD's .d file leaves out system headers: the list comes from a scan.
        ['src/main.c', 'miss', 'scan'],
      ]);
      // A new daemon: direct mode knew none of them.
      assert.deepEqual(
        compiles.map((l) => l.direct),
        compiles.map(() => 'none'),
      );
      assertSameOutputs(run.proj, run.plain);

      // The same tree built the other way (scan, then executed by the server), at
      // the same path: the working directory is part of the action.
      makeWithWrapper(run.proj, run.env, 'clean');
      const log2 = join(dir.path, 'log-remote');
      makeWithWrapper(run.proj, {
        ...run.env,
        SPECBUILD_SERVER: remote.address,
        SPECBUILD_COMPILE_HERE: '0',
        SPECBUILD_WRAPPER_LOG: log2,
        SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon-remote.sock'),
        XDG_CACHE_HOME: join(dir.path, 'xdg-remote'),
      });
      const scanned = readWrapperLog(log2).filter(isCompile);
      assert.deepEqual(
        scanned.map((l) => [l.outcome, l.deps]),
        scanned.map(() => ['miss', 'scan']),
      );
      const a = bySource(first);
      for (const [src, l] of bySource(scanned)) assert.equal(l.action, a.get(src)?.action, src);
      assertSameOutputs(run.proj, run.plain);
      // Byte for byte: the stored Action blob is the same in both caches.
      const cas1 = await LocalCas.open({ dir: join(dir.path, 'cache') });
      const cas2 = await LocalCas.open({ dir: join(dir.path, 'cache-remote') });
      const ac1 = await LocalActionCache.open(join(dir.path, 'cache'), cas1);
      for (const l of compiles) {
        const d = parseDigestString(l.action);
        const b1 = await cas1.readBlob(d);
        assert.deepEqual(b1, await cas2.readBlob(d));
        const action = fromBinary(ActionSchema, b1);
        // Its input tree is in the cache that executed it. Written straight
        // into this store's files, it was left out (no recording session
        // writes so, and nothing else reads the inputs of a cached action).
        const root = fromPb(action.inputRootDigest);
        assert.equal((await cas2.findMissingBlobs([root])).length, 0);
        assert.deepEqual(await cas1.findMissingBlobs([root]), [root]);
        // Its result says who ran it and how long it took (priming's order).
        const result = await ac1.getActionResult(d);
        const meta = result?.executionMetadata;
        assert.equal(meta?.worker, `specbuild-cc@${hostname()}`, l.argv.join(' '));
        assert.ok(recordedSeconds(result) > 0, l.argv.join(' '));
      }

      // A clean rebuild: hits, and direct mode runs no scan.
      makeWithWrapper(run.proj, run.env, 'clean');
      writeFileSync(run.log, '');
      makeWithWrapper(run.proj, run.env);
      const second = readWrapperLog(run.log).filter(isCompile);
      // Each result was remembered when it was stored (or found): the
      // action cache is not even asked.
      assert.deepEqual(
        second.map((l) => [l.outcome, l.deps, l.remembered]),
        second.map(() => ['hit', 'direct', true]),
      );
      assertSameOutputs(run.proj, run.plain);

      // Direct mode off, and a new daemon: nothing is remembered, so every
      // compile is scanned first, and every one is a hit.
      makeWithWrapper(run.proj, run.env, 'clean');
      writeFileSync(run.log, '');
      makeWithWrapper(run.proj, {
        ...run.env,
        SPECBUILD_DIRECT: '0',
        SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon-nodirect.sock'),
        XDG_CACHE_HOME: join(dir.path, 'xdg-nodirect'),
      });
      const scannedHits = readWrapperLog(run.log).filter(isCompile);
      assert.deepEqual(
        scannedHits.map((l) => [l.outcome, l.deps]),
        scannedHits.map(() => ['hit', 'scan']),
      );

      // A changed header: the one compile that includes it runs here once; the rest hit.
      writeFileSync(join(run.proj, 'VERSION'), '2.0.0\n');
      makeWithWrapper(run.proj, run.env, 'clean');
      writeFileSync(run.log, '');
      makeWithWrapper(run.proj, run.env);
      const afterChange = readWrapperLog(run.log);
      assert.deepEqual(how(afterChange), [
        ['lib/add.c', 'hit', 'direct'],
        ['lib/mul.c', 'hit', 'direct'],
        ['src/appxx.cpp', 'hit', 'direct'],
        ['src/main.c', 'miss', 'scan'],
      ]);
      // The log says why main.c could not use direct mode's memory.
      assert.deepEqual(
        [...bySource(afterChange).entries()].map(([src, l]) => [src, l.direct]).sort(),
        [
          ['lib/add.c', 'fresh'],
          ['lib/mul.c', 'fresh'],
          ['src/appxx.cpp', 'fresh'],
          ['src/main.c', 'changed'],
        ],
      );
      assert.equal(
        spawnSync(join(run.proj, 'build', 'app'), { encoding: 'utf8' }).stdout,
        'app 2.0.0: 5 20\n',
      );

      // The server's action cache emptied behind the daemon: every hit still
      // comes from the remembered results, whose blobs are all in its store.
      rmSync(join(dir.path, 'cache', 'ac', 'entries'), { recursive: true });
      const rebuild = (): Map<string, unknown[]> => {
        makeWithWrapper(run.proj, run.env, 'clean');
        writeFileSync(run.log, '');
        makeWithWrapper(run.proj, run.env);
        assert.equal(
          spawnSync(join(run.proj, 'build', 'app'), { encoding: 'utf8' }).stdout,
          'app 2.0.0: 5 20\n',
        );
        return new Map(
          [...bySource(readWrapperLog(run.log)).entries()].map(([src, l]) => [
            src,
            [l.outcome, l.deps, l.remembered ?? false],
          ]),
        );
      };
      /** Every compile a remembered direct hit, but `missed`, compiled here again. */
      const remembered = (missed?: string): Map<string, unknown[]> =>
        new Map(
          ['lib/add.c', 'lib/mul.c', 'src/appxx.cpp', 'src/main.c'].map((src) => [
            src,
            src === missed ? ['miss', 'direct', false] : ['hit', 'direct', true],
          ]),
        );
      assert.deepEqual(rebuild(), remembered());
      // An output's blob gone from the store: that result is not used; the
      // action cache (emptied) is asked, and the compile runs here again.
      const addObject = digestOf(readFileSync(join(run.proj, 'build', 'add.o')));
      const objects = join(dir.path, 'cache', 'cas', 'objects');
      rmSync(join(objects, addObject.hash.slice(0, 2), addObject.hash));
      assert.deepEqual(rebuild(), remembered('lib/add.c'));
      assert.equal(existsSync(join(objects, addObject.hash.slice(0, 2), addObject.hash)), true);
    } finally {
      await stopDaemonsUnder(dir.path);
      await once.stop();
      await remote.stop();
    }
  });

  it('scans first, and finds the stored result, for a command listed in SPECBUILD_KNOWN_COMMANDS or stored on the server; compiles once a command never stored', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    try {
      const run = prepareCproject(dir.path, server.address);
      makeWithWrapper(run.proj, run.env);
      const first = readWrapperLog(run.log).filter(isCompile);
      // The Command digests of what was stored (an element build lists its recorded ones).
      const cas = await LocalCas.open({ dir: join(dir.path, 'cache') });
      const commands: string[] = [];
      for (const l of first) {
        const action = fromBinary(ActionSchema, await cas.readBlob(parseDigestString(l.action)));
        commands.push(digestKey(fromPb(action.commandDigest)));
      }
      const known = join(dir.path, 'known-commands');
      // All but add.c's and mul.c's.
      const unlisted = new Set(['lib/add.c', 'lib/mul.c']);
      writeFileSync(
        known,
        commands.filter((_, i) => !unlisted.has(sourceOf(first[i] as LogLine))).join('\n') + '\n',
      );
      // add.c's Command leaves the server: as far as it can tell, never stored.
      const addCommand = parseDigestString(
        commands[first.findIndex((l) => sourceOf(l) === 'lib/add.c')] ?? '',
      );
      rmSync(cas.pathOf(addCommand));

      // A new daemon and memory (as in each element build): only direct mode's memory is gone.
      makeWithWrapper(run.proj, run.env, 'clean');
      writeFileSync(run.log, '');
      const env = {
        ...run.env,
        SPECBUILD_KNOWN_COMMANDS: known,
        SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon-2.sock'),
        XDG_CACHE_HOME: join(dir.path, 'xdg-2'),
      };
      makeWithWrapper(run.proj, env);
      const again = [...bySource(readWrapperLog(run.log)).entries()]
        .map(([src, l]) => [src, l.outcome, l.deps])
        .sort();
      assert.deepEqual(again, [
        // Neither listed nor on the server: compiled here again, to the same action.
        ['lib/add.c', 'miss', 'compile'],
        // Not listed, but its Command is on the server: scanned, and found.
        ['lib/mul.c', 'hit', 'scan'],
        ['src/appxx.cpp', 'hit', 'scan'],
        ['src/main.c', 'hit', 'scan'],
      ]);
      const before = bySource(first);
      for (const [src, l] of bySource(readWrapperLog(run.log)))
        assert.equal(l.action, before.get(src)?.action, src);
      assertSameOutputs(run.proj, run.plain);
    } finally {
      await stopDaemonsUnder(dir.path);
      await server.stop();
    }
  });
});

/**
 * A server on this machine (through a unix socket), an empty project
 * directory, and the wrapper's environment with its log; `last` is the log's
 * last line, `stop` stops the daemon and the server.
 */
/** A server on this machine and the wrapper pointed at it (helpers/wrap-rig.ts). */
const hereRig = startWrapRig;

/** The pid of a running cc1 whose command line has `source` and not `-E` (the compile, not a scan). */
function compilerOf(source: string): number | undefined {
  return pidsWhere(
    (argv) => argv[0]?.endsWith('/cc1') === true && argv.includes(source) && !argv.includes('-E'),
  )[0];
}

/**
 * Runs `specbuild-cc gcc -O2 -c SOURCE` and, once the compiler proper is
 * running (and `delayMs` later), rewrites `header` with `after` (the same
 * size). Resolves with the wrapper's exit status.
 */
async function compileWhileEditing(
  cwd: string,
  env: NodeJS.ProcessEnv,
  source: string,
  header: string,
  after: string,
  delayMs: number,
): Promise<number | null> {
  const child = spawn(
    specbuildCc,
    ['gcc', '-O2', '-c', source, '-o', source.replace(/\.c$/, '.o')],
    {
      cwd,
      env,
      stdio: 'ignore',
    },
  );
  const exited = once(child, 'exit') as Promise<[number | null]>;
  let edited = false;
  for (let i = 0; i < 3000 && !edited; i++) {
    if (compilerOf(source) !== undefined) {
      await sleep(delayMs);
      writeFileSync(join(cwd, header), after);
      edited = true;
    } else await sleep(5);
  }
  assert.ok(edited, `no cc1 for ${source} was seen`);
  const [code] = await exited;
  return code;
}

describe('specbuild-cc and inputs that change while a compile runs here', () => {
  it('stores no result when a header changed during the compile (compiled once, or scanned first)', async () => {
    await using dir = await tempDir();
    const { proj, env, last, stop } = await hereRig(dir.path);
    const version = (n: number): string => `const char version[] = "VERSION-${String(n)}";\n`;
    // early.c reads h.h first and compiles for about a second after;
    // late.c preprocesses for about a second before it reads h2.h.
    const fns = Array.from(
      { length: 400 },
      (_, i) =>
        `void f${String(i)}(void) { for (int j = 0; j < ${String((i % 50) + 1)}; j++) s += j * ${String(i)}; }`,
    );
    writeFileSync(
      join(proj, 'early.c'),
      ['#include "h.h"', 'volatile int s;', ...fns, ''].join('\n'),
    );
    const macros = [
      '#define X0 +1',
      ...Array.from(
        { length: 18 },
        (_, i) => `#define X${String(i + 1)} X${String(i)} X${String(i)}`,
      ),
    ];
    const bodies = [0, 1, 2].map((k) => `int big${String(k)}(void) { return 0 X18; }`);
    writeFileSync(join(proj, 'late.c'), [...macros, ...bodies, '#include "h2.h"', ''].join('\n'));
    writeFileSync(join(proj, 'h.h'), version(1));
    writeFileSync(join(proj, 'h2.h'), version(1));
    const has = (obj: string, n: number): boolean =>
      readFileSync(join(proj, obj)).includes(`VERSION-${String(n)}`);
    const wrapped = (source: string, extra: NodeJS.ProcessEnv = {}): void => {
      const r = spawnSync(
        specbuildCc,
        ['gcc', '-O2', '-c', source, '-o', source.replace(/\.c$/, '.o')],
        {
          cwd: proj,
          env: { ...env, ...extra },
        },
      );
      assert.equal(r.status, 0, String(r.stderr));
    };
    try {
      // Compiled once: h.h read as VERSION-1, then rewritten to VERSION-2
      // while the compile runs, before the inputs are hashed.
      assert.equal(await compileWhileEditing(proj, env, 'early.c', 'h.h', version(2), 150), 0);
      let l = last();
      assert.deepEqual([l.outcome, l.deps, l.action], ['miss', 'compile', '']);
      assert.match(l.unstored ?? '', /h\.h changed during the compile$/);
      // Nothing was stored or remembered under VERSION-2's digest: compiled again, rightly.
      wrapped('early.c');
      l = last();
      assert.deepEqual([l.outcome, l.deps, l.unstored], ['miss', 'compile', undefined]);
      assert.equal(has('early.o', 2), true, 'the object is built from the header as it is now');

      // Scanned first (direct mode off): h2.h hashed as VERSION-1, rewritten
      // to VERSION-2 before the compiler reads it.
      const scanning = { ...env, SPECBUILD_DIRECT: '0' };
      assert.equal(await compileWhileEditing(proj, scanning, 'late.c', 'h2.h', version(2), 0), 0);
      l = last();
      assert.deepEqual([l.outcome, l.deps, l.action], ['miss', 'scan', '']);
      assert.match(l.unstored ?? '', /h2\.h changed after it was hashed$/);
      assert.equal(has('late.o', 2), true);
      // h2.h back to VERSION-1: no result stored under its digest holds VERSION-2.
      writeFileSync(join(proj, 'h2.h'), version(1));
      wrapped('late.c', { SPECBUILD_DIRECT: '0' });
      l = last();
      assert.deepEqual([l.outcome, l.deps, l.unstored], ['miss', 'scan', undefined]);
      assert.equal(has('late.o', 1), true, 'the object is built from the header as it is now');
    } finally {
      await stop();
    }
  });
});

describe('specbuild-cc and a header edited during the dependency scan', () => {
  it('neither stores nor remembers a list the scan made from other contents', async () => {
    await using dir = await tempDir();
    const { proj, env, last, stop } = await hereRig(dir.path);
    const scanned = join(dir.path, 'scanned');
    // A compiler that, after a -M scan, says so and waits: the header is edited then.
    const cc = join(dir.path, 'slow-scan-gcc');
    writeFileSync(
      cc,
      `#!/bin/sh\n/usr/bin/gcc "$@"; rc=$?\ncase " $* " in *" -M "*) touch ${scanned}; sleep 2;; esac\nexit $rc\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(proj, 'foo.h'), '#define VAL "VAL-1"\n');
    writeFileSync(join(proj, 'bar.h'), '#define VAL "VAL-2"\n');
    writeFileSync(join(proj, 'a.c'), '#include "foo.h"\nconst char *v = VAL;\n');
    // -MMD: scanned first (its list leaves out system headers, so it is not compiled once).
    const argv = [cc, '-c', 'a.c', '-o', 'a.o', '-MMD'];
    try {
      // The daemon first, so that the scan starts at once.
      spawnSync(specbuildCc, ['gcc', '--version'], { cwd: proj, env });
      const child = spawn(specbuildCc, argv, { cwd: proj, env, stdio: 'ignore' });
      const exited = once(child, 'exit') as Promise<[number | null]>;
      for (let i = 0; i < 2000 && !existsSync(scanned); i++) await sleep(5);
      assert.ok(existsSync(scanned), 'the scan ran');
      // foo.h now includes bar.h, which the scan did not list.
      writeFileSync(join(proj, 'foo.h'), '#include "bar.h"\n');
      const [code] = await exited;
      assert.equal(code, 0);
      let l = last();
      assert.equal(l.outcome, 'local');
      assert.ok(readFileSync(join(proj, 'a.o')).includes('VAL-2'));
      // bar.h changes: the compile sees it (the old code gave a remembered hit with VAL-2).
      writeFileSync(join(proj, 'bar.h'), '#define VAL "VAL-3"\n');
      rmSync(scanned);
      const r = spawnSync(specbuildCc, argv, { cwd: proj, env });
      assert.equal(r.status, 0, String(r.stderr));
      l = last();
      assert.deepEqual([l.outcome, l.deps], ['miss', 'scan']);
      assert.ok(readFileSync(join(proj, 'a.o')).includes('VAL-3'));
    } finally {
      await stop();
    }
  });
});

describe('specbuild-cc and inputs a cached result cannot follow', () => {
  it('caches no compile whose inputs name files to the assembler (.incbin, .include) or the time (__DATE__, __TIME__ without SOURCE_DATE_EPOCH, __TIMESTAMP__)', async () => {
    await using dir = await tempDir();
    const { proj, env, last, stop } = await hereRig(dir.path);
    writeFileSync(
      join(proj, 'b.c'),
      '__asm__(".section .rodata\\n.incbin \\"blob.bin\\"\\n.previous");\nint f(void) { return 1; }\n',
    );
    writeFileSync(join(proj, 'blob.bin'), 'AAAA-blob');
    writeFileSync(join(proj, 'x.s'), '.section .rodata\n.include "inc.s"\n');
    writeFileSync(join(proj, 'inc.s'), '.ascii "CCCC-inc"\n');
    const compile = (source: string, extra: NodeJS.ProcessEnv = {}): LogLine => {
      const out = source.replace(/\.[cs]$/, '.o');
      const r = spawnSync(specbuildCc, ['gcc', '-c', source, '-o', out], {
        cwd: proj,
        env: { ...env, ...extra },
      });
      assert.equal(r.status, 0, String(r.stderr));
      return last();
    };
    const holds = (obj: string, text: string): boolean =>
      readFileSync(join(proj, obj)).includes(text);
    const refused =
      /has \.incbin or \.include: the assembler reads files no dependency list names$/;
    try {
      // Compiled once, nothing stored.
      let l = compile('b.c');
      assert.deepEqual([l.outcome, l.deps, l.action], ['miss', 'compile', '']);
      assert.match(l.unstored ?? '', refused);
      assert.equal(holds('b.o', 'AAAA-blob'), true);
      writeFileSync(join(proj, 'blob.bin'), 'BBBB-blob');
      // Scanned first: run here, uncached, with the file as it is now.
      l = compile('b.c', { SPECBUILD_DIRECT: '0' });
      assert.equal(l.outcome, 'local');
      assert.equal(holds('b.o', 'BBBB-blob'), true);
      l = compile('b.c');
      assert.deepEqual([l.outcome, l.deps, l.action], ['miss', 'compile', '']);
      assert.equal(holds('b.o', 'BBBB-blob'), true);

      // An assembler source that includes another.
      l = compile('x.s');
      assert.deepEqual([l.outcome, l.action], ['miss', '']);
      assert.match(l.unstored ?? '', refused);
      writeFileSync(join(proj, 'inc.s'), '.ascii "DDDD-inc"\n');
      l = compile('x.s');
      assert.deepEqual([l.outcome, l.action], ['miss', '']);
      assert.equal(holds('x.o', 'DDDD-inc'), true);

      // The time of the compile: cached only when SOURCE_DATE_EPOCH fixes it.
      writeFileSync(join(proj, 'd.c'), 'const char *when = __DATE__ " " __TIME__;\n');
      l = compile('d.c');
      assert.deepEqual([l.outcome, l.action], ['miss', '']);
      assert.match(l.unstored ?? '', /d\.c has __DATE__ or __TIME__: .*set SOURCE_DATE_EPOCH/);
      const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
      l = compile('d.c', epoch);
      assert.deepEqual([l.outcome, l.deps, l.unstored], ['miss', 'compile', undefined]);
      assert.notEqual(l.action, '');
      l = compile('d.c', epoch);
      assert.deepEqual([l.outcome, l.deps], ['hit', 'direct']);
      assert.equal(holds('d.o', 'Nov 14 2023'), true);
      // The source's mtime: never cached.
      writeFileSync(join(proj, 't.c'), 'const char *stamp = __TIMESTAMP__;\n');
      l = compile('t.c', epoch);
      assert.deepEqual([l.outcome, l.action], ['miss', '']);
      assert.match(l.unstored ?? '', /t\.c has __TIMESTAMP__/);
    } finally {
      await stop();
    }
  });
});

describe('specbuild-cc compiling zlib once per miss', () => {
  it('stores the same actions as the scan path, and libz.a is byte-identical to a plain build', async () => {
    await using dir = await tempDir();
    const src = join(repoRoot, '.cache', 'debian-src');
    const tarball = readdirSync(src).find((n) => /^zlib_.*\.orig\.tar\./.test(n));
    assert.ok(tarball, `no zlib source archive in ${src}: run bash scripts/install-test-deps.sh`);
    const tree = join(dir.path, 'zlib');
    const sh = (args: string[], cwd: string, env: Record<string, string> = {}): void => {
      const r = spawnSync(args[0] ?? '', args.slice(1), {
        cwd,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir.path, ...env },
      });
      assert.equal(r.status, 0, `${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    };
    mkdirSync(tree);
    sh(['tar', '-xf', join(src, tarball), '-C', tree, '--strip-components=1'], dir.path);
    sh(['./configure', '--static'], tree, { CC: 'gcc' });
    sh(['make', '-j2', 'libz.a'], tree);
    const plain = readFileSync(join(tree, 'libz.a'));

    const once = await startCliServer(join(dir.path, 'cache'), {
      listen: `unix:${join(dir.path, 'reapi.sock')}`,
    });
    const remote = await startCliServer(join(dir.path, 'cache-remote'), {
      listen: `unix:${join(dir.path, 'reapi-remote.sock')}`,
    });
    try {
      const build = (name: string, server: string, extra: Record<string, string>): LogLine[] => {
        const log = join(dir.path, `${name}.log`);
        sh(['make', 'clean'], tree);
        sh(['make', '-j2', `CC=${specbuildCc} gcc`, 'libz.a'], tree, {
          SPECBUILD_SERVER: server,
          SPECBUILD_WRAPPER_LOG: log,
          SPECBUILD_DAEMON_SOCKET: join(dir.path, `${name}.sock`),
          XDG_CACHE_HOME: join(dir.path, `xdg-${name}`),
          ...extra,
        });
        assert.ok(readFileSync(join(tree, 'libz.a')).equals(plain), `${name}: libz.a differs`);
        return readWrapperLog(log).filter(isCompile);
      };
      const a = build('once', once.address, {});
      const b = build('remote', remote.address, { SPECBUILD_COMPILE_HERE: '0' });
      assert.equal(a.length, 15);
      assert.deepEqual(
        new Set(a.map((l) => `${l.outcome} ${String(l.deps)}`)),
        new Set(['miss compile']),
      );
      assert.deepEqual(
        new Set(b.map((l) => `${l.outcome} ${String(l.deps)}`)),
        new Set(['miss scan']),
      );
      const actions = (lines: LogLine[]) => new Map(lines.map((l) => [l.argv.join(' '), l.action]));
      assert.deepEqual(actions(a), actions(b));
    } finally {
      await stopDaemonsUnder(dir.path);
      await once.stop();
      await remote.stop();
    }
  });
});
