// A small sysroot made from Debian's binary packages (gcc, binutils,
// libc6-dev and their dependencies, downloaded by scripts/install-test-deps.sh
// into .cache/sysroot-debs/), as one tarball for a `tar` source: extracted
// with dpkg-deb, without documentation, LTO and the sanitizers' archives.
// Made once per set of packages, under dist/.test-cache/ (never in /tmp).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describeRun, runProcess } from './process.js';
import { repoRoot } from './paths.js';

export const SYSROOT_DEBS = join(repoRoot, '.cache', 'sysroot-debs');
const HINT = 'run .ci/run, or: bash scripts/install-test-deps.sh';

/** What is left out: not needed to compile and link C. */
const PRUNE = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/lib/gcc/x86_64-linux-gnu/12/lto1',
  'usr/lib/gcc/x86_64-linux-gnu/12/libasan.a',
  'usr/lib/gcc/x86_64-linux-gnu/12/libtsan.a',
  'usr/lib/gcc/x86_64-linux-gnu/12/liblsan.a',
  'usr/lib/gcc/x86_64-linux-gnu/12/libubsan.a',
  'usr/lib/gcc/x86_64-linux-gnu/12/libhwasan.a',
];

let made: Promise<{ path: string; sha256: string }> | undefined;

/** The sysroot tarball (top directory `sysroot/`) and its sha256. */
export function sysrootTarball(): Promise<{ path: string; sha256: string }> {
  made ??= (async () => {
    assert.ok(existsSync(SYSROOT_DEBS), `${SYSROOT_DEBS} is missing; ${HINT}`);
    const debs = readdirSync(SYSROOT_DEBS)
      .filter((f) => f.endsWith('.deb'))
      .sort();
    assert.ok(
      debs.some((d) => d.startsWith('gcc-12_')),
      `no gcc-12 package in ${SYSROOT_DEBS}; ${HINT}`,
    );
    const id = createHash('sha256').update(debs.join('\n')).digest('hex').slice(0, 16);
    const dir = join(repoRoot, 'dist', '.test-cache');
    const tarball = join(dir, `sysroot-${id}.tar`);
    if (!existsSync(tarball)) {
      const tmp = join(dir, `sysroot-${id}.tmp-${process.pid}`);
      await rm(tmp, { recursive: true, force: true });
      await mkdir(join(tmp, 'sysroot'), { recursive: true });
      for (const deb of debs) {
        const r = await runProcess(
          'dpkg-deb',
          ['-x', join(SYSROOT_DEBS, deb), join(tmp, 'sysroot')],
          {
            timeoutMs: 120_000,
          },
        );
        assert.equal(r.code, 0, describeRun(`dpkg-deb -x ${deb}`, r));
      }
      for (const p of PRUNE) await rm(join(tmp, 'sysroot', p), { recursive: true, force: true });
      const tar = await runProcess(
        'tar',
        [
          '--sort=name',
          '--owner=0',
          '--group=0',
          '--numeric-owner',
          '-cf',
          join(tmp, 'out.tar'),
          '-C',
          tmp,
          'sysroot',
        ],
        { timeoutMs: 120_000 },
      );
      assert.equal(tar.code, 0, describeRun('tar', tar));
      try {
        renameSync(join(tmp, 'out.tar'), tarball);
      } catch {
        // Another test process made it first.
      }
      await rm(tmp, { recursive: true, force: true });
    }
    const sha256 = createHash('sha256')
      .update(await readFile(tarball))
      .digest('hex');
    return { path: tarball, sha256 };
  })();
  return made;
}
