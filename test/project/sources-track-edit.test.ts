// Writing a tracked ref into an element file changes that value and nothing
// else: every other byte (comments, quoting, other sources, an unrelated
// `ref:`) stays as it was.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSpecbuildError } from '../../src/core/index.js';
import { setSourceRef, writeSourceRef } from '../../src/project/sources/index.js';
import { tempDir } from '../helpers/tmp.js';

const NEW = 'c'.repeat(40);

const ELEMENT = `# An element with several sources.
kind: import

variables:
  ref: not-a-source   # an unrelated ref

sources:
  # the upstream release
  - kind: tar
    url: upstream:pkg-1.0.tar.gz
    ref: ${'a'.repeat(64)}   # pinned
    base-dir: pkg-1.0
  - kind: git        # the patches
    url: 'repos:patches'
    track: main
    ref: '${'b'.repeat(40)}'
    directory: patches
  - kind: local
    path: files

public:
  ref: also-unrelated
`;

describe('track edits', () => {
  it('changes only the value of the target ref, byte for byte elsewhere', () => {
    const out = setSourceRef(ELEMENT, 1, NEW, 'elements/a.bst');
    assert.equal(out, ELEMENT.replace(`'${'b'.repeat(40)}'`, `'${NEW}'`));
    const tar = setSourceRef(ELEMENT, 0, 'd'.repeat(64), 'elements/a.bst');
    assert.equal(tar, ELEMENT.replace('a'.repeat(64), 'd'.repeat(64)));
  });

  it('keeps double quotes, and fills an empty or null ref', () => {
    const text =
      'sources:\n- kind: git\n  ref: "x"\n- kind: git\n  ref:\n- kind: git\n  ref: ~ # none\n';
    assert.equal(
      setSourceRef(text, 0, NEW, 'e.bst'),
      `sources:\n- kind: git\n  ref: "${NEW}"\n- kind: git\n  ref:\n- kind: git\n  ref: ~ # none\n`,
    );
    assert.equal(
      setSourceRef(text, 1, NEW, 'e.bst'),
      `sources:\n- kind: git\n  ref: "x"\n- kind: git\n  ref: ${NEW}\n- kind: git\n  ref: ~ # none\n`,
    );
    assert.equal(
      setSourceRef(text, 2, NEW, 'e.bst'),
      `sources:\n- kind: git\n  ref: "x"\n- kind: git\n  ref:\n- kind: git\n  ref: ${NEW} # none\n`,
    );
  });

  it('inserts a ref line with the mapping indentation when there is none', () => {
    const out = setSourceRef(ELEMENT, 2, NEW, 'elements/a.bst');
    assert.equal(out, ELEMENT.replace('    path: files\n', `    path: files\n    ref: ${NEW}\n`));
    const last = 'sources:\n-   kind: git\n    url: r   # c\n    track: main';
    assert.equal(
      setSourceRef(last, 0, NEW, 'e.bst'),
      `sources:\n-   kind: git\n    url: r   # c\n    track: main\n    ref: ${NEW}\n`,
    );
    const crlf = 'sources:\r\n- kind: git\r\n  url: r\r\n# end\r\n';
    assert.equal(
      setSourceRef(crlf, 0, NEW, 'e.bst'),
      `sources:\r\n- kind: git\r\n  url: r\r\n  ref: ${NEW}\r\n# end\r\n`,
    );
  });

  it('handles flow-style mappings', () => {
    const text = 'sources: [{kind: git, url: r}, {kind: git, url: s, ref: old}]  # flow\n';
    assert.equal(
      setSourceRef(text, 0, NEW, 'e.bst'),
      `sources: [{kind: git, url: r, ref: ${NEW}}, {kind: git, url: s, ref: old}]  # flow\n`,
    );
    assert.equal(
      setSourceRef(text, 1, NEW, 'e.bst'),
      `sources: [{kind: git, url: r}, {kind: git, url: s, ref: ${NEW}}]  # flow\n`,
    );
  });

  it('refuses what it cannot edit in place', () => {
    const cases: [string, number, string | undefined, string][] = [
      ['kind: import\n', 0, undefined, 'it has no "sources" list of its own'],
      ['sources:\n- kind: git\n', 1, undefined, 'sources[1] is not a mapping in this file'],
      ['sources:\n- kind: git\n', 0, 'tar', 'sources[0] is of kind "git" here, not "tar"'],
      ['sources:\n- kind: git\n  ref: [a]\n', 0, undefined, 'its ref is not a plain value'],
    ];
    for (const [text, index, kind, why] of cases) {
      assert.throws(
        () => setSourceRef(text, index, NEW, 'e.bst', kind),
        (e: unknown) =>
          isSpecbuildError(e, 'source/track') &&
          e.message === `cannot write the new ref into e.bst: ${why}`,
      );
    }
  });

  it('rewrites the file atomically, keeping its permissions', async () => {
    await using t = await tempDir();
    const file = join(t.path, 'a.bst');
    await writeFile(file, ELEMENT);
    await chmod(file, 0o640);
    await writeSourceRef(file, 1, NEW, 'elements/a.bst', 'git');
    assert.equal(await readFile(file, 'utf8'), ELEMENT.replace(`'${'b'.repeat(40)}'`, `'${NEW}'`));
    assert.equal((await stat(file)).mode & 0o777, 0o640);
    assert.deepEqual(await readdir(t.path), ['a.bst']);
  });
});
