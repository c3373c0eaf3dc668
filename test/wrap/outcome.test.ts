// The wrapper log's JSON line, whole and in the two parts around its `ms`
// that the native client puts its own time between.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { SpecbuildError } from '../../src/core/index.js';
import { digestOf } from '../../src/reapi/index.js';
import { logLine, logLineAround, type LogEntry } from '../../src/wrap/index.js';

it('writes one JSON object per line, its fields in order, and its parts around ms join to the same line', () => {
  const action = digestOf(Buffer.from('action'));
  const entries: LogEntry[] = [
    { argv: ['gcc', '-c', 'é.c'], outcome: 'local', ms: 0 },
    {
      argv: ['gcc', '-c', 'a.c'],
      outcome: 'hit',
      action,
      ms: 12,
      deps: 'direct',
      worker: 1,
      remembered: true,
      direct: 'fresh',
      native: true,
    },
    {
      argv: ['gcc'],
      outcome: 'fallback',
      ms: 3,
      error: new SpecbuildError('remote/unavailable', 'down'),
      unstored: 'a "quoted" reason',
    },
  ];
  const lines = entries.map(logLine);
  assert.deepEqual(
    lines.map((l) => Object.keys(JSON.parse(l) as object)),
    [
      ['argv', 'outcome', 'action', 'ms'],
      ['argv', 'outcome', 'action', 'ms', 'deps', 'worker', 'remembered', 'direct', 'native'],
      ['argv', 'outcome', 'action', 'ms', 'error', 'unstored'],
    ],
  );
  assert.equal(
    lines[1],
    `{"argv":["gcc","-c","a.c"],"outcome":"hit","action":"${action.hash}/${String(action.size)}","ms":12,"deps":"direct","worker":1,"remembered":true,"direct":"fresh","native":true}\n`,
  );
  assert.equal((JSON.parse(lines[2] ?? '') as { error: string }).error, 'remote/unavailable');
  for (const [i, e] of entries.entries()) {
    const { head, tail } = logLineAround(e);
    assert.equal(`${head}${String(e.ms)}${tail}`, lines[i]);
    assert.equal(`${head}7${tail}`, logLine({ ...e, ms: 7 }));
  }
});
