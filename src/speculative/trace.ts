// Build traces: what `specbuild explain` needs of a build that nothing else
// keeps. The artifact record lists the actions a build recorded but not how
// each was answered (hit or miss), nor what priming did; those exist only as
// events. A trace keeps both, per successful build, in a small JSON file at
// CACHE/build-traces/PROJECT/ELEMENT/STRONGKEY.json, with `latest` naming the
// last one. A trace is read as untrusted data: a damaged one is no trace.
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, writeFileAtomic } from '../core/index.js';
import { parseDigestString } from '../reapi/index.js';
import type { BuildActionOutcome, PrimeOutcome, SpeculativeEvent } from './events.js';
import { MODES, type Mode } from './mode.js';

export interface TracedAction {
  /** HASH/SIZE, as recorded (completion order). */
  action: string;
  outcome: BuildActionOutcome;
}

export interface TracedPrime {
  /** The recorded action priming started from, HASH/SIZE. */
  base: string;
  /** Its last priming outcome in the run. */
  outcome: PrimeOutcome;
  adapted?: string;
  reason?: string;
}

export interface PreviousBuild {
  /** The previous build's Artifact record, HASH/SIZE. */
  record: string;
  strong_key: string;
  /** Found as the record under the same weak key (what priming reads), or as the latest trace. */
  via: 'weak-key' | 'latest';
}

export interface BuildTrace {
  version: 1;
  project: string;
  element: string;
  strong_key: string;
  weak_key: string;
  mode: Mode;
  /** The element's %{build-root} (absolute). */
  build_root: string;
  /** This build's Artifact record, HASH/SIZE. */
  record: string;
  previous: PreviousBuild | null;
  /** The SpeculativeActions blob priming loaded (the weak-key record's), if any. */
  primed_from: string | null;
  actions: TracedAction[];
  primes: TracedPrime[];
  /** When the trace was written (RFC 3339). */
  finished: string;
}

/** How many traces are kept per element (the newest; `latest` always among them). */
export const TRACES_KEPT = 8;

/** Collects each element's build-action and prime events of a run, for its trace. */
export class TraceCollector {
  private readonly actions = new Map<string, TracedAction[]>();
  private readonly primes = new Map<string, Map<string, TracedPrime>>();

  event(e: SpeculativeEvent): void {
    if (e.type === 'build-action') {
      let l = this.actions.get(e.element);
      if (l === undefined) this.actions.set(e.element, (l = []));
      l.push({ action: e.action, outcome: e.outcome });
    } else if (e.type === 'prime') {
      let m = this.primes.get(e.element);
      if (m === undefined) this.primes.set(e.element, (m = new Map<string, TracedPrime>()));
      const p: TracedPrime = { base: e.action, outcome: e.outcome };
      if (e.adapted !== undefined) p.adapted = e.adapted;
      if (e.reason !== undefined) p.reason = e.reason;
      // Delete first so that the map's order is the order of last outcomes.
      m.delete(e.action);
      m.set(e.action, p);
    }
  }

  /** The element's events so far, forgotten here. */
  take(element: string): { actions: TracedAction[]; primes: TracedPrime[] } {
    const actions = this.actions.get(element) ?? [];
    const primes = [...(this.primes.get(element)?.values() ?? [])];
    this.actions.delete(element);
    this.primes.delete(element);
    return { actions, primes };
  }
}

export class BuildTraceStore {
  constructor(readonly dir: string) {}

  private elementDir(project: string, element: string): string {
    return join(this.dir, safe(project), safe(element));
  }

  /** Writes the trace, names it latest, and drops the element's oldest beyond TRACES_KEPT. */
  async write(element: string, trace: BuildTrace): Promise<void> {
    const dir = this.elementDir(trace.project, element);
    await mkdir(dir, { recursive: true });
    const name = `${safe(trace.strong_key)}.json`;
    await writeFileAtomic(join(dir, name), `${JSON.stringify(trace, null, 1)}\n`);
    await writeFileAtomic(join(dir, 'latest'), `${trace.strong_key}\n`);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json') && f !== name);
    if (files.length < TRACES_KEPT) return;
    const aged = await Promise.all(
      files.map(async (f) => ({
        f,
        t: (await stat(join(dir, f)).catch(() => undefined))?.mtimeMs,
      })),
    );
    aged.sort((a, b) => (b.t ?? 0) - (a.t ?? 0));
    for (const { f } of aged.slice(TRACES_KEPT - 1)) await rm(join(dir, f), { force: true });
  }

  /** The trace of the build under `strongKey`, if one is kept and reads. */
  async read(project: string, element: string, strongKey: string): Promise<BuildTrace | undefined> {
    const text = await readText(join(this.elementDir(project, element), `${safe(strongKey)}.json`));
    return text === undefined ? undefined : parseTrace(text);
  }

  /** The trace of the element's last recorded build. */
  async latest(project: string, element: string): Promise<BuildTrace | undefined> {
    const key = (await readText(join(this.elementDir(project, element), 'latest')))?.trim();
    return key === undefined || key === '' ? undefined : this.read(project, element, key);
  }
}

/** A path segment from a name (keys are hex; project and element names are plain already). */
function safe(s: string): string {
  return s.replace(/[^0-9A-Za-z._-]/g, '_').replace(/^\.+/, '_');
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
    throw e;
  }
}

const OUTCOMES: readonly string[] = ['hit-primed', 'hit-cached', 'miss'];

/** A trace from its JSON, checked field by field; undefined when it is not one. */
export function parseTrace(text: string): BuildTrace | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v) || v.version !== 1) return undefined;
  const str = (x: unknown): x is string => typeof x === 'string';
  const digest = (x: unknown): x is string => {
    if (!str(x)) return false;
    try {
      parseDigestString(x, 'trace');
      return true;
    } catch {
      return false;
    }
  };
  const prev = v.previous;
  const ok =
    str(v.project) &&
    str(v.element) &&
    str(v.strong_key) &&
    str(v.weak_key) &&
    (MODES as readonly unknown[]).includes(v.mode) &&
    str(v.build_root) &&
    digest(v.record) &&
    str(v.finished) &&
    (v.primed_from === null || digest(v.primed_from)) &&
    (prev === null ||
      (isObject(prev) &&
        digest(prev.record) &&
        str(prev.strong_key) &&
        (prev.via === 'weak-key' || prev.via === 'latest'))) &&
    Array.isArray(v.actions) &&
    v.actions.every(
      (a: unknown) => isObject(a) && digest(a.action) && OUTCOMES.includes(a.outcome as string),
    ) &&
    Array.isArray(v.primes) &&
    v.primes.every(
      (p: unknown) =>
        isObject(p) &&
        digest(p.base) &&
        str(p.outcome) &&
        (p.adapted === undefined || digest(p.adapted)) &&
        (p.reason === undefined || str(p.reason)),
    );
  return ok ? (v as unknown as BuildTrace) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
