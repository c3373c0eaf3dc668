// `specbuild explain` as a user runs it: help with examples, the error before
// any build, the text after a rebuild (a golden file, with the digests that
// depend on the host's compiler as placeholders), and --json valid against
// docs/explain.schema.json and saying the same.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Explanation } from '../../src/speculative/index.js';
import { ran, specbuild } from '../helpers/cli-rig.js';
import { assertGolden } from '../helpers/golden.js';
import { validate, type Schema } from '../helpers/json-schema.js';
import { repoRoot } from '../helpers/paths.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { appElement } from '../helpers/scenario.js';

const chain = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst':
    'kind: import\nsources:\n- kind: local\n  path: base\nconfig:\n  target: /usr/include\n',
  'elements/app.bst': appElement(
    ['base.bst'],
    ['$CC -c main.c -o main.o', '$CC -c other.c -o other.o', '$CC -o app main.o other.o'],
  ),
  'base/base.h': '#define BASE 1\n',
  'app/main.c': '#include <base.h>\nint other(void);\nint main(void) { return BASE + other(); }\n',
  'app/other.c': 'int other(void) { return 0; }\n',
};

describe('specbuild explain', () => {
  it('has help with examples', async () => {
    await using rig = await ProjectRig.create(chain);
    const r = await specbuild(rig, ['explain', '--help']);
    assert.equal(r.code, 0, ran(r));
    assert.match(r.stdout, /Usage: specbuild explain \[options\] <element>/);
    assert.match(r.stdout, /--json/);
    assert.match(r.stdout, /Examples:\n {2}specbuild explain app\.bst\n/);
  });

  it('exits 1 with a hint before any build, and 2 on a usage error', async () => {
    await using rig = await ProjectRig.create(chain);
    const r = await specbuild(rig, ['explain', 'app.bst']);
    assert.equal(r.code, 1, ran(r));
    assert.equal(
      r.stderr,
      'error: no build of app.bst is recorded\n  hint: build it (builds record what explain reads): specbuild build app.bst\n',
    );
    const none = await specbuild(rig, ['explain']);
    assert.equal(none.code, 2, ran(none));
    const missing = await specbuild(rig, ['explain', 'nope.bst']);
    assert.equal(missing.code, 2, ran(missing));
  });

  it('explains a rebuild after a header changed, as text and as JSON', async () => {
    await using rig = await ProjectRig.create(chain);
    const build = ['build', '--speculative-actions', 'none', 'app.bst'];
    const first = await specbuild(rig, build);
    assert.equal(first.code, 0, ran(first));
    await rig.write({ 'base/base.h': '#define BASE 10\n' });
    const second = await specbuild(rig, build);
    assert.equal(second.code, 0, ran(second));

    const json = await specbuild(rig, ['explain', '--json', 'app.bst']);
    assert.equal(json.code, 0, ran(json));
    const x = JSON.parse(json.stdout) as Explanation;
    const schema = JSON.parse(
      await readFile(join(repoRoot, 'docs', 'explain.schema.json'), 'utf8'),
    ) as Schema;
    assert.deepEqual(validate(schema, x), []);
    assert.deepEqual(x.actions, { total: 3, hits_primed: 0, hits_cached: 1, misses: 2 });
    assert.deepEqual(
      x.misses.map((m) => m.previous?.inputs.map((d) => d.path)),
      [['usr/include/base.h'], ['buildstream/test/app.bst/main.o']],
    );

    const text = await specbuild(rig, ['explain', 'app.bst']);
    assert.equal(text.code, 0, ran(text));
    assert.equal(text.stderr, '');
    // What depends on the host's gcc and headers (action digests, objects, keys) as placeholders.
    const names = new Map<string, string>();
    const name = (d: string | undefined, as: string): void => {
      if (d !== undefined) names.set(d.split('/')[0]?.slice(0, 12) ?? '', as);
    };
    name(x.strong_key.slice(0, 8), '<key>');
    name(x.previous?.strong_key.slice(0, 8), '<previous key>');
    x.misses.forEach((m, i) => {
      name(m.action, `<miss ${i + 1}>`);
      name(m.previous?.action, `<previous of miss ${i + 1}>`);
      for (const d of m.previous?.inputs ?? [])
        if (d.path.endsWith('.o')) {
          name(d.old?.digest, '<old main.o>');
          name(d.new?.digest, '<new main.o>');
        }
    });
    let out = text.stdout;
    for (const [k, v] of names) out = out.replace(new RegExp(`${k}(/\\d+)?`, 'g'), v);
    assertGolden('explain.expected', out);
  });
});
