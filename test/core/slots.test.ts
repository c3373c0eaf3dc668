// The CPU slot pool shared by builds and actions: priorities, cancellation,
// and the slot a build lends to its actions (which must never deadlock when
// builds hold every slot of the pool).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LentSlot, SlotPool } from '../../src/core/index.js';

describe('SlotPool and LentSlot', () => {
  it('serves higher priorities first, then first come', async () => {
    const pool = new SlotPool(1);
    const hold = await pool.acquire();
    const order: string[] = [];
    const waits = [
      pool.acquire(-1).then((r) => (order.push('prime'), r)),
      pool.acquire(0).then((r) => (order.push('build-1'), r)),
      pool.acquire(0).then((r) => (order.push('build-2'), r)),
    ];
    hold();
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      const next = await Promise.race(waits.map((w, j) => w.then(() => j)));
      (await waits[next])?.();
      waits.splice(next, 1);
    }
    assert.deepEqual(order, ['build-1', 'build-2', 'prime']);
    assert.equal(pool.busy, 0);
  });

  it('a cancelled wait leaves the queue', async () => {
    const pool = new SlotPool(1);
    const hold = await pool.acquire();
    const abort = new AbortController();
    const waiting = pool.acquire(0, abort.signal);
    abort.abort(new Error('gone'));
    await assert.rejects(waiting, /gone/);
    hold();
    assert.equal(pool.busy, 0);
  });

  it('builds holding every slot still run all their actions, one at a time on their lent slot', async () => {
    const pool = new SlotPool(2);
    const builds = await Promise.all([pool.acquire(), pool.acquire()]);
    const lent = [new LentSlot(pool), new LentSlot(pool)];
    let running = 0;
    let most = 0;
    const action = async (slot: LentSlot): Promise<void> => {
      const release = await slot.acquire();
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      release();
    };
    // Three actions per build: without handing the lent slot to the next one, this never ends.
    await Promise.all(lent.flatMap((l) => [action(l), action(l), action(l)]));
    assert.equal(most, 2, 'never more than the two lent slots at once');
    for (const b of builds) b();
    assert.equal(pool.busy, 0);
  });

  it('an action takes a pool slot when one is free, even while the lent slot is out', async () => {
    const pool = new SlotPool(2);
    const build = await pool.acquire();
    const lent = new LentSlot(pool);
    const first = await lent.acquire();
    const second = await lent.acquire();
    assert.equal(pool.busy, 2);
    second();
    first();
    build();
    assert.equal(pool.busy, 0);
  });
});
