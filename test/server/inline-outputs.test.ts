// GetActionResult's inlining: what is asked for, small blobs only, within one
// response's budget, and never changing the stored result.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { ActionCache, ActionResultSchema, digestOf, toPb } from '../../src/reapi/index.js';
import { startFixture } from '../helpers/server-fixture.js';

describe('ActionCache inlining', () => {
  it('inlines what is asked, small blobs only, within a budget, leaving the stored result alone', async () => {
    await using f = await startFixture('tcp');
    const cas = f.endpoint.cas;
    const stdout = Buffer.from('compiler says hi\n');
    const big = randomBytes(100 * 1024);
    const files = Array.from({ length: 24 }, () => randomBytes(60 * 1024));
    await cas.writeBlobs([stdout, big, ...files]);
    const result = create(ActionResultSchema, {
      stdoutDigest: toPb(digestOf(stdout)),
      outputFiles: [
        { path: 'big.bin', digest: toPb(digestOf(big)) },
        ...files.map((b, i) => ({ path: `f${String(i)}.o`, digest: toPb(digestOf(b)) })),
      ],
    });
    const action = digestOf(Buffer.from('an action'));
    await f.endpoint.actionCache.updateActionResult(action, result);

    const get = (inline: { stdout?: boolean; files?: string[] }) =>
      f.endpoint.connection.unary(ActionCache.method.getActionResult, {
        actionDigest: toPb(action),
        inlineStdout: inline.stdout ?? false,
        inlineOutputFiles: inline.files ?? [],
      });
    const asked = await get({ stdout: true, files: ['f0.o', 'big.bin'] });
    assert.equal(Buffer.from(asked.stdoutRaw).toString(), 'compiler says hi\n');
    const byPath = new Map(asked.outputFiles.map((o) => [o.path, o.contents]));
    assert.ok(Buffer.from(byPath.get('f0.o') ?? []).equals(files[0] ?? Buffer.alloc(1)));
    assert.equal(byPath.get('big.bin')?.length, 0, 'over 64 KiB: not inlined');
    assert.equal(byPath.get('f1.o')?.length, 0, 'not asked for: not inlined');

    const all = await get({ files: files.map((_, i) => `f${String(i)}.o`) });
    const inlined = all.outputFiles.reduce((n, o) => n + o.contents.length, 0);
    assert.ok(inlined > 0 && inlined <= 1024 * 1024, `inlined ${String(inlined)} bytes`);
    assert.ok(inlined < 24 * 60 * 1024, 'the budget stopped it');

    const plain = await get({});
    assert.equal(plain.stdoutRaw.length, 0, 'the stored result was not changed');
    assert.ok(plain.outputFiles.every((o) => o.contents.length === 0));
  });
});
