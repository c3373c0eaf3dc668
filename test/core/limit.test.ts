// The Limiter: at most `max` tasks at once, waiting ones highest priority first, then first come.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Limiter } from '../../src/core/index.js';

describe('Limiter', () => {
  it('runs at most max tasks at once, and starts waiting ones by priority, then in arrival order', async () => {
    const limiter = new Limiter(1);
    const started: string[] = [];
    let running = 0;
    let most = 0;
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const task = (name: string, wait?: Promise<void>) => async () => {
      started.push(name);
      running++;
      most = Math.max(most, running);
      await (wait ?? Promise.resolve());
      running--;
    };
    const all = [
      limiter.run(task('first', gate)),
      limiter.run(task('low-a'), -2),
      limiter.run(task('high'), 5),
      limiter.run(task('low-b'), -2),
      limiter.run(task('mid'), 0),
      limiter.run(task('high-2'), 5),
    ];
    release();
    await Promise.all(all);
    assert.deepEqual(started, ['first', 'high', 'high-2', 'mid', 'low-a', 'low-b']);
    assert.equal(most, 1);
  });
});
