// The stat cache trusts a file's digest only while its size, mtime, ctime and
// inode are unchanged and it was not modified within the last second.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, linkSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMALL_FILE_BYTES } from '../../src/cas/index.js';
import { digestKey, digestOfFile, fileStatOf, type FileStat } from '../../src/reapi/index.js';
import { MARK_ASM, MARK_DATE, MARK_TIMESTAMP, StatCache, marksOf } from '../../src/wrap/index.js';
import { tempDir } from '../helpers/tmp.js';

/** Dates the file a minute back, past the freshness window. */
function age(path: string, seconds = 60): void {
  const t = new Date(Math.floor(Date.now() / 1000 - seconds) * 1000);
  utimesSync(path, t, t);
}

/**
 * A clock 2 s ahead: setting an mtime sets the ctime to now, which no call
 * can date back, so files aged with age() are past the freshness window only
 * on this clock.
 */
const later = (): number => Date.now() + 2000;

describe('marksOf', () => {
  it('notes assembler directives that read files, and the time macros', () => {
    const of = (text: string): number => marksOf(Buffer.from(text));
    assert.equal(of('int x;\n#include "a.h"\n'), 0);
    assert.equal(of('__asm__(".incbin \\"b.bin\\"");'), MARK_ASM);
    assert.equal(of('.include "inc.s"\n'), MARK_ASM);
    assert.equal(of('const char *d = __DATE__;'), MARK_DATE);
    assert.equal(of('const char *t = __TIME__;'), MARK_DATE);
    assert.equal(of('const char *s = __TIMESTAMP__;'), MARK_TIMESTAMP);
    assert.equal(of('.incbin __TIME__ __TIMESTAMP__'), MARK_ASM | MARK_DATE | MARK_TIMESTAMP);
  });
});

describe('StatCache', () => {
  it('finds the marks of a large file in one streamed read, a word split between its chunks too', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'big.c');
    const word = Buffer.from('__TIMESTAMP__');
    const data = Buffer.alloc(3 * (1 << 20), 0x20);
    word.copy(data, (1 << 20) - 6); // 6 bytes in the first 1 MiB chunk, 7 in the second
    writeFileSync(f, data);
    const got = await new StatCache(undefined, later).digest(f);
    assert.equal(got.marks, MARK_TIMESTAMP);
    assert.equal(digestKey(got.digest), digestKey(await digestOfFile(f)));
    writeFileSync(f, Buffer.alloc(3 * (1 << 20), 0x20));
    assert.equal((await new StatCache(undefined).digest(f)).marks, 0);
  });

  it('hashes a binary without looking for marks, and again for a caller that wants them', async () => {
    await using dir = await tempDir();
    for (const bytes of [SMALL_FILE_BYTES - 100, 2 * (1 << 20)]) {
      // A compiler's binary holds the words as strings (cc1 does).
      const f = join(dir.path, `cc1-${String(bytes)}`);
      const data = Buffer.alloc(bytes, 0x7f);
      Buffer.from('__DATE__').copy(data, 1000);
      writeFileSync(f, data);
      age(f);
      const c = new StatCache(undefined, later);
      const want = digestKey(await digestOfFile(f));
      const bare = await c.digest(f, { marks: false });
      assert.deepEqual([digestKey(bare.digest), bare.marks, c.misses], [want, 0, 1]);
      // Remembered: a second such call hashes nothing.
      assert.equal((await c.digest(f, { marks: false })).marks, 0);
      assert.equal(c.misses, 1);
      // A caller that wants the marks gets them: the file is read again, once.
      const full = await c.digest(f);
      assert.deepEqual([digestKey(full.digest), full.marks, c.misses], [want, MARK_DATE, 2]);
      assert.equal((await c.digest(f)).marks, MARK_DATE);
      assert.equal((await c.digest(f, { marks: false })).marks, MARK_DATE);
      assert.equal(c.misses, 2);
    }
  });

  it("takes a digest seeded with the stat it was hashed under, unless the stat is too new or no longer the file's", async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'as');
    writeFileSync(f, 'an assembler');
    age(f);
    const statOf = (): FileStat => fileStatOf(statSync(f, { bigint: true }));
    const want = await digestOfFile(f);
    // On the stat's word: no read (a wrong hash would be believed, which is how this shows it).
    const c = new StatCache(undefined, later);
    c.seed(f, statOf(), 'ab'.repeat(32));
    const got = await c.digest(f, { marks: false });
    assert.deepEqual([got.digest.hash, c.misses], ['ab'.repeat(32), 0]);
    // A caller that wants the marks has it read.
    assert.deepEqual([digestKey((await c.digest(f)).digest), c.misses], [digestKey(want), 1]);
    // A stat within the freshness window is not taken (the default clock: the ctime is now).
    const d = new StatCache(undefined);
    d.seed(f, statOf(), 'ab'.repeat(32));
    assert.deepEqual(
      [digestKey((await d.digest(f, { marks: false })).digest), d.misses],
      [digestKey(want), 1],
    );
    // Nor one the file no longer has.
    const e = new StatCache(undefined, later);
    e.seed(f, { ...statOf(), size: 3 }, 'ab'.repeat(32));
    assert.deepEqual(
      [digestKey((await e.digest(f, { marks: false })).digest), e.misses],
      [digestKey(want), 1],
    );
  });

  it('reuses a digest while the file is unchanged, and rehashes when it changes', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'x.h');
    writeFileSync(f, '#define X 1\n');
    age(f);
    const c = new StatCache(undefined, later);
    const first = await c.digest(f);
    assert.equal(digestKey(first.digest), digestKey(await digestOfFile(f)));
    assert.equal(first.executable, false);
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [1, 1]);

    // New content, new mtime: rehashed.
    writeFileSync(f, '#define X 2\n');
    age(f, 30);
    const changed = await c.digest(f);
    assert.equal(digestKey(changed.digest), digestKey(await digestOfFile(f)));
    assert.equal(c.misses, 2);

    // Replaced by another file of the same size and mtime: the inode tells.
    const other = join(dir.path, 'other');
    writeFileSync(other, '#define X 3\n');
    utimesSync(other, statSync(f).atime, statSync(f).mtime);
    renameSync(other, f);
    const replaced = await c.digest(f);
    assert.equal(digestKey(replaced.digest), digestKey(await digestOfFile(f)));
    assert.equal(c.misses, 3);

    chmodSync(f, 0o755);
    assert.equal((await c.digest(f)).executable, true);
  });

  it('sees a file rewritten in place with its size and mtime put back (cp -p): its ctime moved', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'h.h');
    writeFileSync(f, '#define V 1\n');
    age(f, 600);
    const c = new StatCache(undefined, later);
    const v1 = await c.digest(f);
    const { atime, mtime, ino } = statSync(f);
    writeFileSync(f, '#define V 2\n'); // the same inode, the same size
    utimesSync(f, atime, mtime);
    assert.deepEqual([statSync(f).ino, statSync(f).mtimeMs], [ino, mtime.getTime()]);
    const v2 = await c.digest(f);
    assert.equal(digestKey(v2.digest), digestKey(await digestOfFile(f)));
    assert.notEqual(digestKey(v2.digest), digestKey(v1.digest));
    assert.deepEqual([c.misses, c.hits], [2, 0]);
    // Unchanged since: from the cache.
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [2, 1]);
  });

  it('never trusts a file with one link whose inode changed within the last second, whatever its mtime', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'h.h');
    writeFileSync(f, '#define V 1\n');
    age(f, 600); // mtime 10 minutes back, ctime now
    const c = new StatCache(undefined);
    await c.digest(f);
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [2, 0]);
  });

  it('hashes again once after the inode changed (a new hard link moves the ctime), then trusts it', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'h.h');
    writeFileSync(f, '#define V 1\n');
    age(f, 600);
    const c = new StatCache(undefined, later);
    await c.digest(f);
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [1, 1]);
    linkSync(f, join(dir.path, 'staged.h'));
    await c.digest(f);
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [2, 2]);
  });

  it('hashes small files (read synchronously) and large ones (streamed) alike, and empty ones', async () => {
    await using dir = await tempDir();
    const c = new StatCache(undefined);
    for (const size of [0, 1, SMALL_FILE_BYTES, SMALL_FILE_BYTES + 1, 3 * 1024 * 1024 + 7]) {
      const f = join(dir.path, `f${String(size)}`);
      writeFileSync(f, Buffer.alloc(size, size % 251));
      age(f);
      const got = await c.digest(f);
      assert.equal(digestKey(got.digest), digestKey(await digestOfFile(f)), String(size));
      assert.equal(got.digest.size, size);
    }
  });

  it('never trusts a file modified within the last second (its mtime may not move again)', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'fresh.c');
    writeFileSync(f, 'a');
    const c = new StatCache(undefined);
    await c.digest(f);
    writeFileSync(f, 'b'); // same size, possibly the same mtime tick
    assert.equal(digestKey((await c.digest(f)).digest), digestKey(await digestOfFile(f)));
    assert.deepEqual([c.misses, c.hits], [2, 0]);
  });

  it('saves and loads its entries; a damaged file starts it empty', async () => {
    await using dir = await tempDir();
    const f = join(dir.path, 'x.h');
    writeFileSync(f, 'int x;\n');
    age(f);
    const file = join(dir.path, 'cache', 'stat.json');
    const a = await StatCache.load(file, later);
    await a.digest(f);
    await a.save();
    const b = await StatCache.load(file, later);
    await b.digest(f);
    assert.deepEqual([b.misses, b.hits], [0, 1]);
    writeFileSync(file, '{"half');
    const c = await StatCache.load(file);
    await c.digest(f);
    assert.deepEqual([c.misses, c.hits], [1, 0]);
  });
});
