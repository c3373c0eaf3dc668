// The files specbuild-cc makes for a command get the modes the command would
// have given them under its own umask, however it was answered: compiled by
// the daemon (which runs under the umask of whichever command started it),
// a hit the native client answers, a hit the daemon answers, a link. Before,
// hits were 0644 / 0755 whatever the umask (a 077 user's objects readable by
// all; a 002 group's not writable by the group).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { specbuildCc } from '../helpers/cproject.js';
import { tempDir } from '../helpers/tmp.js';
import { startWrapRig, type WrapRig } from '../helpers/wrap-rig.js';

/** Runs specbuild-cc under `umask` in the rig's project; the log line. */
function ccUnder(rig: WrapRig, env: NodeJS.ProcessEnv, umask: string, argv: string[]) {
  const r = spawnSync('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, specbuildCc, ...argv], {
    cwd: rig.proj,
    env,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return rig.last();
}

describe('specbuild-cc and the umask', () => {
  it("gives what it makes the command's own modes, compiled here, answered by the client or by the daemon", async () => {
    await using dir = await tempDir();
    const rig = await startWrapRig(dir.path);
    try {
      const { proj } = rig;
      const env = { ...rig.env, SPECBUILD_LINK: '1' };
      const cc = (umask: string, argv: string[], more: NodeJS.ProcessEnv = {}) =>
        ccUnder(rig, { ...env, ...more }, umask, argv);
      const mode = (f: string): string => (statSync(join(proj, f)).mode & 0o777).toString(8);
      writeFileSync(join(proj, 'a.c'), 'int main(void) { return 0; }\n');
      // The daemon starts under 0177 (no x bit for anyone): what it makes must not depend on it.
      spawnSync('sh', ['-c', 'umask 177; exec "$0" "$@"', specbuildCc, 'gcc', '--version'], {
        cwd: proj,
        env,
        stdio: 'ignore',
      });
      const compile = ['gcc', '-O2', '-c', 'a.c', '-o', 'a.o'];
      const link = ['gcc', 'a.o', '-o', 'prog'];

      const miss = cc('027', compile);
      assert.deepEqual([miss.outcome, miss.deps], ['miss', 'compile']);
      assert.equal(mode('a.o'), '640');
      const linked = cc('027', link);
      assert.equal(linked.outcome, 'miss');
      assert.equal(mode('prog'), '750');

      // Hits the client answers, under two umasks.
      for (const [umask, object, program] of [
        ['027', '640', '750'],
        ['002', '664', '775'],
        ['077', '600', '700'],
      ] as const) {
        rmSync(join(proj, 'a.o'));
        const hit = cc(umask, compile);
        assert.deepEqual([hit.outcome, hit.native], ['hit', true], umask);
        assert.equal(mode('a.o'), object, umask);
        rmSync(join(proj, 'prog'));
        const again = cc(umask, link);
        assert.equal(again.outcome, 'hit', umask);
        assert.equal(mode('prog'), program, umask);
      }
      // A compile that fails leaves an old output's mode as it was (the compiler did not touch it).
      writeFileSync(join(proj, 'bad.c'), 'int main(void) { return }\n');
      writeFileSync(join(proj, 'bad.o'), 'old');
      chmodSync(join(proj, 'bad.o'), 0o644);
      const failed = spawnSync(
        'sh',
        ['-c', 'umask 077; exec "$0" "$@"', specbuildCc, 'gcc', '-c', 'bad.c', '-o', 'bad.o'],
        { cwd: proj, env, encoding: 'utf8' },
      );
      assert.equal(failed.status, 1);
      assert.equal(mode('bad.o'), '644');
      // A link under a umask that takes the owner's x bit: this command's
      // program is 0600, as gcc would make it, but the cache keeps it
      // executable for every later hit.
      writeFileSync(join(proj, 'b.c'), 'int main(void) { return 2; }\n');
      cc('177', ['gcc', '-O2', '-c', 'b.c', '-o', 'b.o']);
      assert.equal(cc('177', ['gcc', 'b.o', '-o', 'bprog']).outcome, 'miss');
      assert.equal(mode('bprog'), '600');
      rmSync(join(proj, 'bprog'));
      assert.equal(cc('022', ['gcc', 'b.o', '-o', 'bprog']).outcome, 'hit');
      assert.equal(mode('bprog'), '755');

      // Hits the daemon answers (the client's answers off).
      rmSync(join(proj, 'a.o'));
      const daemonHit = cc('007', compile, { SPECBUILD_NATIVE_HITS: '0' });
      assert.deepEqual([daemonHit.outcome, daemonHit.native], ['hit', undefined]);
      assert.equal(mode('a.o'), '660');
      rmSync(join(proj, 'prog'));
      assert.equal(cc('007', link, { SPECBUILD_NATIVE_HITS: '0' }).outcome, 'hit');
      assert.equal(mode('prog'), '770');
    } finally {
      await rig.stop();
    }
  });

  it('never lets group or others see an output for a moment its umask denies them', async () => {
    await using dir = await tempDir();
    const rig = await startWrapRig(dir.path);
    try {
      const { proj, env } = rig;
      // A compiler that writes down its output's mode as it leaves it,
      // before the daemon sets the command's modes.
      const seen = join(dir.path, 'modes-seen');
      const gcc = join(dir.path, 'bin', 'gcc');
      mkdirSync(dirname(gcc));
      writeFileSync(
        gcc,
        [
          '#!/bin/sh',
          '/usr/bin/gcc "$@"; rc=$?',
          'out=; prev=; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done',
          `[ -f "$out" ] && stat -c "%n %a" "$out" >> ${seen}`,
          'exit $rc',
          '',
        ].join('\n'),
      );
      chmodSync(gcc, 0o755);
      // The daemon starts under 022, which would give 0644 and 0755.
      spawnSync(specbuildCc, ['gcc', '--version'], { cwd: proj, env, stdio: 'ignore' });
      writeFileSync(join(proj, 'c.c'), 'int main(void) { return 0; }\n');
      const linking = { ...env, SPECBUILD_LINK: '1' };
      const compiled = ccUnder(rig, linking, '077', [gcc, '-O2', '-c', 'c.c', '-o', 'c.o']);
      assert.deepEqual([compiled.outcome, compiled.deps], ['miss', 'compile']);
      assert.equal(ccUnder(rig, linking, '077', [gcc, 'c.o', '-o', 'cprog']).outcome, 'miss');
      // As the compiler left them: nothing for group and others; the owner's x kept on the program.
      assert.deepEqual(readFileSync(seen, 'utf8').trim().split('\n'), ['c.o 600', 'cprog 700']);
      assert.equal((statSync(join(proj, 'cprog')).mode & 0o777).toString(8), '700');
    } finally {
      await rig.stop();
    }
  });

  it("gives specbuild-exec's outputs, files and directories, the command's own modes, miss and hit", async () => {
    await using dir = await tempDir();
    const rig = await startWrapRig(dir.path);
    try {
      const { proj, env } = rig;
      // The daemon starts under 022.
      spawnSync(specbuildCc, ['gcc', '--version'], { cwd: proj, env, stdio: 'ignore' });
      const args = [
        '--output',
        'f.txt',
        '--output',
        'deep/outdir',
        '--env',
        'PATH=/usr/bin:/bin',
        '--',
        'sh',
        '-c',
        'echo f > f.txt; mkdir -p deep/outdir/sub; echo g > deep/outdir/sub/g.txt; ' +
          'printf "#!/bin/sh\\n" > deep/outdir/run.sh; chmod +x deep/outdir/run.sh',
      ];
      const modes = (): string[] =>
        [
          'f.txt',
          'deep',
          'deep/outdir',
          'deep/outdir/sub',
          'deep/outdir/sub/g.txt',
          'deep/outdir/run.sh',
        ].map((f) => (statSync(join(proj, f)).mode & 0o777).toString(8));
      const execVariants: [string, string][] = [
        ['native', join(dirname(specbuildCc), 'specbuild-exec')],
        ['node', join(dirname(specbuildCc), '..', 'src', 'cli', 'exec-main.js')],
      ];
      for (const [variant, exe] of execVariants) {
        for (const round of ['miss', 'hit']) {
          rmSync(join(proj, 'f.txt'), { force: true });
          // Its parent too: a hit makes it, as the command's mkdir -p did.
          rmSync(join(proj, 'deep'), { recursive: true, force: true });
          const cmd = variant === 'node' ? [process.execPath, exe] : [exe];
          const r = spawnSync('sh', ['-c', 'umask 027; exec "$0" "$@"', ...cmd, ...args], {
            cwd: proj,
            env,
            encoding: 'utf8',
          });
          assert.equal(r.status, 0, r.stderr);
          assert.equal(
            rig.last().outcome,
            variant === 'native' && round === 'miss' ? 'miss' : 'hit',
          );
          assert.deepEqual(
            modes(),
            ['640', '750', '750', '750', '640', '750'],
            `${variant} ${round}`,
          );
        }
      }
    } finally {
      await rig.stop();
    }
  });
});
