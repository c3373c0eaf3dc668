// The git source against real repositories: a bare mirror cloned once and
// fetched into afterwards, a commit's tree staged exactly, tracking a
// branch, and the refusals (malformed or unknown ref, submodules).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSpecbuildError, type SpecbuildError } from '../../src/core/index.js';
import { digestKey } from '../../src/reapi/index.js';
import { makeSource, type Source } from '../../src/project/sources/index.js';
import { tempDir } from '../helpers/tmp.js';
import {
  expectedTree,
  onlySource,
  gitIn,
  makeRig,
  readTree,
  writeFiles,
  type Rig,
} from '../helpers/source-rig.js';

const FIRST = { README: 'one\n', 'bin/tool': 'x:#!/bin/sh\necho tool\n', link: '-> README' };
const SECOND = { ...FIRST, README: 'two\n', NEWS: 'news\n' };

/** repos/lib with two commits on main; returns their ids. */
async function makeRepo(root: string): Promise<{ repo: string; c1: string; c2: string }> {
  const repo = join(root, 'repos', 'lib');
  await mkdir(repo, { recursive: true });
  gitIn(repo, ['init', '--quiet', '--initial-branch=main']);
  await writeFiles(repo, { README: 'one\n', 'bin/tool': '#!/bin/sh\necho tool\n' });
  await chmod(join(repo, 'bin/tool'), 0o755);
  await symlink('README', join(repo, 'link'));
  gitIn(repo, ['add', '-A']);
  gitIn(repo, ['commit', '--quiet', '-m', 'first']);
  const c1 = gitIn(repo, ['rev-parse', 'HEAD']);
  await writeFiles(repo, { README: 'two\n', NEWS: 'news\n' });
  gitIn(repo, ['add', '-A']);
  gitIn(repo, ['commit', '--quiet', '-m', 'second'], '2020-01-02T00:00:00Z');
  const c2 = gitIn(repo, ['rev-parse', 'HEAD']);
  return { repo, c1, c2 };
}

function gitElement(url: string, extra: Record<string, string>): string {
  const lines = [`- kind: git`, `  url: ${url}`];
  for (const [k, v] of Object.entries(extra)) lines.push(`  ${k}: ${v}`);
  return `kind: import\nsources:\n${lines.join('\n')}\n`;
}

async function rigWith(root: string, elements: Record<string, string>): Promise<Rig> {
  const files: Record<string, string> = {};
  for (const [name, text] of Object.entries(elements)) files[`elements/${name}`] = text;
  return makeRig(root, files, { repos: `file://${root}/repos/` });
}

async function source(rig: Rig, name: string): Promise<Source> {
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

const mirrorName = (origin: string): string => createHash('sha256').update(origin).digest('hex');

describe('git source', () => {
  it('stages the tree of the first commit; track gives the branch head', async () => {
    await using t = await tempDir();
    const { repo, c1, c2 } = await makeRepo(t.path);
    const rig = await rigWith(t.path, {
      'a.bst': gitElement('repos:lib', { track: 'main', ref: c1 }),
    });
    const src = await source(rig, 'a.bst');
    assert.deepEqual(await src.key(rig.env), ['repos:lib', c1]);
    assert.equal(await src.isCached(rig.env), false);
    await src.fetch(rig.env);
    assert.equal(await src.isCached(rig.env), true);
    assert.deepEqual(await readdir(join(rig.env.sourceDir, 'git')), [mirrorName(repo)]);
    const root = await src.stage(rig.env);
    assert.equal(digestKey(root), digestKey(expectedTree(FIRST)));
    assert.deepEqual(await readTree(rig.cas, root), {
      README: 'one\n',
      'bin/tool': 'x:#!/bin/sh\necho tool\n',
      link: '-> README',
    });
    assert.equal(await src.track(rig.env), c2);
    const second = await source(
      await rigWith(t.path, { 'b.bst': gitElement('repos:lib', { ref: c2 }) }),
      'b.bst',
    );
    assert.equal(digestKey(await second.stage(rig.env)), digestKey(expectedTree(SECOND)));
  });

  it('clones the mirror once and fetches into it afterwards', async () => {
    await using t = await tempDir();
    const { repo, c1 } = await makeRepo(t.path);
    const rig = await rigWith(t.path, {
      'a.bst': gitElement('repos:lib', { track: 'main', ref: c1 }),
    });
    const src = await source(rig, 'a.bst');
    await src.fetch(rig.env);
    const mirror = join(rig.env.sourceDir, 'git', mirrorName(repo));
    const before = await stat(mirror);
    await writeFile(join(mirror, 'marker'), 'kept');
    await writeFiles(repo, { NEWS: 'more news\n' });
    gitIn(repo, ['commit', '--quiet', '-a', '-m', 'third'], '2020-01-03T00:00:00Z');
    const c3 = gitIn(repo, ['rev-parse', 'HEAD']);
    assert.equal(await src.track(rig.env), c3);
    const later = await source(
      await rigWith(t.path, { 'c.bst': gitElement('repos:lib', { ref: c3 }) }),
      'c.bst',
    );
    assert.equal(await later.isCached(rig.env), true);
    // A commit made after the last fetch: fetching brings it into the same mirror.
    await writeFiles(repo, { NEWS: 'even more\n' });
    gitIn(repo, ['commit', '--quiet', '-a', '-m', 'fourth'], '2020-01-04T00:00:00Z');
    const c4 = gitIn(repo, ['rev-parse', 'HEAD']);
    const newest = await source(
      await rigWith(t.path, { 'd.bst': gitElement('repos:lib', { ref: c4 }) }),
      'd.bst',
    );
    assert.equal(await newest.isCached(rig.env), false);
    await newest.fetch(rig.env);
    assert.equal(await newest.isCached(rig.env), true);
    const after = await stat(mirror);
    assert.equal(after.ino, before.ino);
    assert.deepEqual(await readdir(join(rig.env.sourceDir, 'git')), [mirrorName(repo)]);
    assert.ok((await readdir(mirror)).includes('marker'));
    assert.deepEqual(await readTree(rig.cas, await newest.stage(rig.env)), {
      NEWS: 'even more\n',
      README: 'two\n',
      'bin/tool': 'x:#!/bin/sh\necho tool\n',
      link: '-> README',
    });
  });

  it('a second stage of the same key is a lookup: the mirror is not needed', async () => {
    await using t = await tempDir();
    const { repo, c1 } = await makeRepo(t.path);
    const rig = await rigWith(t.path, {
      'rel.bst': gitElement('../repos/lib', { ref: c1 }),
      'abs.bst': gitElement(repo, { ref: c1 }),
    });
    const rel = await source(rig, 'rel.bst');
    const first = await rel.stage(rig.env);
    assert.equal(digestKey(first), digestKey(expectedTree(FIRST)));
    await rm(join(rig.env.sourceDir, 'git'), { recursive: true });
    await rm(repo, { recursive: true });
    assert.equal(digestKey(await rel.stage(rig.env)), digestKey(first));
    assert.equal((await readdir(rig.env.sourceDir)).includes('git'), false);
    // The same repository by its absolute path has another key (the URL as written):
    // nothing recorded, and the repository is gone.
    assert.deepEqual(await (await source(rig, 'abs.bst')).key(rig.env), [repo, c1]);
    await rejects((await source(rig, 'abs.bst')).stage(rig.env), 'source/fetch');
  });

  it('refuses malformed refs where they are written, and refs the repository lacks', async () => {
    await using t = await tempDir();
    const { c1 } = await makeRepo(t.path);
    const rig = await rigWith(t.path, {
      'short.bst': gitElement('repos:lib', { ref: c1.slice(0, 12) }),
      'upper.bst': gitElement('repos:lib', { ref: c1.toUpperCase() }),
      'unknown.bst': gitElement('repos:lib', { ref: '0'.repeat(40) }),
      'neither.bst': gitElement('repos:lib', {}),
      'bad-bool.bst': gitElement('repos:lib', { ref: c1, 'checkout-submodules': 'maybe' }),
    });
    for (const name of ['short.bst', 'upper.bst']) {
      assert.deepEqual(await rig.loadErrors(name), [`elements/${name}:5:8 load/invalid-value`]);
    }
    const neither = await rig.element('neither.bst');
    assert.throws(
      () => makeSource(onlySource(neither)),
      (e: unknown) =>
        isSpecbuildError(e, 'load/missing-key') && e.provenance === `elements/neither.bst:3:3`,
    );
    const badBool = await rig.element('bad-bool.bst');
    assert.throws(
      () => makeSource(onlySource(badBool)),
      (e: unknown) =>
        isSpecbuildError(e, 'load/invalid-value') && e.provenance === `elements/bad-bool.bst:6:24`,
    );
    const e = await rejects((await source(rig, 'unknown.bst')).fetch(rig.env), 'source/fetch');
    assert.equal(e.message, `commit ${'0'.repeat(40)} is not in "repos:lib" (${t.path}/repos/lib)`);
    assert.equal(e.provenance, 'elements/unknown.bst:5:8');
  });

  it('without a ref: no key, fetch refuses; a track to a missing branch is a track error', async () => {
    await using t = await tempDir();
    const { c2 } = await makeRepo(t.path);
    const rig = await rigWith(t.path, {
      'a.bst': gitElement('repos:lib', { track: 'main' }),
      'b.bst': gitElement('repos:lib', { track: 'no-such-branch' }),
    });
    const a = await source(rig, 'a.bst');
    assert.equal(await a.key(rig.env), undefined);
    await rejects(a.fetch(rig.env), 'source/no-ref');
    await rejects(a.stage(rig.env), 'source/no-ref');
    assert.equal(await a.track(rig.env), c2);
    const b = await rejects((await source(rig, 'b.bst')).track(rig.env), 'source/track');
    assert.equal(b.provenance, 'elements/b.bst:5:10');
  });

  it('refuses a commit with submodules unless checkout-submodules is false', async () => {
    await using t = await tempDir();
    const { repo } = await makeRepo(t.path);
    await writeFiles(repo, {
      '.gitmodules': '[submodule "dep"]\n\tpath = dep\n\turl = ../dep\n',
    });
    gitIn(repo, ['add', '-A']);
    gitIn(repo, ['commit', '--quiet', '-m', 'submodules'], '2020-01-05T00:00:00Z');
    const c = gitIn(repo, ['rev-parse', 'HEAD']);
    const rig = await rigWith(t.path, {
      'on.bst': gitElement('repos:lib', { ref: c }),
      'off.bst': gitElement('repos:lib', { ref: c, 'checkout-submodules': 'false' }),
    });
    const e = await rejects((await source(rig, 'on.bst')).stage(rig.env), 'source/fetch');
    assert.match(e.message, /has submodules \(\.gitmodules\), which specbuild does not check out$/);
    assert.match(e.hint ?? '', /checkout-submodules: false/);
    const off = await (await source(rig, 'off.bst')).stage(rig.env);
    assert.equal(
      digestKey(off),
      digestKey(
        expectedTree({
          ...SECOND,
          '.gitmodules': '[submodule "dep"]\n\tpath = dep\n\turl = ../dep\n',
        }),
      ),
    );
  });
});
