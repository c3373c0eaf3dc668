// Per-sandbox resource limits, enforced by the helper with rlimits: they are
// there to stop a fork bomb or a runaway allocation before it takes the
// machine down, never to get in the way of gcc, make -j or a linker.
import { totalmem } from 'node:os';
import { SpecbuildError } from '../core/index.js';

export interface SandboxLimits {
  /**
   * Tasks (processes and threads) the command may have at once
   * (RLIMIT_NPROC of a user of its own). Default 4096; `Infinity` for none.
   */
  processes?: number;
  /**
   * Data memory (heap, anonymous and private writable mappings) of each of
   * its processes, in bytes (RLIMIT_DATA). Default: the machine's RAM;
   * `Infinity` for none.
   */
  memoryBytes?: number;
}

/**
 * A compile is 3–4 processes (driver, cc1, as), so make -j64 stays under 300
 * and a JVM or a threaded linker adds a few hundred threads; 4096 still stops
 * a fork bomb far below the kernel's default pid_max (32768, for the whole
 * machine).
 */
export const DEFAULT_PROCESS_LIMIT = 4096;

/**
 * No process of a build can usefully allocate more than the machine has; a
 * runaway one then fails its own allocation instead of waking the host's OOM
 * killer. Per process, so make -j is not affected. Programs that reserve far
 * more than they use as writable memory (AddressSanitizer's shadow) need
 * `Infinity`.
 */
export function defaultMemoryLimit(): number {
  return totalmem();
}

/**
 * Why rlimits and not cgroups: cgroups need root or a delegated subtree (v1
 * and v2 differently), and a helper killed on timeout could not remove its
 * group. RLIMIT_NPROC counts per user of a user namespace, and each sandbox
 * has its own, so it is a per-sandbox limit; RLIMIT_DATA is per process.
 */
export function limitArgs(limits: SandboxLimits = {}): string[] {
  const args: string[] = [];
  const processes = limits.processes ?? DEFAULT_PROCESS_LIMIT;
  const memory = limits.memoryBytes ?? defaultMemoryLimit();
  if (processes !== Infinity) args.push('--max-processes', String(checked(processes, 'processes')));
  if (memory !== Infinity) args.push('--max-memory', String(checked(memory, 'memoryBytes')));
  return args;
}

function checked(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new SpecbuildError(
      'sandbox/setup',
      `sandbox limit ${what} must be a positive integer or Infinity, not ${n}`,
    );
  }
  return n;
}
