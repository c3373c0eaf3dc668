// The one mapping from outcomes and errors to process exit codes, for every
// entry point (specbuild, specbuild-exec's Node form, the wrapper daemon).
import { SpecbuildError, type ErrorCode } from '../core/index.js';
import { reportError } from './render/output.js';

export const EXIT = {
  /** Everything asked for was done. */
  ok: 0,
  /** Something failed: a build, a server, an I/O error (the message says what). */
  failure: 1,
  /** The command line or configuration is wrong: nothing was attempted. */
  usage: 2,
  /** Stopped by SIGINT or SIGTERM. */
  interrupted: 130,
} as const;

/** Errors that mean "you asked for something that cannot be", not "it failed". */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'cli/usage',
  'wrap/usage',
  'remote/invalid-target',
  'remote/token-file',
]);

/** Node's own argument-parser errors (util.parseArgs) are usage errors too. */
function isParseArgsError(e: unknown): e is Error {
  return (
    e instanceof Error &&
    'code' in e &&
    typeof e.code === 'string' &&
    e.code.startsWith('ERR_PARSE_ARGS')
  );
}

/** The error as a SpecbuildError (parseArgs' errors become `cli/usage`). */
export function asSpecbuildError(e: unknown): SpecbuildError {
  return isParseArgsError(e) ? new SpecbuildError('cli/usage', e.message) : SpecbuildError.from(e);
}

export function exitCodeOf(e: unknown): number {
  const err = asSpecbuildError(e);
  return USAGE_CODES.has(err.code) ? EXIT.usage : EXIT.failure;
}

/**
 * Runs an entry point: its resolved number is the exit code; anything it
 * throws is reported (with the stack under `debug`) and mapped by exitCodeOf.
 */
export function runEntryPoint(main: () => Promise<number>, debug: boolean): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      reportError(isParseArgsError(e) ? asSpecbuildError(e) : e, debug);
      process.exitCode = exitCodeOf(e);
    },
  );
}
