// Failures of the local stores' disk writes as specbuild errors. Their
// messages reach remote clients, so they name the blob or entry, never a
// path on the server; the Node error stays as the cause.
import { errnoCode, SpecbuildError } from '../core/index.js';

/**
 * `e`, from writing `what` (e.g. "blob <digest>"), as an error to report: a
 * full disk or quota is `cas/full` (RESOURCE_EXHAUSTED, REAPI's status for a
 * full store), anything else `cas/io` with the errno code. SpecbuildErrors
 * pass through unchanged.
 */
export function writeError(e: unknown, what: string): SpecbuildError {
  if (e instanceof SpecbuildError) return e;
  const code = errnoCode(e);
  if (isDiskFull(e)) {
    return new SpecbuildError('cas/full', `cannot store ${what}: the cache's disk is full`, {
      cause: e,
      temporary: true,
      hint: 'free space on the cache disk, or lower --quota',
    });
  }
  const syscall = e instanceof Error && 'syscall' in e ? ` in ${String(e.syscall)}` : '';
  return new SpecbuildError('cas/io', `cannot store ${what}: ${code ?? 'I/O error'}${syscall}`, {
    cause: e,
  });
}

/** True for the errors of a full disk or an exhausted disk quota. */
export function isDiskFull(e: unknown): boolean {
  const code = errnoCode(e);
  return code === 'ENOSPC' || code === 'EDQUOT';
}
