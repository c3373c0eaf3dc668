// What `specbuild source fetch` and `source track` say about each source:
// progress lines on stderr (timestamped like a build's plain progress), the
// tracked refs (old → new) and the summary on stdout, and every failure with
// its place in the element file.
import type { SpecbuildError } from '../../core/index.js';
import { formatDiagnostic, SourceLines } from './diagnostic.js';

/** One source of one element: `app.bst sources[0] (tar)`. */
export interface SourceId {
  element: string;
  index: number;
  kind: string;
}

export type SourceEvent =
  | { type: 'fetch'; source: SourceId; outcome: 'fetching' | 'fetched' | 'cached' }
  | { type: 'tracked'; source: SourceId; before: string | undefined; after: string }
  | { type: 'up-to-date'; element: string }
  | { type: 'failed'; element: string; source?: SourceId; error: SpecbuildError };

export interface SourceRenderer {
  event(e: SourceEvent): void;
  /** Writes the failures, each with its place in the element file. */
  done(): void;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function sourceName(s: SourceId): string {
  return `${s.element} sources[${s.index}] (${s.kind})`;
}

export function sourceRenderer(opts: {
  projectDir: string;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}): SourceRenderer {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const started = Date.now();
  const failed: SpecbuildError[] = [];
  const progress = (text: string): void => {
    err.write(`[${clock(Date.now() - started)}] ${text}\n`);
  };
  return {
    event(e) {
      switch (e.type) {
        case 'fetch':
          progress(`${e.outcome.padStart(8)} ${sourceName(e.source)}`);
          break;
        case 'tracked':
          out.write(`${sourceName(e.source)}: ${e.before ?? '(no ref)'} → ${e.after}\n`);
          break;
        case 'up-to-date':
          out.write(`${e.element}: up to date\n`);
          break;
        case 'failed':
          failed.push(e.error);
          progress(`  failed ${e.source === undefined ? e.element : sourceName(e.source)}`);
          break;
      }
    },
    done() {
      if (failed.length === 0) return;
      const lines = new SourceLines(opts.projectDir);
      err.write(`\n${failed.map((f) => formatDiagnostic(f, lines)).join('\n\n')}\n\n`);
    },
  };
}
