// specbuild-cc against an REAPI server that is not ours and that executes
// actions: Bazel's own remote worker (src/tools/remote in Bazel's sources),
// compiled here from Debian's bazel-bootstrap-source against the classes in
// bazel-bootstrap's server jar. It speaks REAPI 2.0 only, so this also proves
// the wrapper's pre-2.1 action shape (output_files, Command.platform), and it
// refuses calls without RequestMetadata, which the client must send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBazelWorker } from '../helpers/bazel-worker.js';
import {
  assertSameOutputs,
  isCompile,
  prepareCproject,
  makeWithWrapper,
  readWrapperLog,
  specbuildCc,
} from '../helpers/cproject.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

test(
  "specbuild-cc builds a real project on Bazel's remote worker, then from its cache",
  { timeout: 240_000 },
  async (t) => {
    await using dir = await tempDir('specbuild-worker-');
    const worker = await startBazelWorker(dir.path);
    try {
      const { plain, proj, log, env } = prepareCproject(dir.path, worker.target, {
        SPECBUILD_LINK: '1',
      });

      // 1. Cold: every compile and link executes on the worker.
      makeWithWrapper(proj, env);
      const first = readWrapperLog(log);
      assert.equal(first.filter(isCompile).length, 4);
      assert.deepEqual(
        first.filter((l) => l.outcome !== 'miss').map((l) => `${l.outcome}: ${l.argv.join(' ')}`),
        [],
        `every command should have executed remotely; worker output:\n${worker.output()}`,
      );
      assertSameOutputs(proj, plain);
      const app = spawnSync(join(proj, 'build', 'app'), { encoding: 'utf8' });
      assert.equal(app.stdout, 'app 1.2.3: 5 20\n');

      // 2. A clean rebuild is answered by the worker's action cache.
      makeWithWrapper(proj, env, 'clean');
      writeFileSync(log, '');
      makeWithWrapper(proj, env);
      const second = readWrapperLog(log);
      assert.deepEqual([...new Set(second.map((l) => l.outcome))], ['hit']);
      assert.deepEqual(
        second.map((l) => l.action).sort(),
        first.map((l) => l.action).sort(),
        'the same commands give the same action digests (in any order: make runs -j4)',
      );
      assertSameOutputs(proj, plain);
      t.diagnostic(
        `${first.length} actions executed by Bazel's worker, then ${second.length} hits`,
      );

      // 3. specbuild-exec too: REAPI 2.0 means output_files, which this worker reads.
      const execArgs = [
        '--input',
        'VERSION',
        '--output',
        'build/copy.txt',
        '--env',
        'PATH=/usr/bin:/bin',
        '--log',
        log,
        '--',
        'sh',
        '-c',
        'tr 0-9 a-j < VERSION > build/copy.txt',
      ];
      writeFileSync(log, '');
      for (let i = 0; i < 2; i++) {
        const r = spawnSync(join(repoRoot, 'dist', 'native', 'specbuild-exec'), execArgs, {
          cwd: proj,
          encoding: 'utf8',
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(readFileSync(join(proj, 'build', 'copy.txt'), 'utf8'), 'b.c.d\n');
        rmSync(join(proj, 'build', 'copy.txt'));
      }
      assert.deepEqual(
        readWrapperLog(log).map((l) => l.outcome),
        ['miss', 'hit'],
      );

      // 4. A compile error comes back with gcc's exact text and exit code.
      writeFileSync(join(proj, 'bad.c'), 'int main(void) { return missing_symbol; }\n');
      const runEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env };
      const gccRun = spawnSync('gcc', ['-c', 'bad.c', '-o', 'bad.o'], {
        cwd: proj,
        encoding: 'utf8',
        env: runEnv,
      });
      const wrapped = spawnSync(specbuildCc, ['gcc', '-c', 'bad.c', '-o', 'bad.o'], {
        cwd: proj,
        encoding: 'utf8',
        env: runEnv,
      });
      assert.notEqual(gccRun.status, 0);
      assert.equal(wrapped.status, gccRun.status);
      assert.equal(wrapped.stderr, gccRun.stderr);
      assert.equal(readWrapperLog(log).at(-1)?.outcome, 'miss');
      assert.ok(!existsSync(join(proj, 'bad.o')));
    } finally {
      const exit = await worker.stop();
      t.diagnostic(`worker exit: ${JSON.stringify(exit)}`);
    }
  },
);
