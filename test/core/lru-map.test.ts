// LruMap keeps the most recently used entries up to its capacity.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LruMap } from '../../src/core/index.js';

describe('LruMap', () => {
  it('drops the least recently used entry past its capacity', () => {
    const m = new LruMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    assert.equal(m.get('a'), 1); // a is now more recent than b
    m.set('c', 3);
    assert.equal(m.size, 2);
    assert.equal(m.get('b'), undefined);
    assert.equal(m.get('a'), 1);
    assert.equal(m.get('c'), 3);
    m.set('a', 10); // replacing is a use, not a new entry
    m.set('d', 4);
    assert.deepEqual([m.get('a'), m.get('c'), m.get('d')], [10, undefined, 4]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    assert.throws(() => new LruMap(0), RangeError);
    assert.throws(() => new LruMap(1.5), RangeError);
  });
});
