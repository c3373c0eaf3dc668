// Prerequisites of tests that use real tools: missing ones fail the test with
// an install hint; nothing is silently skipped.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function onPath(command: string): boolean {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Fails unless `command` is on PATH, saying how to install it. */
export function requireCommand(command: string, installHint: string): void {
  assert.ok(onPath(command), `${command} is not installed (not on PATH); ${installHint}`);
}
