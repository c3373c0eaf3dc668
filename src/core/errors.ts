// The one error base of specbuild: a closed set of stable codes, with optional
// provenance, hint, cause and a "temporary" flag for retryable failures.

/** Every error code specbuild raises. Add new codes here; never reuse one. */
export type ErrorCode =
  | 'reapi/invalid-digest'
  | 'reapi/invalid-name'
  | 'reapi/invalid-path'
  | 'reapi/invalid-directory'
  | 'reapi/invalid-message'
  | 'cas/not-found'
  | 'cas/digest-mismatch'
  | 'cas/out-of-range'
  | 'cas/io'
  | 'cas/stage-conflict'
  | 'cas/full'
  | 'cas/worker-lost'
  | 'remote/unavailable'
  | 'remote/deadline'
  | 'remote/protocol'
  | 'remote/permission'
  | 'remote/invalid-argument'
  | 'remote/not-found'
  | 'remote/failed-precondition'
  | 'remote/unsupported'
  | 'remote/invalid-target'
  | 'remote/token-file'
  | 'remote/read-only'
  | 'remote/tls'
  | 'server/unknown-instance'
  | 'server/batch-too-large'
  | 'server/listen'
  | 'server/upload-busy'
  | 'server/client-gone'
  | 'server/no-execution'
  | 'server/unknown-operation'
  | 'server/too-many-uploads'
  | 'server/unauthenticated'
  | 'server/no-assets'
  | 'server/crashed'
  | 'sandbox/unavailable'
  | 'sandbox/setup'
  | 'exec/timeout'
  | 'exec/missing-inputs'
  | 'exec/platform'
  | 'exec/invalid-action'
  | 'exec/too-large'
  | 'wrap/usage'
  | 'wrap/protocol'
  | 'load/invalid-yaml'
  | 'load/unknown-key'
  | 'load/wrong-type'
  | 'load/missing-key'
  | 'load/invalid-value'
  | 'load/undefined-variable'
  | 'load/circular-variable'
  | 'load/protected-variable'
  | 'load/list-directive'
  | 'load/missing-file'
  | 'load/bad-element-name'
  | 'load/dependency-cycle'
  | 'load/version'
  | 'source/fetch'
  | 'source/digest-mismatch'
  | 'source/no-ref'
  | 'source/track'
  | 'asset/missing-content'
  | 'artifact/not-cached'
  | 'build/failed'
  | 'build/interrupted'
  | 'cli/usage'
  | 'internal';

/** A place in a file: 1-based line and column, and how many characters are at fault. */
export interface Location {
  file: string;
  line: number;
  col: number;
  length?: number;
}

export interface ErrorOptions {
  /** Where the problem is, e.g. `elements/a.bst:3:5` or a file path (default: from `location`). */
  provenance?: string;
  /** Where in a file the problem is, so that a renderer can show the faulty text. */
  location?: Location;
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
  /** True when retrying the same operation later may succeed. */
  temporary?: boolean;
}

export class SpecbuildError extends Error {
  readonly code: ErrorCode;
  readonly provenance: string | undefined;
  readonly location: Location | undefined;
  readonly hint: string | undefined;
  readonly temporary: boolean;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpecbuildError';
    this.code = code;
    this.location = options.location;
    this.provenance =
      options.provenance ??
      (options.location === undefined
        ? undefined
        : `${options.location.file}:${options.location.line}:${options.location.col}`);
    this.hint = options.hint;
    this.temporary = options.temporary ?? false;
  }

  /**
   * Anything caught, as a SpecbuildError: itself when it is one, else an
   * error of `code` (default `internal`) with the original as its cause, so
   * that code and message travel together wherever it goes next.
   */
  static from(
    e: unknown,
    code: ErrorCode = 'internal',
    options: ErrorOptions = {},
  ): SpecbuildError {
    if (e instanceof SpecbuildError) return e;
    const message = e instanceof Error ? e.message : String(e);
    return new SpecbuildError(code, message, { ...options, cause: e });
  }
}

export function isSpecbuildError(e: unknown, code?: ErrorCode): e is SpecbuildError {
  return e instanceof SpecbuildError && (code === undefined || e.code === code);
}

/** Keeps switches exhaustive: reaching this is a bug. */
export function unreachable(x: never): never {
  throw new Error(`unreachable: ${String(x)}`);
}

/** Node's errno code of an error thrown by `fs`, if any. */
export function errnoCode(e: unknown): string | undefined {
  if (e instanceof Error && 'code' in e && typeof e.code === 'string') return e.code;
  return undefined;
}
