// The tar source against real archives made with the system tar: fetched
// through aliases and paths, verified by sha256, unpacked safely, base-dir
// applied, and a staged tree reused by key.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSpecbuildError, type SpecbuildError } from '../../src/core/index.js';
import { LocalCas } from '../../src/cas/index.js';
import { digestKey } from '../../src/reapi/index.js';
import { makeSource, type SourceEnv } from '../../src/project/sources/index.js';
import { tempDir } from '../helpers/tmp.js';
import {
  expectedTree,
  onlySource,
  makeRig,
  readTree,
  run,
  writeFiles,
  type Rig,
} from '../helpers/source-rig.js';
import { ustar } from '../helpers/ustar.js';

const sha256 = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** The package the archives hold: pkg-1.0/ with a file, an executable, a symlink and a subdirectory. */
const PKG = {
  README: 'hello\n',
  'bin/run.sh': 'x:#!/bin/sh\necho run\n',
  'src/main.c': 'int main(void) { return 0; }\n',
  link: '-> README',
};

/** Writes pkg-1.0 under `dir`/work and archives it as mirror/<name> with tar's `flag`. */
async function makeArchive(root: string, name: string, flag: string): Promise<string> {
  const work = join(root, 'work');
  await writeFiles(join(work, 'pkg-1.0'), {
    README: 'hello\n',
    'bin/run.sh': '#!/bin/sh\necho run\n',
    'src/main.c': 'int main(void) { return 0; }\n',
  });
  await chmod(join(work, 'pkg-1.0', 'bin/run.sh'), 0o755);
  await rm(join(work, 'pkg-1.0', 'link'), { force: true }); // made again for each archive
  await symlink('README', join(work, 'pkg-1.0', 'link'));
  await mkdir(join(root, 'mirror'), { recursive: true });
  const out = join(root, 'mirror', name);
  run('tar', [flag, '-f', out, '-C', work, 'pkg-1.0']);
  return out;
}

function tarElement(url: string, extra: Record<string, string> = {}): string {
  const lines = [`- kind: tar`, `  url: ${url}`];
  for (const [k, v] of Object.entries(extra)) lines.push(`  ${k}: ${v}`);
  return `kind: import\nsources:\n${lines.join('\n')}\n`;
}

async function rigWith(root: string, elements: Record<string, string>): Promise<Rig> {
  const files: Record<string, string> = {};
  for (const [name, text] of Object.entries(elements)) files[`elements/${name}`] = text;
  return makeRig(root, files, { mirror: `file://${root}/mirror/` });
}

async function tarSource(rig: Rig, name: string) {
  const el = await rig.element(name);
  return makeSource(onlySource(el));
}

async function rejects(p: Promise<unknown>, code: string): Promise<SpecbuildError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isSpecbuildError(e), String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

const listDir = async (p: string): Promise<string[]> => (await readdir(p).catch(() => [])).sort();

describe('tar source', () => {
  it('fetches through an alias to a file:// mirror, verifies the sha256 and stages base-dir *', async () => {
    await using t = await tempDir();
    const archive = await makeArchive(t.path, 'pkg.tar.gz', '-cz');
    const ref = await sha256(archive);
    const rig = await rigWith(t.path, { 'a.bst': tarElement('mirror:pkg.tar.gz', { ref }) });
    const src = await tarSource(rig, 'a.bst');
    assert.deepEqual(await src.key(rig.env), ['mirror:pkg.tar.gz', ref, '*']);
    assert.equal(await src.isCached(rig.env), false);
    await src.fetch(rig.env);
    assert.equal(await src.isCached(rig.env), true);
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'tar')), [ref]);
    assert.deepEqual(await readFile(join(rig.env.sourceDir, 'tar', ref)), await readFile(archive));
    const root = await src.stage(rig.env);
    assert.equal(digestKey(root), digestKey(expectedTree(PKG)));
    assert.deepEqual(await readTree(rig.cas, root), {
      README: 'hello\n',
      'bin/run.sh': 'x:#!/bin/sh\necho run\n',
      link: '-> README',
      'src/main.c': 'int main(void) { return 0; }\n',
    });
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'tmp')), []);
  });

  it('reads xz, bzip2 and plain archives, by relative path, absolute path and file:// URL', async () => {
    await using t = await tempDir();
    const xz = await makeArchive(t.path, 'pkg.tar.xz', '-cJ');
    const bz = await makeArchive(t.path, 'pkg.tar.bz2', '-cj');
    const plain = await makeArchive(t.path, 'pkg.tar', '-c');
    const rig = await rigWith(t.path, {
      'xz.bst': tarElement('../mirror/pkg.tar.xz', { ref: await sha256(xz) }),
      'bz.bst': tarElement(bz, { ref: await sha256(bz) }),
      'plain.bst': tarElement(`file://${plain}`, { ref: await sha256(plain) }),
    });
    for (const name of ['xz.bst', 'bz.bst', 'plain.bst']) {
      const root = await (await tarSource(rig, name)).stage(rig.env);
      assert.equal(digestKey(root), digestKey(expectedTree(PKG)), name);
    }
  });

  it('base-dir: * takes the first top-level directory in sorted order; globs, paths and the root', async () => {
    await using t = await tempDir();
    const work = join(t.path, 'work');
    await writeFiles(work, {
      'b-dir/f': 'b\n',
      'a-dir/sub/g': 'g\n',
      'a-dir/h': 'h\n',
      top: 'top\n',
    });
    await mkdir(join(t.path, 'mirror'));
    const archive = join(t.path, 'mirror', 'two.tar.gz');
    run('tar', ['-cz', '-f', archive, '-C', work, 'top', 'b-dir', 'a-dir']);
    const ref = await sha256(archive);
    const el = (baseDir?: string): string =>
      tarElement(
        'mirror:two.tar.gz',
        baseDir === undefined ? { ref } : { ref, 'base-dir': baseDir },
      );
    const rig = await rigWith(t.path, {
      'default.bst': el(),
      'glob.bst': el('"b-*"'),
      'path.bst': el('a-dir/sub'),
      'deep.bst': el('"**/sub"'),
      'root.bst': el("''"),
      'none.bst': el('nothing-*'),
    });
    const stage = async (name: string) =>
      readTree(rig.cas, await (await tarSource(rig, name)).stage(rig.env));
    assert.deepEqual(await stage('default.bst'), { h: 'h\n', 'sub/g': 'g\n' });
    assert.deepEqual(await stage('glob.bst'), { f: 'b\n' });
    assert.deepEqual(await stage('path.bst'), { g: 'g\n' });
    assert.deepEqual(await stage('deep.bst'), { g: 'g\n' });
    assert.deepEqual(await stage('root.bst'), {
      'a-dir/h': 'h\n',
      'a-dir/sub/g': 'g\n',
      'b-dir/f': 'b\n',
      top: 'top\n',
    });
    const none = await tarSource(rig, 'none.bst');
    const e = await rejects(none.stage(rig.env), 'source/fetch');
    assert.equal(e.provenance, 'elements/none.bst:6:13');
    assert.match(e.message, /matches base-dir "nothing-\*"/);
  });

  it('refuses an archive whose sha256 is not its ref, naming both and the ref in the element file', async () => {
    await using t = await tempDir();
    const archive = await makeArchive(t.path, 'pkg.tar.gz', '-cz');
    const actual = await sha256(archive);
    const wrong = 'a'.repeat(64);
    const rig = await rigWith(t.path, { 'a.bst': tarElement('mirror:pkg.tar.gz', { ref: wrong }) });
    const src = await tarSource(rig, 'a.bst');
    const e = await rejects(src.fetch(rig.env), 'source/digest-mismatch');
    assert.equal(
      e.message,
      `"mirror:pkg.tar.gz" (${archive}) has sha256 ${actual}, but its ref is ${wrong}`,
    );
    assert.deepEqual(e.location, { file: 'elements/a.bst', line: 5, col: 8, length: 64 });
    assert.equal(e.provenance, 'elements/a.bst:5:8');
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'tar')), []);
    assert.equal(await src.isCached(rig.env), false);
    await rejects(src.stage(rig.env), 'source/digest-mismatch');
  });

  it('refuses URLs that need a network, suggesting an alias to a file:// mirror', async () => {
    await using t = await tempDir();
    const ref = 'b'.repeat(64);
    const rig = await rigWith(t.path, {
      'https.bst': tarElement('https://example.com/pkg.tar.gz', { ref }),
      'alias.bst': tarElement('upstream:pkg.tar.gz', { ref }),
    });
    const e = await rejects((await tarSource(rig, 'https.bst')).fetch(rig.env), 'source/fetch');
    assert.equal(
      e.message,
      'cannot fetch "https://example.com/pkg.tar.gz": specbuild reads sources from local paths and file:// URLs only, and "https" is not an alias of project.conf',
    );
    assert.match(e.hint ?? '', /alias .* file:\/\//);
    assert.equal(e.provenance, 'elements/https.bst:4:8');
    const a = await rejects((await tarSource(rig, 'alias.bst')).fetch(rig.env), 'source/fetch');
    assert.match(a.message, /"upstream" is not an alias of project.conf$/);
  });

  it('without a ref: no key, fetch and stage refuse, track gives the sha256 at the URL', async () => {
    await using t = await tempDir();
    const archive = await makeArchive(t.path, 'pkg.tar.gz', '-cz');
    const rig = await rigWith(t.path, { 'a.bst': tarElement('mirror:pkg.tar.gz') });
    const src = await tarSource(rig, 'a.bst');
    assert.equal(await src.key(rig.env), undefined);
    assert.equal(await src.isCached(rig.env), false);
    const f = await rejects(src.fetch(rig.env), 'source/no-ref');
    assert.match(f.hint ?? '', /specbuild source track/);
    await rejects(src.stage(rig.env), 'source/no-ref');
    assert.equal(await src.track(rig.env), await sha256(archive));
  });

  it('refuses a malformed ref where it is written', async () => {
    await using t = await tempDir();
    const rig = await rigWith(t.path, { 'a.bst': tarElement('mirror:pkg.tar.gz', { ref: 'abc' }) });
    // Checked as the element loads, with every other problem of the run.
    assert.deepEqual(await rig.loadErrors('a.bst'), ['elements/a.bst:5:8 load/invalid-value']);
  });

  it('refuses members that would land outside the extraction directory', async () => {
    await using t = await tempDir();
    const cases: Record<string, Parameters<typeof ustar>[0]> = {
      dotdot: [
        { type: 'dir', name: 'pkg/' },
        { type: 'file', name: 'pkg/../../escaped', content: 'x' },
      ],
      parent: [{ type: 'file', name: '../escaped', content: 'x' }],
      absolute: [{ type: 'file', name: `${t.path}/escaped`, content: 'x' }],
      'under-symlink': [
        { type: 'symlink', name: 'pkg/out', target: t.path },
        { type: 'file', name: 'pkg/out/escaped', content: 'x' },
      ],
      'hardlink-out': [{ type: 'hardlink', name: 'pkg/h', target: '../../../etc/hostname' }],
    };
    const why: Record<string, string> = {
      dotdot: 'member "pkg/../../escaped" contains ".."',
      parent: 'member "../escaped" contains ".."',
      absolute: `member "${t.path}/escaped" is an absolute path`,
      'under-symlink': 'member "pkg/out/escaped" lies under the symlink "pkg/out"',
      'hardlink-out': 'the target "../../../etc/hostname" of hard link "pkg/h" contains ".."',
    };
    const elements: Record<string, string> = {};
    await mkdir(join(t.path, 'mirror'));
    for (const [name, entries] of Object.entries(cases)) {
      const file = join(t.path, 'mirror', `${name}.tar`);
      await writeFile(file, ustar(entries));
      elements[`${name}.bst`] = tarElement(`mirror:${name}.tar`, {
        ref: await sha256(file),
        'base-dir': "''",
      });
    }
    const rig = await rigWith(t.path, elements);
    for (const name of Object.keys(cases)) {
      const e = await rejects((await tarSource(rig, `${name}.bst`)).stage(rig.env), 'source/fetch');
      assert.equal(
        e.message,
        `"mirror:${name}.tar" (${t.path}/mirror/${name}.tar): ${why[name] ?? ''}; the archive is not extracted`,
      );
    }
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'tmp')), []);
    for (const p of [join(t.path, 'escaped'), join(rig.env.sourceDir, 'escaped')])
      await assert.rejects(lstat(p), { code: 'ENOENT' });
  });

  it('keeps symlinks that point outside as symlinks, and leaves out FIFOs and device nodes', async () => {
    await using t = await tempDir();
    await mkdir(join(t.path, 'mirror'));
    const file = join(t.path, 'mirror', 'odd.tar');
    await writeFile(
      file,
      ustar([
        { type: 'dir', name: 'pkg/' },
        { type: 'file', name: 'pkg/f', content: 'f\n', mode: 0o600 },
        { type: 'symlink', name: 'pkg/up', target: '../../..' },
        { type: 'symlink', name: 'pkg/abs', target: '/etc/hostname' },
        { type: 'fifo', name: 'pkg/fifo' },
        { type: 'chardev', name: 'pkg/null', major: 1, minor: 3 },
        { type: 'hardlink', name: 'pkg/g', target: 'pkg/f' },
      ]),
    );
    const rig = await rigWith(t.path, {
      'a.bst': tarElement('mirror:odd.tar', { ref: await sha256(file) }),
    });
    const root = await (await tarSource(rig, 'a.bst')).stage(rig.env);
    const want = { abs: '-> /etc/hostname', f: 'f\n', g: 'f\n', up: '-> ../../..' };
    assert.deepEqual(await readTree(rig.cas, root), want);
    assert.equal(digestKey(root), digestKey(expectedTree(want)));
  });

  it('keys: the URL as written, the ref and base-dir; equal settings, equal keys', async () => {
    await using t = await tempDir();
    const r1 = '1'.repeat(64);
    const r2 = '2'.repeat(64);
    const rig = await rigWith(t.path, {
      'a.bst': tarElement('mirror:pkg.tar.gz', { ref: r1 }),
      'b.bst': tarElement('mirror:pkg.tar.gz', { ref: r1 }),
      'c.bst': tarElement('mirror:pkg.tar.gz', { ref: r2 }),
      'd.bst': tarElement('mirror:pkg.tar.gz', { ref: r1, 'base-dir': 'src' }),
    });
    const key = async (n: string) => (await tarSource(rig, n)).key(rig.env);
    assert.deepEqual(await key('a.bst'), ['mirror:pkg.tar.gz', r1, '*']);
    assert.deepEqual(await key('b.bst'), await key('a.bst'));
    assert.deepEqual(await key('c.bst'), ['mirror:pkg.tar.gz', r2, '*']);
    assert.deepEqual(await key('d.bst'), ['mirror:pkg.tar.gz', r1, 'src']);
  });

  it('a second stage of the same key is a lookup, while the tree is in the CAS', async () => {
    await using t = await tempDir();
    const archive = await makeArchive(t.path, 'pkg.tar.gz', '-cz');
    const ref = await sha256(archive);
    const rig = await rigWith(t.path, { 'a.bst': tarElement('mirror:pkg.tar.gz', { ref }) });
    const src = await tarSource(rig, 'a.bst');
    const first = await src.stage(rig.env);
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'staged')), [
      createHash('sha256')
        .update(JSON.stringify(['tar', ['mirror:pkg.tar.gz', ref, '*']]))
        .digest('hex'),
    ]);
    // Neither the fetched archive nor its origin remains: only the record can answer.
    await rm(join(rig.env.sourceDir, 'tar', ref));
    await rm(archive);
    assert.equal(digestKey(await src.stage(rig.env)), digestKey(first));
    assert.deepEqual(await listDir(join(rig.env.sourceDir, 'tar')), []);
    // A CAS without the tree: the record is not trusted, the archive is needed again.
    const otherCas = await LocalCas.open({ dir: join(t.path, 'other-cache') });
    const env2: SourceEnv = { ...rig.env, cas: otherCas };
    const e = await rejects(src.stage(env2), 'source/fetch');
    assert.match(e.message, /is not a file$/);
    await makeArchive(t.path, 'pkg.tar.gz', '-cz');
    // tar -cz stamps times, so the rebuilt archive is a different file: track it.
    const ref2 = await sha256(archive);
    const rig2 = await rigWith(t.path, { 'b.bst': tarElement('mirror:pkg.tar.gz', { ref: ref2 }) });
    const again = await (await tarSource(rig2, 'b.bst')).stage(env2);
    assert.equal(digestKey(again), digestKey(first));
    assert.deepEqual(await readTree(otherCas, again), await readTree(rig.cas, first));
  });
});
