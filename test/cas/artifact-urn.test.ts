// Artifact URNs: the exact names records are pushed under, and their parsing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { artifactUrn, parseArtifactUrn } from '../../src/cas/index.js';

const KEY = '0123456789abcdef'.repeat(4);

describe('artifact URNs', () => {
  it('name a record by project, normal element name and key', () => {
    assert.equal(
      artifactUrn('hello', 'libs-base', KEY),
      `urn:specbuild:v1:artifact:hello/libs-base/${KEY}`,
    );
    assert.deepEqual(parseArtifactUrn(`urn:specbuild:v1:artifact:hello/libs-base/${KEY}`), {
      project: 'hello',
      element: 'libs-base',
      key: KEY,
    });
    assert.deepEqual(parseArtifactUrn(artifactUrn('_p-1', 'a.b_c-d', KEY)), {
      project: '_p-1',
      element: 'a.b_c-d',
      key: KEY,
    });
  });

  it('refuse names that would be ambiguous or are not keys', () => {
    for (const [p, e, k] of [
      ['hello', 'libs/base.bst', KEY], // not a normal name: has a slash
      ['1st', 'app', KEY], // project names start with a letter or _
      ['hello', '..', KEY],
      ['hello', 'app', KEY.toUpperCase()],
      ['hello', 'app', KEY.slice(1)],
      ['', 'app', KEY],
    ] as const) {
      assert.throws(() => artifactUrn(p, e, k), { code: 'reapi/invalid-name' }, `${p} ${e} ${k}`);
    }
    for (const urn of [
      `urn:fdc:buildstream.build:2020:artifact:hello/app/${KEY}`, // BuildStream's, not ours
      `urn:specbuild:v2:artifact:hello/app/${KEY}`,
      `urn:specbuild:v1:artifact:hello/libs/app/${KEY}`,
      `urn:specbuild:v1:artifact:hello/app/${KEY}/`,
      `urn:specbuild:v1:artifact:hello/app/nokey`,
    ]) {
      assert.equal(parseArtifactUrn(urn), undefined, urn);
    }
  });
});
