// Errors as users read them: `file:line:col: message`, the faulty line with
// the text at fault underlined, and the hint. Used for every problem of a
// project load (all of them at once) and for any located error.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { SpecbuildError } from '../../core/index.js';

/** Reads a file's lines once per rendering. */
export class SourceLines {
  private readonly cache = new Map<string, string[] | undefined>();

  constructor(private readonly root: string) {}

  line(file: string, n: number): string | undefined {
    if (!this.cache.has(file)) {
      try {
        const text = readFileSync(isAbsolute(file) ? file : join(this.root, file), 'utf8');
        this.cache.set(file, text.split('\n'));
      } catch {
        this.cache.set(file, undefined);
      }
    }
    return this.cache.get(file)?.[n - 1];
  }
}

export function formatDiagnostic(e: SpecbuildError, lines: SourceLines): string {
  const out: string[] = [];
  const where = e.provenance === undefined ? '' : `${e.provenance}: `;
  out.push(`error: ${where}${e.message}`);
  const loc = e.location;
  if (loc !== undefined) {
    const text = lines.line(loc.file, loc.line);
    if (text !== undefined) {
      const num = String(loc.line);
      const pad = ' '.repeat(num.length);
      const width = Math.max(1, Math.min(loc.length ?? 1, text.length - loc.col + 1));
      out.push(` ${num} | ${text}`);
      out.push(` ${pad} | ${' '.repeat(Math.max(0, loc.col - 1))}${'^'.repeat(width)}`);
    }
  }
  if (e.hint !== undefined) out.push(`  hint: ${e.hint}`);
  return out.join('\n');
}

/** Every error of a run, in file order, with a count at the end. */
export function formatDiagnostics(errors: readonly SpecbuildError[], root: string): string {
  const lines = new SourceLines(root);
  const sorted = [...errors].sort((a, b) => {
    const x = a.location;
    const y = b.location;
    if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : 1) : -1;
    if (x.file !== y.file) return x.file < y.file ? -1 : 1;
    return x.line - y.line || x.col - y.col;
  });
  const body = sorted.map((e) => formatDiagnostic(e, lines)).join('\n\n');
  const n = errors.length;
  return `${body}\n\n${n} problem${n === 1 ? '' : 's'} found\n`;
}
