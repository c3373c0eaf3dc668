// The operations an Execution service can name: running ones always, finished
// ones up to a count and for a time, the oldest forgotten first.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OperationStore } from '../../src/server/operation-store.js';

describe('operation store', () => {
  it('keeps running operations, and finished ones up to its count, oldest out first', () => {
    const clock = { now: 0 };
    const ops = new OperationStore<string>(2, 1000, () => clock.now);
    for (const n of ['a', 'b', 'c', 'd']) ops.add(n, n.toUpperCase());
    for (const n of ['a', 'b', 'c']) ops.finish(n);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((n) => ops.get(n)),
      [undefined, 'B', 'C', 'D'],
    );
    ops.finish('no-such-operation');
    assert.equal(ops.get('b'), 'B');
  });

  it('forgets finished operations after their time, never running ones', () => {
    const clock = { now: 0 };
    const ops = new OperationStore<string>(10, 1000, () => clock.now);
    ops.add('old', 'OLD');
    ops.add('running', 'RUNNING');
    ops.finish('old');
    clock.now = 999;
    assert.equal(ops.get('old'), 'OLD');
    clock.now = 1000;
    assert.equal(ops.get('old'), undefined);
    clock.now = 1e9;
    assert.equal(ops.get('running'), 'RUNNING');
  });
});
