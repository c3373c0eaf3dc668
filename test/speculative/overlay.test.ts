// newOverlay makes what protobuf-es's create makes, so generated
// speculative actions are the same messages (and the same bytes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { digestOf, speculativePb, toPb } from '../../src/reapi/index.js';
import { newOverlay, OverlayType } from '../../src/speculative/index.js';

test('newOverlay makes what create makes', () => {
  const target = digestOf(Buffer.from('t'));
  const action = digestOf(Buffer.from('a'));
  for (const o of [
    {
      type: OverlayType.SOURCE,
      sourceElement: '',
      sourcePath: 'x.c',
      targetDigest: target,
      targetPaths: ['a/x.c'],
    },
    {
      type: OverlayType.ACTION,
      sourceElement: 'dep.bst',
      sourcePath: 'x.o',
      targetDigest: target,
      sourceActionDigest: action,
      targetPaths: ['a/x.o', 'b/x.o'],
    },
  ]) {
    const want = create(speculativePb.OverlaySchema, {
      ...o,
      targetDigest: toPb(o.targetDigest),
      sourceActionDigest:
        o.sourceActionDigest === undefined ? undefined : toPb(o.sourceActionDigest),
    });
    const got = newOverlay(o);
    assert.deepEqual(got, want);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    assert.deepEqual(
      toBinary(speculativePb.OverlaySchema, got),
      toBinary(speculativePb.OverlaySchema, want),
    );
  }
});
