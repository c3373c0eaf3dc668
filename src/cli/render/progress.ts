// Progress of a build, drawn from the scheduler's and builds' events: on a
// terminal a live block of the elements in flight with counts and elapsed
// time (log-update redraws it in place), elsewhere (CI=true, or not a TTY)
// one timestamped line per change. The only place that prints progress.
import type { RunEvent } from '../../scheduler/index.js';

export type ProgressEvent = RunEvent;

export interface ProgressRenderer {
  event(e: ProgressEvent): void;
  /** Stops redrawing; leaves the final state on screen. */
  done(): void;
}

const FINAL = new Set(['cached', 'built', 'failed', 'skipped']);

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export async function progressRenderer(opts: {
  tty: boolean;
  out?: NodeJS.WriteStream;
}): Promise<ProgressRenderer> {
  const out = opts.out ?? process.stderr;
  const started = Date.now();
  if (!opts.tty) return lineRenderer(out, started);
  // Loaded only for a terminal: importing log-update takes ~70 ms.
  const { createLogUpdate } = await import('log-update');
  return liveRenderer(out, createLogUpdate(out), started);
}

function lineRenderer(out: NodeJS.WriteStream, started: number): ProgressRenderer {
  const line = (text: string): void => {
    out.write(`[${clock(Date.now() - started)}] ${text}\n`);
  };
  return {
    event(e) {
      if (e.type === 'element') {
        if (e.state === 'waiting' || e.state === 'buildable') return;
        const key = e.keys === undefined ? '' : ` ${e.keys.strong.slice(0, 8)}`;
        line(
          `${e.state.padStart(9)}${key} ${e.element}${e.error === undefined ? '' : `: ${firstLine(e.error)}`}`,
        );
      } else if (e.type === 'build-log') {
        line(`      log ${e.element}: ${e.path}`);
      } else if (e.type === 'share') {
        line(shareLine(e));
      }
    },
    done() {
      // nothing to stop
    },
  };
}

function liveRenderer(
  out: NodeJS.WriteStream,
  render: { (text: string): void; clear(): void; done(): void },
  started: number,
): ProgressRenderer {
  const states = new Map<string, { state: string; since: number; subactions: number }>();
  const draw = (): void => {
    const counts = new Map<string, number>();
    for (const s of states.values()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    const head = `[${clock(Date.now() - started)}] ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}`;
    const active = [...states]
      .filter(([, s]) => s.state === 'building' || s.state === 'fetching')
      .map(
        ([name, s]) =>
          `  ${s.state.padStart(9)} ${clock(Date.now() - s.since)} ${name}${s.subactions > 0 ? ` (${s.subactions} actions)` : ''}`,
      );
    render([head, ...active].join('\n'));
  };
  const timer = setInterval(draw, 250);
  timer.unref();
  return {
    event(e) {
      if (e.type === 'element') {
        const prev = states.get(e.element);
        states.set(e.element, {
          state: e.state,
          since: Date.now(),
          subactions: prev?.subactions ?? 0,
        });
        if (FINAL.has(e.state) && e.state !== 'cached') {
          // Finished elements scroll away above the live block.
          render.clear();
          out.write(
            `${e.state.padStart(9)} ${e.element}${e.error === undefined ? '' : `: ${firstLine(e.error)}`}\n`,
          );
        }
      } else if (e.type === 'subaction') {
        const s = states.get(e.element);
        if (s !== undefined) s.subactions++;
      } else if (e.type === 'share' && SHARE_WARNINGS.has(e.outcome)) {
        render.clear();
        out.write(`${shareLine(e)}\n`);
      }
      draw();
    },
    done() {
      clearInterval(timer);
      draw();
      render.done();
    },
  };
}

/** Share outcomes a live display shows (the rest are in --report and the summary). */
const SHARE_WARNINGS = new Set(['unreachable', 'failed']);

/** One line for an artifact remote's event. */
export function shareLine(e: Extract<ProgressEvent, { type: 'share' }>): string {
  const what = e.element === undefined ? '' : ` ${e.element}`;
  const moved =
    e.blobs === undefined
      ? ''
      : ` (${e.blobs} blobs, ${e.bytes ?? 0} bytes${e.results === undefined || e.results === 0 ? '' : `, ${e.results} action results`})`;
  const why = e.reason === undefined ? '' : `: ${firstLine(e.reason)}`;
  switch (e.outcome) {
    case 'unreachable':
      if (e.op === 'execute')
        return `  warning: remote execution at ${e.remote} is unreachable${why}; running actions here`;
      return `  warning: artifact remote ${e.remote} is unreachable${why}; going on without it`;
    case 'failed':
      return `  warning: ${e.op}${what} ${e.op === 'push' ? 'to' : 'from'} ${e.remote} failed${why}`;
    case 'retrying':
      return `    retry ${e.op}${what} to ${e.remote}${why}`;
    case 'pulled':
      return `${(e.op === 'pull' ? 'pulled' : 'pulled for priming').padStart(9)}${what} from ${e.remote}${moved}`;
    case 'pushed':
      return `   pushed${what} to ${e.remote}${moved}`;
    case 'miss':
      return `     miss${what} on ${e.remote}${why}`;
  }
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
