// Expected failures as values: a loader collects every problem of a run
// instead of throwing at the first (style.md, "collect them all").
import type { SpecbuildError } from './errors.js';

export type Result<T, E = SpecbuildError> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly E[] };

export function ok<T>(value: T): Result<T, never> {
  return { ok: true, value };
}

export function fail<E>(...errors: E[]): Result<never, E> {
  if (errors.length === 0) throw new Error('bug: fail() needs at least one error');
  return { ok: false, errors };
}

/**
 * Gathers diagnostics while a stage runs, and gives a Result at the end:
 * its value when no diagnostic was added, else every diagnostic in order.
 */
export class Diagnostics<E = SpecbuildError> {
  readonly errors: E[] = [];

  add(e: E): void {
    this.errors.push(e);
  }

  /** Adds the errors of `r` and returns its value (undefined when it failed). */
  take<T>(r: Result<T, E>): T | undefined {
    if (r.ok) return r.value;
    this.errors.push(...r.errors);
    return undefined;
  }

  get empty(): boolean {
    return this.errors.length === 0;
  }

  result<T>(value: T): Result<T, E> {
    return this.errors.length === 0 ? ok(value) : { ok: false, errors: [...this.errors] };
  }
}
