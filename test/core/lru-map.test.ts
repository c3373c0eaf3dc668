// LruMap keeps the most recently used entries up to its capacity.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LruMap, RecentMap } from '../../src/core/index.js';

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

describe('RecentMap', () => {
  it('believes a value, undefined too, for its time and not a millisecond more', () => {
    const m = new RecentMap<string, string | undefined>(1000, 10);
    m.set('gcc', '/usr/bin/gcc', 5000);
    m.set('cc1', undefined, 5000);
    assert.deepEqual(m.get('gcc', 5999), { value: '/usr/bin/gcc' });
    assert.deepEqual(m.get('cc1', 5999), { value: undefined }, 'an undefined value is still known');
    assert.equal(m.get('gcc', 6000), undefined);
    assert.equal(m.get('nothing', 5000), undefined);
    m.set('gcc', '/usr/local/bin/gcc', 6000);
    assert.deepEqual(
      m.get('gcc', 6500),
      { value: '/usr/local/bin/gcc' },
      'set again, believed again',
    );
    m.delete('gcc');
    assert.equal(m.get('gcc', 6500), undefined);
  });

  it('keeps its most recently used entries only', () => {
    const m = new RecentMap<number, number>(1000, 2);
    m.set(1, 10, 0);
    m.set(2, 20, 0);
    assert.deepEqual(m.get(1, 0), { value: 10 });
    m.set(3, 30, 0);
    assert.deepEqual(
      [m.get(1, 0), m.get(2, 0), m.get(3, 0)],
      [{ value: 10 }, undefined, { value: 30 }],
    );
  });
});
