// Writing a result's outputs: only what the action declared, atomically, with
// the executable bit; a result naming other paths writes nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { LocalCas, type Cas } from '../../src/cas/index.js';
import { ActionResultSchema, toPb } from '../../src/reapi/index.js';
import { writeOutputs } from '../../src/wrap/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('writeOutputs', () => {
  it('writes declared outputs and refuses undeclared or escaping ones', async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: join(dir.path, 'cache') });
    const [obj, prog] = await cas.writeBlobs([Buffer.from('object'), Buffer.from('#!prog')]);
    assert.ok(obj && prog);
    const work = join(dir.path, 'work');
    const file = (path: string, d = obj, exec = false) => ({
      path,
      digest: toPb(d),
      isExecutable: exec,
    });

    const good = create(ActionResultSchema, {
      outputFiles: [file('build/a.o'), file('app', prog, true)],
    });
    await writeOutputs(cas, good, work, ['app', 'build/a.o']);
    assert.equal(readFileSync(join(work, 'build', 'a.o'), 'utf8'), 'object');
    assert.equal(statSync(join(work, 'app')).mode & 0o111, 0o111);
    assert.equal(statSync(join(work, 'build', 'a.o')).mode & 0o111, 0);
    assert.deepEqual(
      readdirSync(join(work, 'build')),
      ['a.o'],
      'no temporary files are left behind',
    );

    for (const [path, why] of [
      ['../escape.o', /"\.\."|\.\./],
      ['/etc/evil', /absolute/],
      ['other.o', /did not declare/],
    ] as const) {
      const bad = create(ActionResultSchema, { outputFiles: [file(path)] });
      await assert.rejects(writeOutputs(cas, bad, work, ['app', 'build/a.o']), why);
    }
    assert.ok(!existsSync(join(dir.path, 'escape.o')));
    assert.ok(!existsSync(join(work, 'other.o')));

    // A result with a declared output and an undeclared one writes neither.
    const mixed = create(ActionResultSchema, {
      outputFiles: [file('fresh.o'), file('../escape.o')],
    });
    await assert.rejects(writeOutputs(cas, mixed, work, ['fresh.o']));
    assert.ok(!existsSync(join(work, 'fresh.o')), 'checked before anything is written');

    // A blob missing mid-way leaves the old output whole and no temporary file.
    const [lost] = await cas.writeBlobs([Buffer.from('lost')]);
    assert.ok(lost);
    await unlink(cas.pathOf(lost));
    const broken = create(ActionResultSchema, { outputFiles: [file('build/a.o', lost)] });
    await assert.rejects(writeOutputs(cas, broken, work, ['build/a.o']), { code: 'cas/not-found' });
    assert.equal(readFileSync(join(work, 'build', 'a.o'), 'utf8'), 'object');
    assert.deepEqual(readdirSync(join(work, 'build')), ['a.o']);
  });

  it("copies outputs from the server's blob directory when it is visible, else reads them", async () => {
    await using dir = await tempDir();
    const cas = await LocalCas.open({ dir: join(dir.path, 'cache') });
    const [obj, prog] = await cas.writeBlobs([Buffer.from('object'), Buffer.from('#!prog')]);
    assert.ok(obj && prog);
    // Counts what goes through the CAS interface (the gRPC reads of a remote one).
    let reads = 0;
    const counted: Cas = {
      findMissingBlobs: (d, o) => cas.findMissingBlobs(d, o),
      readBlob: (d, o) => {
        reads++;
        return cas.readBlob(d, o);
      },
      readBlobs: (d, o) => {
        reads++;
        return cas.readBlobs(d, o);
      },
      readStream: (d, r, o) => {
        reads++;
        return cas.readStream(d, r, o);
      },
      writeBlob: (b, o) => cas.writeBlob(b, o),
      writeBlobs: (b, o) => cas.writeBlobs(b, o),
      writeStream: (d, data, o) => cas.writeStream(d, data, o),
    };
    const work = join(dir.path, 'work');
    const result = create(ActionResultSchema, {
      outputFiles: [
        { path: 'a.o', digest: toPb(obj), isExecutable: false },
        { path: 'app', digest: toPb(prog), isExecutable: true },
      ],
    });
    await writeOutputs(counted, result, work, ['a.o', 'app'], cas.objectsDir);
    assert.equal(reads, 0);
    assert.equal(readFileSync(join(work, 'a.o'), 'utf8'), 'object');
    assert.equal(statSync(join(work, 'app')).mode & 0o777, 0o755);
    assert.equal(statSync(join(work, 'a.o')).mode & 0o777, 0o644);
    // The blob file itself is untouched (a copy, not a link).
    assert.equal(statSync(cas.pathOf(obj)).nlink, 1);
    // A blob directory that lacks them: read through the interface instead.
    await writeOutputs(counted, result, work, ['a.o', 'app'], join(dir.path, 'nowhere'));
    assert.equal(reads, 2);
    assert.deepEqual(readdirSync(work).sort(), ['a.o', 'app']);
  });
});
