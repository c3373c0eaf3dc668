// readSmallFile: regular files of up to its limit, whole; anything else left
// to the asynchronous way, and a FIFO never blocks the thread that asks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSmallFile, SMALL_FILE_BYTES } from '../../src/cas/index.js';
import { tempDir } from '../helpers/tmp.js';

test('reads small regular files whole, and leaves large files, FIFOs and devices to the caller', async () => {
  await using dir = await tempDir();
  const small = join(dir.path, 'small.h');
  writeFileSync(small, '#define X 1\n');
  assert.equal(readSmallFile(small)?.toString(), '#define X 1\n');
  const empty = join(dir.path, 'empty.h');
  writeFileSync(empty, '');
  assert.equal(readSmallFile(empty)?.length, 0);
  const large = join(dir.path, 'large.h');
  writeFileSync(large, Buffer.alloc(SMALL_FILE_BYTES + 1, 0x61));
  assert.equal(readSmallFile(large), undefined);
  // No writer: a blocking open would wait for ever (the test would time out).
  const fifo = join(dir.path, 'fifo.c');
  execFileSync('mkfifo', [fifo]);
  assert.equal(readSmallFile(fifo), undefined);
  assert.equal(readSmallFile('/dev/zero'), undefined);
  assert.throws(() => readSmallFile(join(dir.path, 'absent')), { code: 'ENOENT' });
});
