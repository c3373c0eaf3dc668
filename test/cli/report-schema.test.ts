// docs/report.schema.json describes what `specbuild build --report` writes:
// a real report, with elements built (with subactions), cached, failed and
// skipped, validates against it; the validator (test/helpers/json-schema.ts,
// the subset of JSON Schema the schema uses) rejects what it should.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ran, specbuild } from '../helpers/cli-rig.js';
import { validate, type Schema } from '../helpers/json-schema.js';
import { repoRoot } from '../helpers/paths.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';

async function reportSchema(): Promise<Schema> {
  return JSON.parse(await readFile(join(repoRoot, 'docs', 'report.schema.json'), 'utf8')) as Schema;
}

describe('the JSON Schema subset validator', () => {
  const schema: Schema = {
    type: 'object',
    required: ['n', 'when'],
    additionalProperties: false,
    properties: {
      n: { type: 'integer' },
      when: { type: 'string', format: 'date-time' },
      tag: { enum: ['a', 'b'] },
      list: { type: 'array', items: { $ref: '#/$defs/hex' } },
      maybe: { oneOf: [{ $ref: '#/$defs/hex' }, { type: 'null' }] },
      v: { const: 1 },
    },
    $defs: { hex: { type: 'string', pattern: '^[0-9a-f]+$' } },
  };

  it('accepts what the schema allows', () => {
    assert.deepEqual(
      validate(schema, {
        n: 3,
        when: '2024-01-02T03:04:05.678Z',
        tag: 'a',
        list: ['00', 'ff'],
        maybe: null,
        v: 1,
      }),
      [],
    );
  });

  it('names the path and the reason of every violation', () => {
    assert.deepEqual(
      validate(schema, {
        n: 1.5,
        when: '2024-13-02',
        tag: 'c',
        list: ['0g'],
        maybe: 7,
        v: 2,
        extra: true,
      }),
      [
        '$.n: is number, not integer',
        '$.when: "2024-13-02" is not a date-time',
        '$.tag: "c" is not one of ["a","b"]',
        '$.list[0]: "0g" does not match ^[0-9a-f]+$',
        '$.maybe: matches 0 of the 2 schemas of oneOf, not 1',
        '$.v: is 2, not 1',
        '$: "extra" is not allowed',
      ],
    );
    assert.deepEqual(validate(schema, { n: 1 }), ['$: "when" is missing']);
    assert.deepEqual(validate(schema, []), ['$: is array, not object']);
  });

  it('refuses a keyword outside its subset instead of ignoring it', () => {
    assert.throws(() => validate({ type: 'string', minLength: 3 }, 'ab'), /"minLength" is outside/);
  });
});

describe('specbuild build --report', () => {
  it('writes a report that docs/report.schema.json describes', async () => {
    await using rig = await ProjectRig.create({
      'project.conf': PROJECT_CONF,
      'elements/base.bst': [
        'kind: manual',
        'config:',
        '  install-commands:',
        '  - echo base > %{install-root}/base.txt',
        '',
      ].join('\n'),
      'elements/cc.bst': [
        'kind: manual',
        'sources:',
        '- kind: local',
        '  path: cc',
        'environment:',
        '  SPECBUILD_SERVER: unix:/run/reapi.sock',
        'sandbox:',
        '  remote-apis-socket:',
        '    path: /run/reapi.sock',
        'config:',
        '  build-commands:',
        '  - specbuild-cc gcc -c one.c -o one.o',
        '  install-commands:',
        '  - install -D one.o %{install-root}%{libdir}/one.o',
        '',
      ].join('\n'),
      'cc/one.c': 'int one(void) { return 1; }\n',
      'elements/bad.bst': 'kind: manual\nconfig:\n  build-commands:\n  - echo no; exit 1\n',
      'elements/after-bad.bst': 'kind: stack\ndepends:\n- bad.bst\n',
      'elements/noref.bst': 'kind: manual\nsources:\n- kind: tar\n  url: file:///nowhere.tar\n',
      'elements/all.bst': [
        'kind: stack',
        'depends:',
        '- base.bst',
        '- cc.bst',
        '- after-bad.bst',
        '- noref.bst',
        '',
      ].join('\n'),
    });
    const first = await specbuild(rig, ['build', 'base.bst']);
    assert.equal(first.code, 0, ran(first));
    const file = join(rig.scratch, 'report.json');
    const r = await specbuild(rig, [
      '--on-error',
      'continue',
      'build',
      '--report',
      file,
      'all.bst',
    ]);
    assert.equal(r.code, 1, ran(r));
    const report = JSON.parse(await readFile(file, 'utf8')) as {
      elements: { name: string; state: string; subactions: string[] }[];
    };
    assert.deepEqual(Object.fromEntries(report.elements.map((e) => [e.name, e.state])), {
      'base.bst': 'cached',
      'cc.bst': 'built',
      'bad.bst': 'failed',
      'after-bad.bst': 'skipped',
      'noref.bst': 'failed',
      'all.bst': 'skipped',
    });
    assert.equal(report.elements.find((e) => e.name === 'cc.bst')?.subactions.length, 1);
    const schema = await reportSchema();
    assert.deepEqual(validate(schema, report), []);
    // And the schema is not vacuous.
    const broken = structuredClone(report) as unknown as {
      elements: Record<string, unknown>[];
    };
    const el = broken.elements[0];
    assert.ok(el !== undefined);
    el.state = 'done';
    delete el.error;
    assert.deepEqual(validate(schema, broken), [
      '$.elements[0]: "error" is missing',
      '$.elements[0].state: "done" is not one of ["built","cached","failed","skipped"]',
    ]);
  });
});
