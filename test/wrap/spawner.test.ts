// specbuild-spawner, the small process the wrapper daemon runs its commands
// through (a fork of the daemon itself costs ~8-10 ms in page tables): the
// same exit codes, outputs, working directory and environment as a direct
// spawn, many commands at once, the same error for a command that cannot
// start, and direct spawns when the spawner dies.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Spawner, spawnDirect, SPAWNER_PATH } from '../../src/wrap/spawner.js';
import { tempDir } from '../helpers/tmp.js';

const env = new Map([
  ['PATH', '/usr/bin:/bin'],
  ['GREETING', 'hello there'],
]);

describe('specbuild-spawner', () => {
  it('runs commands exactly as a direct spawn does', async () => {
    const path = SPAWNER_PATH();
    assert.ok(path !== undefined, 'dist/native/specbuild-spawner is built by npm run build');
    await using dir = await tempDir();
    const s = new Spawner(path);
    try {
      const cases: string[][] = [
        ['sh', '-c', 'echo "$GREETING"; pwd; echo to-stderr >&2; exit 3'],
        ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" x; head -c 200000 /dev/zero >&2'],
        ['sh', '-c', 'kill -9 $$'],
        ['sh', '-c', 'cat; echo "stdin was empty"'],
        ['/bin/sh', '-c', 'exit 0'],
      ];
      for (const argv of cases) {
        const [via, direct] = await Promise.all([
          s.run(argv, dir.path, env),
          spawnDirect(argv, dir.path, env),
        ]);
        assert.deepEqual(
          { code: via.code, out: via.stdout.toString(), err: via.stderr.toString() },
          { code: direct.code, out: direct.stdout.toString(), err: direct.stderr.toString() },
          argv.join(' '),
        );
      }
      // A command found on the PATH of its own environment, not the spawner's.
      const bin = join(dir.path, 'bin');
      await mkdir(bin);
      await writeFile(join(bin, 'only-here'), '#!/bin/sh\necho found "$@"\n', { mode: 0o755 });
      const onPath = new Map([...env, ['PATH', `${bin}:/usr/bin:/bin`]]);
      const found = await s.run(['only-here', 'x'], dir.path, onPath);
      assert.deepEqual([found.code, found.stdout.toString()], [0, 'found x\n']);
      const first = await s.run(cases[0] ?? [], dir.path, env);
      assert.equal(first.stdout.toString(), `hello there\n${dir.path}\n`);
      assert.equal(first.code, 3);
      // Many at once, each answered with its own output.
      const many = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          s.run(['sh', '-c', `sleep 0.0${String(i % 5)}; echo ${String(i)}`], dir.path, env),
        ),
      );
      assert.deepEqual(
        many.map((r) => r.stdout.toString()),
        Array.from({ length: 24 }, (_, i) => `${String(i)}\n`),
      );
      // A command that cannot start: the error a direct spawn gives.
      const missing = ['no-such-command-here', '-c'];
      const [a, b] = await Promise.allSettled([
        s.run(missing, dir.path, env),
        spawnDirect(missing, dir.path, env),
      ]);
      const code = (r: PromiseSettledResult<unknown>): string | undefined =>
        r.status === 'rejected' ? (r.reason as NodeJS.ErrnoException).code : 'fulfilled';
      assert.equal(code(a), 'ENOENT');
      assert.equal(code(b), 'ENOENT');
      assert.equal(s.spawned, cases.length + 1 + 1 + 24 + 1);
    } finally {
      s.close();
    }
  });

  it('runs commands directly once the spawner has died, those in flight too', async () => {
    await using dir = await tempDir();
    const s = new Spawner(SPAWNER_PATH());
    try {
      // Kills its parent if that is the spawner (never the test, when run
      // again directly): the command is answered by a direct run.
      const r = await s.run(
        [
          'sh',
          '-c',
          'case "$(cat /proc/$PPID/comm)" in specbuild-spaw*) kill -9 $PPID; sleep 0.3; echo late > orphan.txt;; esac; echo done',
        ],
        dir.path,
        env,
      );
      assert.equal(r.stdout.toString(), 'done\n');
      assert.equal(r.code, 0);
      // The spawner's own run of it died with the spawner (never two at once).
      await new Promise((res) => setTimeout(res, 500));
      assert.equal(existsSync(join(dir.path, 'orphan.txt')), false);
      const after = s.spawned;
      const again = await s.run(['sh', '-c', 'echo direct'], dir.path, env);
      assert.equal(again.stdout.toString(), 'direct\n');
      assert.equal(s.spawned, after, 'not through the dead spawner');
    } finally {
      s.close();
    }
  });
});
