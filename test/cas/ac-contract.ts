// The contract every ActionCache implementation keeps, run against the local
// action cache and against the remote client talking to a real server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import type { ActionCache, Cas } from '../../src/cas/index.js';
import {
  ActionResultSchema,
  DirectorySchema,
  OutputDirectorySchema,
  OutputFileSchema,
  TreeSchema,
  digestMessage,
  digestOf,
  toPb,
  type Digest,
} from '../../src/reapi/index.js';

export interface AcRig extends AsyncDisposable {
  cas: Cas;
  ac: ActionCache;
  /** Removes a blob from the backing store (as eviction would). */
  evict(d: Digest): Promise<void>;
}

const action = (n: number): Digest => digestOf(Buffer.from(`action ${n}`));

export function acContract(name: string, makeRig: () => Promise<AcRig>): void {
  describe(`ActionCache contract: ${name}`, () => {
    it('misses for an unknown action', async () => {
      await using rig = await makeRig();
      assert.equal(await rig.ac.getActionResult(action(1)), undefined);
    });

    it('returns a stored result whose blobs exist', async () => {
      await using rig = await makeRig();
      const out = await rig.cas.writeBlob(Buffer.from('object code'));
      const stdout = await rig.cas.writeBlob(Buffer.from('compiling\n'));
      const result = create(ActionResultSchema, {
        outputFiles: [
          create(OutputFileSchema, { path: 'out/main.o', digest: toPb(out), isExecutable: true }),
        ],
        stdoutDigest: toPb(stdout),
        exitCode: 0,
      });
      await rig.ac.updateActionResult(action(2), result);
      const got = await rig.ac.getActionResult(action(2));
      assert.ok(got);
      const file = got.outputFiles[0];
      assert.ok(file);
      assert.equal(file.path, 'out/main.o');
      assert.equal(file.digest?.hash, out.hash);
      assert.equal(file.isExecutable, true);
      assert.equal(got.stdoutDigest?.hash, stdout.hash);
      // Another action digest is still a miss.
      assert.equal(await rig.ac.getActionResult(action(3)), undefined);
    });

    it('replaces an entry on update', async () => {
      await using rig = await makeRig();
      const a = await rig.cas.writeBlob(Buffer.from('first'));
      const b = await rig.cas.writeBlob(Buffer.from('second'));
      const mk = (d: Digest, code: number) =>
        create(ActionResultSchema, {
          outputFiles: [create(OutputFileSchema, { path: 'x', digest: toPb(d) })],
          exitCode: code,
        });
      await rig.ac.updateActionResult(action(4), mk(a, 0));
      await rig.ac.updateActionResult(action(4), mk(b, 3));
      const got = await rig.ac.getActionResult(action(4));
      assert.equal(got?.exitCode, 3);
      assert.equal(got.outputFiles[0]?.digest?.hash, b.hash);
    });

    it('treats an entry whose output blob is gone as a miss', async () => {
      await using rig = await makeRig();
      const out = await rig.cas.writeBlob(Buffer.from('will be evicted'));
      await rig.ac.updateActionResult(
        action(5),
        create(ActionResultSchema, {
          outputFiles: [create(OutputFileSchema, { path: 'gone.o', digest: toPb(out) })],
        }),
      );
      assert.ok(await rig.ac.getActionResult(action(5)));
      await rig.evict(out);
      assert.equal(await rig.ac.getActionResult(action(5)), undefined);
    });

    it('treats an entry whose output directory lost a file as a miss', async () => {
      await using rig = await makeRig();
      const file = await rig.cas.writeBlob(Buffer.from('inside a tree'));
      const root = create(DirectorySchema, { files: [{ name: 'f.txt', digest: toPb(file) }] });
      const tree = digestMessage(TreeSchema, create(TreeSchema, { root }));
      await rig.cas.writeBlob(tree.bytes);
      await rig.ac.updateActionResult(
        action(6),
        create(ActionResultSchema, {
          outputDirectories: [
            create(OutputDirectorySchema, { path: 'outdir', treeDigest: toPb(tree.digest) }),
          ],
        }),
      );
      assert.ok(await rig.ac.getActionResult(action(6)));
      await rig.evict(file);
      assert.equal(await rig.ac.getActionResult(action(6)), undefined);
    });

    it('rejects a result with an invalid output path', async () => {
      await using rig = await makeRig();
      const out = await rig.cas.writeBlob(Buffer.from('x'));
      const bad = create(ActionResultSchema, {
        outputFiles: [create(OutputFileSchema, { path: '../escape', digest: toPb(out) })],
      });
      await assert.rejects(rig.ac.updateActionResult(action(7), bad));
      const badDigest = create(ActionResultSchema, {
        outputFiles: [
          create(OutputFileSchema, { path: 'ok', digest: { hash: 'XYZ', sizeBytes: 1n } }),
        ],
      });
      await assert.rejects(rig.ac.updateActionResult(action(8), badDigest));
      assert.equal(await rig.ac.getActionResult(action(7)), undefined);
    });
  });
}
