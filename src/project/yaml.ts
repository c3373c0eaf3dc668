// The first loading stage: YAML text into nodes that remember where they came
// from (file, line, column), so that every later problem can point at the
// text at fault. Scalars are strings, as BuildStream's loader makes them:
// surrounding whitespace stripped, an empty or `~` plain scalar is null.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { SpecbuildError, type Location, type Result } from '../core/index.js';

export interface ScalarNode {
  kind: 'scalar';
  value: string | null;
  at: Location;
}

export interface SeqNode {
  kind: 'seq';
  items: YNode[];
  at: Location;
}

export interface MapNode {
  kind: 'map';
  /** Entries in file order. */
  entries: Map<string, YNode>;
  /** Where each key is written (for "unknown key" and "did you mean"). */
  keyAt: Map<string, Location>;
  at: Location;
}

export type YNode = ScalarNode | SeqNode | MapNode;

/** A location for something that has no file (built-in defaults, the command line). */
export function syntheticLocation(what: string): Location {
  return { file: what, line: 1, col: 1 };
}

function locate(
  lc: LineCounter,
  file: string,
  range: readonly number[] | null | undefined,
): Location {
  const start = range?.[0] ?? 0;
  const end = range?.[1] ?? start;
  const { line, col } = lc.linePos(start);
  const endPos = lc.linePos(end);
  return { file, line, col, length: endPos.line === line ? Math.max(1, endPos.col - col) : 1 };
}

/**
 * Parses `text` (the content of `file`, named as it should be shown) into a
 * node tree. Every syntax problem of the file is returned at once.
 */
export function parseYaml(text: string, file: string): Result<YNode> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    schema: 'failsafe',
    uniqueKeys: true,
    prettyErrors: false,
  });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map(
        (e) =>
          new SpecbuildError('load/invalid-yaml', `invalid YAML: ${firstLine(e.message)}`, {
            location: locate(lineCounter, file, e.pos),
          }),
      ),
    };
  }
  const errors: SpecbuildError[] = [];
  const convert = (n: Node | null | undefined, fallback: readonly number[]): YNode => {
    if (n === null || n === undefined)
      return { kind: 'scalar', value: null, at: locate(lineCounter, file, fallback) };
    const at = locate(lineCounter, file, n.range);
    if (isAlias(n)) {
      errors.push(
        new SpecbuildError('load/invalid-yaml', 'YAML aliases (*name) are not supported', {
          location: at,
          hint: 'write the value out, or use (@) includes to share configuration',
        }),
      );
      return { kind: 'scalar', value: null, at };
    }
    if (isScalar(n)) {
      const raw = typeof n.value === 'string' ? n.value : String(n.value);
      const plain = n.type === 'PLAIN';
      const value = plain && (raw === '' || raw === '~' || raw === 'null') ? null : raw.trim();
      return { kind: 'scalar', value, at };
    }
    if (isSeq(n)) {
      return {
        kind: 'seq',
        items: n.items.map((i) => convert(i as Node | null, n.range ?? [0, 0])),
        at,
      };
    }
    if (isMap(n)) {
      const entries = new Map<string, YNode>();
      const keyAt = new Map<string, Location>();
      for (const pair of n.items) {
        const k = pair.key as Node | null;
        const kAt = locate(lineCounter, file, k?.range ?? n.range);
        if (!isScalar(k)) {
          errors.push(
            new SpecbuildError('load/invalid-yaml', 'a mapping key must be a plain string', {
              location: kAt,
            }),
          );
          continue;
        }
        const key = String(k.value);
        entries.set(key, convert(pair.value as Node | null, k.range ?? [0, 0]));
        keyAt.set(key, kAt);
      }
      return { kind: 'map', entries, keyAt, at };
    }
    errors.push(new SpecbuildError('load/invalid-yaml', 'unsupported YAML node', { location: at }));
    return { kind: 'scalar', value: null, at };
  };
  const root = convert(doc.contents, [0, 0]);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: root };
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl < 0 ? s : s.slice(0, nl);
}

/** A new empty mapping located at `at`. */
export function emptyMap(at: Location): MapNode {
  return { kind: 'map', entries: new Map(), keyAt: new Map(), at };
}

/** A plain JavaScript value of a node (for public data, cache keys, show). */
export type Plain = string | null | Plain[] | { [key: string]: Plain };

export function toPlain(n: YNode): Plain {
  switch (n.kind) {
    case 'scalar':
      return n.value;
    case 'seq':
      return n.items.map(toPlain);
    case 'map': {
      const out: Record<string, Plain> = {};
      for (const [k, v] of n.entries) out[k] = toPlain(v);
      return out;
    }
  }
}

/** Builds a node from a plain value (for built-in defaults), located at `at`. */
export function fromPlain(v: Plain, at: Location): YNode {
  if (v === null || typeof v === 'string') return { kind: 'scalar', value: v, at };
  if (Array.isArray(v)) return { kind: 'seq', items: v.map((x) => fromPlain(x, at)), at };
  const m = emptyMap(at);
  for (const [k, x] of Object.entries(v)) {
    m.entries.set(k, fromPlain(x, at));
    m.keyAt.set(k, at);
  }
  return m;
}

const KIND_NAMES = { scalar: 'a string', seq: 'a list', map: 'a mapping' } as const;

/** "a string" / "a list" / "a mapping", for messages. */
export function kindName(n: YNode): string {
  return KIND_NAMES[n.kind];
}
