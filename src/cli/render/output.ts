// The only place that writes to the terminal: plain lines and error reports.
import { isSpecbuildError } from '../../core/index.js';

export function info(line: string): void {
  console.log(line);
}

export function warn(line: string): void {
  console.error(`warning: ${line}`);
}

/** An error as the user should see it: message, where, hint; the stack when debugging. */
export function formatError(e: unknown, debug: boolean): string {
  const lines: string[] = [];
  if (isSpecbuildError(e)) {
    lines.push(`error: ${e.provenance === undefined ? '' : `${e.provenance}: `}${e.message}`);
    if (e.hint !== undefined) lines.push(`  hint: ${e.hint}`);
    if (debug && e.stack !== undefined) lines.push(e.stack);
  } else {
    lines.push(
      `internal error: ${e instanceof Error ? (debug ? (e.stack ?? e.message) : e.message) : String(e)}`,
    );
    if (!debug) lines.push('  hint: run again with --debug for details');
  }
  return `${lines.join('\n')}\n`;
}

/** Prints an error as the user should see it. */
export function reportError(e: unknown, debug: boolean): void {
  process.stderr.write(formatError(e, debug));
}

/** Bytes to stdout as they are (a log), waiting whenever the pipe is full. */
export async function writeRaw(chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const out = process.stdout;
  for await (const chunk of chunks) {
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
  }
}

/** A note on stderr that is neither a warning nor an error. */
export function note(line: string): void {
  console.error(line);
}
