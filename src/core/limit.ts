// A counting semaphore: bounds how many async tasks of one kind run at once.
// Waiting tasks start highest priority first, then first come.

interface Waiter {
  priority: number;
  start: () => void;
}

export class Limiter {
  private active = 0;
  /** Kept sorted: highest priority first, then first come. */
  private readonly waiting: Waiter[] = [];

  constructor(private readonly max: number) {
    if (!(max >= 1)) throw new RangeError(`Limiter needs max >= 1, got ${max}`);
  }

  async run<T>(task: () => Promise<T>, priority = 0): Promise<T> {
    if (this.active >= this.max) {
      await new Promise<void>((start) => {
        const w: Waiter = { priority, start };
        // Insert after every waiter of the same or higher priority: stable, first come.
        let at = this.waiting.length;
        while (at > 0 && (this.waiting[at - 1]?.priority ?? Infinity) < priority) at--;
        this.waiting.splice(at, 0, w);
      });
    } else {
      this.active++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next.start();
      else this.active--;
    }
  }
}
