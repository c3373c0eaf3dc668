// The grpc-js adapter's serializers produce exactly protobuf-es's bytes,
// including the single-copy path for large ByteStream data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { bytestream, methodDefinition } from '../../src/reapi/index.js';

test('large WriteRequest and ReadResponse encode as toBinary does, and decode back', () => {
  const data = randomBytes(1024 * 1024 + 3);
  const write = create(bytestream.WriteRequestSchema, {
    resourceName: 'main/uploads/u/blobs/' + 'a'.repeat(64) + '/9',
    writeOffset: 123456789n,
    finishWrite: true,
    data,
  });
  const wdef = methodDefinition(bytestream.ByteStream.method.write);
  const wire = wdef.requestSerialize(write);
  assert.ok(Buffer.from(toBinary(bytestream.WriteRequestSchema, write)).equals(wire));
  const back = fromBinary(bytestream.WriteRequestSchema, wire);
  assert.equal(back.writeOffset, 123456789n);
  assert.ok(Buffer.from(back.data).equals(data));

  const read = create(bytestream.ReadResponseSchema, { data });
  const rdef = methodDefinition(bytestream.ByteStream.method.read);
  assert.ok(
    Buffer.from(toBinary(bytestream.ReadResponseSchema, read)).equals(rdef.responseSerialize(read)),
  );
  const small = create(bytestream.ReadResponseSchema, { data: Buffer.from('tiny') });
  assert.ok(
    Buffer.from(toBinary(bytestream.ReadResponseSchema, small)).equals(
      rdef.responseSerialize(small),
    ),
  );
});
