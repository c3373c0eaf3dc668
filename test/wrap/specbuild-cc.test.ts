// specbuild-cc end to end: `make CC="specbuild-cc gcc"` on a real C/C++
// project through the native client, the daemon and a real server process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertSameOutputs,
  cprojectFixture,
  isCompile,
  prepareCproject,
  makeWithWrapper,
  readWrapperLog,
  sourceOf,
  specbuildCc,
} from '../helpers/cproject.js';
import { tempDir } from '../helpers/tmp.js';
import { startCliServer } from '../helpers/cli-server.js';

describe('specbuild-cc', () => {
  it('builds a real project byte-identically, then from the cache, missing exactly what a header change touches', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    try {
      const { plain, proj, log, env } = prepareCproject(dir.path, server.address, {
        SPECBUILD_LINK: '1',
      });
      makeWithWrapper(proj, env);
      const first = readWrapperLog(log);
      assert.equal(first.filter(isCompile).length, 4);
      assert.ok(
        first.every((l) => l.outcome === 'miss'),
        JSON.stringify(first.map((l) => l.outcome)),
      );
      assertSameOutputs(proj, plain);
      assert.equal(
        spawnSync(join(proj, 'build', 'app'), { encoding: 'utf8' }).stdout,
        'app 1.2.3: 5 20\n',
      );

      // A clean rebuild is all hits.
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      makeWithWrapper(proj, env);
      const second = readWrapperLog(log);
      assert.deepEqual([...new Set(second.map((l) => l.outcome))], ['hit'], JSON.stringify(second));
      assert.equal(
        spawnSync(join(proj, 'build', 'appxx'), { encoding: 'utf8' }).stdout,
        'appxx: 42\n',
      );

      // Changing the generated header misses exactly the translation unit that includes it.
      writeFileSync(join(proj, 'VERSION'), '2.0.0\n');
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      makeWithWrapper(proj, env);
      const third = readWrapperLog(log).filter(isCompile);
      assert.deepEqual(third.filter((l) => l.outcome === 'miss').map(sourceOf), ['src/main.c']);
      assert.deepEqual(
        third
          .filter((l) => l.outcome === 'hit')
          .map(sourceOf)
          .sort(),
        ['lib/add.c', 'lib/mul.c', 'src/appxx.cpp'],
      );
      assert.equal(
        spawnSync(join(proj, 'build', 'app'), { encoding: 'utf8' }).stdout,
        'app 2.0.0: 5 20\n',
      );
    } finally {
      await server.stop();
    }
  });

  it('in cache-only mode compiles and links here, uploads, and serves a clean rebuild from the cache', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    try {
      const { plain, proj, log, env } = prepareCproject(dir.path, server.address, {
        SPECBUILD_CACHE_ONLY: '1',
        SPECBUILD_LINK: '1',
      });
      makeWithWrapper(proj, env);
      assert.deepEqual([...new Set(readWrapperLog(log).map((l) => l.outcome))], ['miss']);
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      makeWithWrapper(proj, env);
      const second = readWrapperLog(log);
      assert.equal(second.length, 6);
      assert.deepEqual([...new Set(second.map((l) => l.outcome))], ['hit']);
      assertSameOutputs(proj, plain);
      // The linked programs come back executable.
      assert.equal(
        spawnSync(join(proj, 'build', 'app'), { encoding: 'utf8' }).stdout,
        'app 1.2.3: 5 20\n',
      );
    } finally {
      await server.stop();
    }
  });

  it('in direct mode rebuilds from the cache without rescanning, byte-identically, under another PATH too', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    try {
      const { plain, proj, log, env } = prepareCproject(dir.path, server.address, {
        SPECBUILD_DIRECT: '1',
        SPECBUILD_VERBOSE: '1',
      });
      const first = makeWithWrapper(proj, env);
      assert.equal((first.stderr.match(/action-direct/g) ?? []).length, 0, first.stderr);
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      const second = makeWithWrapper(proj, env);
      const compiles = readWrapperLog(log).filter(isCompile);
      assert.deepEqual([...new Set(compiles.map((l) => l.outcome))], ['hit']);
      assert.equal(
        (second.stderr.match(/^specbuild-cc: hit .*\(action-direct /gm) ?? []).length,
        4,
        second.stderr,
      );
      assertSameOutputs(proj, plain);
      // The same compiler found through another PATH (as libtool and shell
      // start-up files change it between the compiles of one build): the
      // same memory, no scan.
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      const path = process.env.PATH ?? '/usr/bin:/bin';
      makeWithWrapper(proj, { ...env, PATH: `${join(dir.path, 'nothing-here')}:${path}:/bin` });
      assert.deepEqual(
        readWrapperLog(log)
          .filter(isCompile)
          .map((l) => `${sourceOf(l)} ${l.outcome} ${l.deps ?? ''} ${l.direct ?? ''}`)
          .sort(),
        ['lib/add.c', 'lib/mul.c', 'src/appxx.cpp', 'src/main.c'].map(
          (s) => `${s} hit direct fresh`,
        ),
      );
      assertSameOutputs(proj, plain);
    } finally {
      await server.stop();
    }
  });

  it('passes compile errors through exactly (never caching them), and falls back when the server fails or is down', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    const log = join(dir.path, 'log');
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SPECBUILD_SERVER: server.address,
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon.sock'),
      SPECBUILD_WRAPPER_LOG: log,
      XDG_CACHE_HOME: join(dir.path, 'xdg'),
    };
    const compile = (file: string, extra: Record<string, string> = {}) => {
      const args = ['-c', file, '-o', file.replace(/\.c$/, '.o')];
      const run = (argv: string[]) =>
        spawnSync(argv[0] ?? '', argv.slice(1), {
          cwd: dir.path,
          encoding: 'utf8',
          env: { ...env, ...extra },
        });
      return { plain: run(['gcc', ...args]), wrapped: run([specbuildCc, 'gcc', ...args]) };
    };
    try {
      writeFileSync(join(dir.path, 'bad.c'), 'int main(void) { return missing_symbol; }\n');
      for (const extra of [{}, { SPECBUILD_CACHE_ONLY: '1' }] as Record<string, string>[]) {
        writeFileSync(log, '');
        for (let i = 0; i < 2; i++) {
          const { plain, wrapped } = compile('bad.c', extra);
          assert.notEqual(plain.status, 0);
          assert.equal(wrapped.status, plain.status);
          assert.equal(wrapped.stderr, plain.stderr);
        }
        // Run twice, missed twice: a failed compile is not stored.
        assert.deepEqual(
          readWrapperLog(log).map((l) => l.outcome),
          ['miss', 'miss'],
        );
      }

      // The server refuses the action (a platform it does not offer): compiled here.
      writeFileSync(join(dir.path, 'good.c'), 'int good(void) { return 1; }\n');
      writeFileSync(log, '');
      const refused = compile('good.c', { SPECBUILD_REMOTE_PLATFORM: 'OSFamily=windows' });
      assert.equal(refused.wrapped.status, 0, refused.wrapped.stderr);
      assert.match(refused.wrapped.stderr, /compiling locally/);
      assert.deepEqual(
        readWrapperLog(log).map((l) => [l.outcome, l.error]),
        [['fallback', 'remote/failed-precondition']],
        'a fallback keeps the code of the error behind it',
      );
      assert.ok(readdirSync(dir.path).includes('good.o'));
    } finally {
      await server.stop();
    }

    // The server is gone: the whole project still builds, with one warning.
    const proj = join(dir.path, 'proj');
    cpSync(cprojectFixture, proj, { recursive: true });
    writeFileSync(log, '');
    const r = makeWithWrapper(proj, {
      ...env,
      SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon2.sock'),
    });
    assert.equal(
      (r.stderr.match(/compiling locally/g) ?? []).length,
      1,
      'the warning is given once',
    );
    assert.ok(readdirSync(join(proj, 'build')).includes('app'));
    const compiles = readWrapperLog(log).filter(isCompile);
    assert.equal(compiles.length, 4);
    assert.deepEqual(
      [...new Set(compiles.map((l) => `${l.outcome} ${l.error ?? ''}`))],
      ['fallback remote/unavailable'],
    );
  });

  it('gives the same action digest for the same compile in two checkouts under SPECBUILD_PROJECT_ROOT', async () => {
    await using dir = await tempDir();
    const server = await startCliServer(join(dir.path, 'cache'));
    try {
      const log = join(dir.path, 'log');
      const digests: string[] = [];
      for (const name of ['checkout-a', 'checkout-b']) {
        const proj = join(dir.path, name);
        cpSync(cprojectFixture, proj, { recursive: true });
        writeFileSync(log, '');
        const r = spawnSync(
          specbuildCc,
          ['gcc', `-I${proj}/lib/include`, '-O2', '-c', `${proj}/lib/add.c`, '-o', 'add.o'],
          {
            cwd: proj,
            encoding: 'utf8',
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              SPECBUILD_SERVER: server.address,
              SPECBUILD_PROJECT_ROOT: proj,
              SPECBUILD_WRAPPER_LOG: log,
              ...(name === 'checkout-b' ? { SPECBUILD_VERBOSE: '1' } : {}),
              SPECBUILD_DAEMON_SOCKET: join(dir.path, 'daemon.sock'),
              XDG_CACHE_HOME: join(dir.path, 'xdg'),
            },
          },
        );
        assert.equal(r.status, 0, r.stderr);
        if (name === 'checkout-b') {
          // SPECBUILD_VERBOSE: one line with the outcome, the action and where the time went.
          assert.match(
            r.stderr,
            /^specbuild-cc: hit [0-9a-f]{64}\/\d+ in \d+ ms \(action [\d.]+ ms, lookup [\d.]+ ms, outputs [\d.]+ ms\)\n$/,
          );
        } else {
          assert.equal(r.stderr, '');
        }
        const line = readWrapperLog(log)[0];
        assert.ok(line);
        digests.push(line.action);
        if (name === 'checkout-b') assert.equal(line.outcome, 'hit');
      }
      assert.equal(digests[0], digests[1]);
    } finally {
      await server.stop();
    }
  });
});
