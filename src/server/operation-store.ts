// The operations an Execution service can name: every running one, and the
// finished ones for a while, for WaitExecution after a broken stream and for
// GetOperation. Finished ones are kept for a time and up to a count, in one
// queue pruned as operations finish or are looked up (a timer each, as
// before, cost a timer per Execute, and at 1,000 cached Executes a second ten
// minutes of them held 600,000 responses).

export class OperationStore<T> {
  private readonly running = new Map<string, T>();
  /** In the order they finished. */
  private readonly finished = new Map<string, { op: T; at: number }>();

  constructor(
    private readonly keepCount: number,
    private readonly keepMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(name: string, op: T): void {
    this.running.set(name, op);
  }

  /** Moves a running operation to the finished ones. */
  finish(name: string): void {
    const op = this.running.get(name);
    if (op === undefined) return;
    this.running.delete(name);
    this.finished.set(name, { op, at: this.now() });
    this.prune();
  }

  /** A running operation, or a finished one still kept. */
  get(name: string): T | undefined {
    const op = this.running.get(name);
    if (op !== undefined) return op;
    this.prune();
    return this.finished.get(name)?.op;
  }

  private prune(): void {
    const now = this.now();
    for (const [name, { at }] of this.finished) {
      if (this.finished.size <= this.keepCount && now - at < this.keepMs) return;
      this.finished.delete(name);
    }
  }
}
