// The only place that writes to the terminal: plain lines and error reports.
import { SpecbuildError } from '../../core/index.js';

export function info(line: string): void {
  console.log(line);
}

export function warn(line: string): void {
  console.error(`warning: ${line}`);
}

/** Prints an error as the user should see it: message, where, hint; stack with --debug. */
export function reportError(e: unknown, debug: boolean): void {
  if (e instanceof SpecbuildError) {
    console.error(`error: ${e.provenance === undefined ? '' : `${e.provenance}: `}${e.message}`);
    if (e.hint !== undefined) console.error(`  hint: ${e.hint}`);
    if (debug && e.stack !== undefined) console.error(e.stack);
  } else {
    console.error(
      `internal error: ${e instanceof Error ? (debug ? (e.stack ?? e.message) : e.message) : String(e)}`,
    );
    if (!debug) console.error('  hint: run again with --debug for details');
  }
}
