// The chrootRootDigest platform property through a real `specbuild server`:
// an action names a tree in the CAS as its root file system and runs in it
// with nothing of the host's (a statically linked probe, compiled here, reads
// the tree's /etc/marker and looks for the host's gcc). A tree not in the
// CAS is FAILED_PRECONDITION naming its blobs; a malformed value is refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MissingBlobsError } from '../../src/cas/index.js';
import { RemoteEndpoint } from '../../src/remote/index.js';
import { digestKey, fromPb, treeFromDirectory } from '../../src/reapi/index.js';
import { uploadAction, uploadTree } from '../helpers/actions.js';
import { assertStopsCleanly, startCliServer } from '../helpers/cli-server.js';
import { tempDir } from '../helpers/tmp.js';

const PROBE = `#include <stdio.h>
#include <unistd.h>
int main(void) {
  char line[256];
  FILE *f = fopen("/etc/marker", "r");
  if (f == NULL || fgets(line, sizeof line, f) == NULL) { puts("no marker"); return 2; }
  fputs(line, stdout);
  puts(access("/usr/bin/gcc", X_OK) == 0 ? "host gcc visible" : "host gcc hidden");
  FILE *o = fopen("out.txt", "w");
  if (o == NULL) return 3;
  fputs("written in the chroot\\n", o);
  return fclose(o) == 0 ? 0 : 4;
}
`;

describe('chrootRootDigest', () => {
  it('runs the action in the named tree, nothing of the host visible; a missing tree and a malformed value are refused', async () => {
    await using t = await tempDir();
    // The root file system: a static probe and a marker, nothing else.
    const sysroot = join(t.path, 'sysroot');
    await mkdir(join(sysroot, 'bin'), { recursive: true });
    await mkdir(join(sysroot, 'etc'), { recursive: true });
    await writeFile(join(t.path, 'probe.c'), PROBE);
    const cc = spawnSync(
      'gcc',
      ['-static', '-O1', '-o', join(sysroot, 'bin', 'probe'), join(t.path, 'probe.c')],
      { encoding: 'utf8' },
    );
    assert.equal(cc.status, 0, cc.stderr);
    await writeFile(join(sysroot, 'etc', 'marker'), 'sysroot 1\n');
    const tree = await treeFromDirectory(sysroot);

    const server = await startCliServer(join(t.path, 'server'));
    const ep = await RemoteEndpoint.connect({ target: server.address });
    try {
      const action = (root: string) =>
        uploadAction(ep.cas, {
          argv: ['/bin/probe'],
          env: {},
          inputs: { 'work/in.txt': 'input\n' },
          workingDirectory: 'work',
          outputPaths: ['out.txt'],
          platform: { chrootRootDigest: root },
        });
      const rootKey = digestKey(tree.root);

      // Not uploaded yet: the missing blobs are named.
      const early = await action(rootKey);
      await assert.rejects(ep.executor.execute(early), (e: unknown) => {
        assert.ok(e instanceof MissingBlobsError, String(e));
        assert.ok(
          e.digests.some((d) => digestKey(d) === rootKey),
          'the tree root is named missing',
        );
        return true;
      });

      await uploadTree(ep.cas, tree);
      const out = await ep.executor.execute(early);
      assert.equal(out.result.exitCode, 0);
      assert.ok(out.result.stdoutDigest !== undefined);
      const stdout = Buffer.from(await ep.cas.readBlob(fromPb(out.result.stdoutDigest))).toString(
        'utf8',
      );
      assert.equal(stdout, 'sysroot 1\nhost gcc hidden\n');
      const file = out.result.outputFiles.find((f) => f.path === 'out.txt');
      assert.ok(file?.digest !== undefined, 'out.txt is an output');
      assert.equal(
        Buffer.from(await ep.cas.readBlob(fromPb(file.digest))).toString('utf8'),
        'written in the chroot\n',
      );

      // A malformed value: refused as an invalid action.
      const bad = await action('not-a-digest');
      await assert.rejects(
        ep.executor.execute(bad),
        /chrootRootDigest "not-a-digest" is not a digest/,
      );
    } finally {
      ep.close();
      await assertStopsCleanly(server);
    }
  });
});
