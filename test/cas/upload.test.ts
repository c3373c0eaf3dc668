// uploadMissing sends only what the store lacks, reading nothing else.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uploadMissing, type Uploads } from '../../src/cas/index.js';
import { digestKey, digestOf } from '../../src/reapi/index.js';
import { startFixture } from '../helpers/server-fixture.js';

describe('uploadMissing', () => {
  it('uploads what the server lacks, from memory or disk, and never reads the rest', async () => {
    await using f = await startFixture('tcp');
    const present = Buffer.from('already there');
    await f.endpoint.cas.writeBlobs([present]);
    const onDisk = Buffer.from('from a file');
    const file = join(f.dir.path, 'input.c');
    writeFileSync(file, onDisk);
    const inMemory = Buffer.from('from memory');
    const items: Uploads = new Map(
      [
        // A path that does not exist: reading it would throw.
        { digest: digestOf(present), path: join(f.dir.path, 'no-such-file') },
        { digest: digestOf(onDisk), path: file },
        { digest: digestOf(inMemory), bytes: inMemory },
      ].map((u) => [digestKey(u.digest), u]),
    );
    await uploadMissing(f.endpoint.cas, items);
    assert.deepEqual(await f.cas.findMissingBlobs([...items.values()].map((u) => u.digest)), []);
    assert.equal(Buffer.from(await f.cas.readBlob(digestOf(onDisk))).toString(), 'from a file');
  });
});
