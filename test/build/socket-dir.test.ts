// The socket directories of a build killed outright are swept by the next
// one; a live process's, and anything not ours, are left alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepStaleSocketDirs } from '../../src/build/index.js';
import { tempDir } from '../helpers/tmp.js';

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

describe('socket directories', () => {
  it('sweeps those of processes that are gone, and only those', async () => {
    await using tmp = await tempDir();
    const dead = deadPid();
    assert.throws(() => process.kill(dead, 0), /ESRCH/, 'the pid is free');
    const stale = join(tmp.path, `specbuild-reapi-${dead}-aB3dEf`);
    const live = join(tmp.path, `specbuild-reapi-${process.pid}-xY9zQw`);
    const parent = join(tmp.path, `specbuild-reapi-${process.ppid}-pQ1rSt`);
    const other = join(tmp.path, 'specbuild-reapi-notapid');
    const file = join(tmp.path, `specbuild-reapi-${dead}-file`);
    for (const d of [stale, live, parent, other]) await mkdir(d);
    await writeFile(join(stale, 'reapi.sock'), '');
    await writeFile(file, '');
    assert.equal(await sweepStaleSocketDirs(tmp.path), 1);
    assert.deepEqual(
      [stale, live, parent, other, file].map((p) => existsSync(p)),
      [false, true, true, true, true],
    );
  });
});
