// Checking node shapes while collecting every problem: each check adds a
// located error to the Diagnostics and returns undefined instead of throwing,
// so one run reports all mistakes of a project at once.
import { SpecbuildError, type Diagnostics, type Location } from '../core/index.js';
import { kindName, type MapNode, type ScalarNode, type SeqNode, type YNode } from './yaml.js';

export type Diag = Diagnostics;

function wrongType(n: YNode, what: string, expected: string): SpecbuildError {
  return new SpecbuildError('load/wrong-type', `${what} must be ${expected}, not ${kindName(n)}`, {
    location: n.at,
  });
}

export function asMap(n: YNode | undefined, what: string, d: Diag): MapNode | undefined {
  if (n === undefined) return undefined;
  if (n.kind === 'map') return n;
  // An empty value (`key:`) is an empty mapping.
  if (n.kind === 'scalar' && n.value === null)
    return { kind: 'map', entries: new Map(), keyAt: new Map(), at: n.at };
  d.add(wrongType(n, what, 'a mapping'));
  return undefined;
}

export function asSeq(n: YNode | undefined, what: string, d: Diag): SeqNode | undefined {
  if (n === undefined) return undefined;
  if (n.kind === 'seq') return n;
  if (n.kind === 'scalar' && n.value === null) return { kind: 'seq', items: [], at: n.at };
  d.add(wrongType(n, what, 'a list'));
  return undefined;
}

export function asScalar(n: YNode | undefined, what: string, d: Diag): ScalarNode | undefined {
  if (n === undefined) return undefined;
  if (n.kind === 'scalar') return n;
  d.add(wrongType(n, what, 'a string'));
  return undefined;
}

/** A string value (null counts as absent). */
export function asString(n: YNode | undefined, what: string, d: Diag): string | undefined {
  return asScalar(n, what, d)?.value ?? undefined;
}

/** A list of strings. */
export function asStringList(n: YNode | undefined, what: string, d: Diag): string[] | undefined {
  const seq = asSeq(n, what, d);
  if (seq === undefined) return undefined;
  const out: string[] = [];
  seq.items.forEach((item, i) => {
    const s = asString(item, `${what}[${i}]`, d);
    if (s !== undefined) out.push(s);
  });
  return out;
}

/** BuildStream's booleans: True/true/1 and False/false/0, nothing else. */
export function asBool(n: YNode | undefined, what: string, d: Diag): boolean | undefined {
  const s = asScalar(n, what, d);
  if (s?.value === null || s === undefined) return undefined;
  if (['True', 'true', '1'].includes(s.value)) return true;
  if (['False', 'false', '0'].includes(s.value)) return false;
  d.add(
    new SpecbuildError('load/invalid-value', `${what}: "${s.value}" is not a boolean`, {
      location: s.at,
      hint: 'write true or false',
    }),
  );
  return undefined;
}

/** Reports keys of `m` outside `allowed`, suggesting the nearest allowed one. */
export function checkKeys(m: MapNode, allowed: readonly string[], what: string, d: Diag): void {
  for (const key of m.entries.keys()) {
    if (allowed.includes(key)) continue;
    const near = didYouMean(key, allowed);
    d.add(
      new SpecbuildError('load/unknown-key', `unknown key "${key}" in ${what}`, {
        location: m.keyAt.get(key) ?? m.at,
        hint:
          near === undefined ? `allowed keys: ${allowed.join(', ')}` : `did you mean "${near}"?`,
      }),
    );
  }
}

/** The candidate closest to `word` if it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word, c);
    if (dist < bestDist) {
      bestDist = dist;
      best = c;
    }
  }
  return bestDist <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

export function requireKey(m: MapNode, key: string, what: string, d: Diag): YNode | undefined {
  const v = m.entries.get(key);
  if (v === undefined)
    d.add(
      new SpecbuildError('load/missing-key', `${what} has no "${key}"`, {
        location: m.at,
      }),
    );
  return v;
}

export function located(
  code: SpecbuildError['code'],
  message: string,
  at: Location,
  hint?: string,
) {
  return new SpecbuildError(code, message, { location: at, hint });
}
