// Composition of configuration layers (built-in defaults < project.conf <
// kind defaults < project.conf `elements:` < element file), as BuildStream
// users know it: mappings merge key by key, scalars and plain lists replace,
// and a mapping of list directives edits the list beneath it:
//   (=) replaces it, (<) prepends, (>) appends.
// A directive left with no list beneath it, once every layer is applied, is
// an error (BuildStream says the same for all three directives).
import { SpecbuildError } from '../core/index.js';
import type { Diag } from './schema.js';
import { emptyMap, kindName, type MapNode, type SeqNode, type YNode } from './yaml.js';

const DIRECTIVES = ['(=)', '(<)', '(>)'] as const;

/** The mapping when `n` holds list directives (not a type guard: other mappings exist). */
function directiveMap(n: YNode): MapNode | undefined {
  if (n.kind !== 'map' || n.entries.size === 0) return undefined;
  return [...n.entries.keys()].some((k) => (DIRECTIVES as readonly string[]).includes(k))
    ? n
    : undefined;
}

/** Checks a directive mapping's shape; returns its three lists. */
function directives(
  n: MapNode,
  d: Diag,
): { replace?: SeqNode; prepend?: SeqNode; append?: SeqNode } | undefined {
  let ok = true;
  const out: { replace?: SeqNode; prepend?: SeqNode; append?: SeqNode } = {};
  for (const [k, v] of n.entries) {
    if (!(DIRECTIVES as readonly string[]).includes(k)) {
      d.add(
        new SpecbuildError(
          'load/list-directive',
          `a mapping with list directives cannot also hold the key "${k}"`,
          { location: n.keyAt.get(k) ?? n.at, hint: 'use only (=), (<) and (>) in that mapping' },
        ),
      );
      ok = false;
      continue;
    }
    if (v.kind !== 'seq') {
      d.add(
        new SpecbuildError('load/list-directive', `${k} must be given a list, not ${kindName(v)}`, {
          location: v.at,
        }),
      );
      ok = false;
      continue;
    }
    if (k === '(=)') out.replace = v;
    else if (k === '(<)') out.prepend = v;
    else out.append = v;
  }
  return ok ? out : undefined;
}

function applyDirectives(base: SeqNode, over: MapNode, d: Diag): SeqNode {
  const dir = directives(over, d);
  if (dir === undefined) return base;
  const middle = dir.replace?.items ?? base.items;
  return {
    kind: 'seq',
    items: [...(dir.prepend?.items ?? []), ...middle, ...(dir.append?.items ?? [])],
    at: over.at,
  };
}

/** Two pending directive mappings (nothing beneath yet) as one. */
function mergeDirectives(base: MapNode, over: MapNode, d: Diag): MapNode {
  const b = directives(base, d);
  const o = directives(over, d);
  if (b === undefined || o === undefined) return over;
  const out = emptyMap(over.at);
  const set = (k: string, items: YNode[], at: SeqNode['at']): void => {
    out.entries.set(k, { kind: 'seq', items, at });
    out.keyAt.set(k, at);
  };
  if (o.replace !== undefined) {
    set(
      '(=)',
      [...(o.prepend?.items ?? []), ...o.replace.items, ...(o.append?.items ?? [])],
      o.replace.at,
    );
    return out;
  }
  if (b.replace !== undefined) {
    set(
      '(=)',
      [...(o.prepend?.items ?? []), ...b.replace.items, ...(o.append?.items ?? [])],
      b.replace.at,
    );
    return out;
  }
  const pre = [...(o.prepend?.items ?? []), ...(b.prepend?.items ?? [])];
  const app = [...(b.append?.items ?? []), ...(o.append?.items ?? [])];
  if (pre.length > 0) set('(<)', pre, (o.prepend ?? b.prepend ?? over).at);
  if (app.length > 0) set('(>)', app, (o.append ?? b.append ?? over).at);
  return out;
}

function composeValue(base: YNode | undefined, over: YNode, key: string, d: Diag): YNode {
  const overDirectives = directiveMap(over);
  if (overDirectives !== undefined) {
    if (base === undefined) return over;
    if (base.kind === 'seq') return applyDirectives(base, overDirectives, d);
    const baseDirectives = directiveMap(base);
    if (baseDirectives !== undefined) return mergeDirectives(baseDirectives, overDirectives, d);
    d.add(
      new SpecbuildError(
        'load/list-directive',
        `"${key}": list directives cannot apply to ${kindName(base)}`,
        { location: over.at },
      ),
    );
    return base;
  }
  if (base === undefined) return over;
  if (over.kind === 'map') {
    if (base.kind === 'map') return compose(base, over, d);
    if (base.kind === 'scalar' && base.value === null) return over;
    d.add(
      new SpecbuildError('load/wrong-type', `"${key}" must be ${kindName(base)}, not a mapping`, {
        location: over.at,
      }),
    );
    return base;
  }
  if (over.kind === 'seq') {
    if (
      base.kind === 'seq' ||
      directiveMap(base) !== undefined ||
      (base.kind === 'scalar' && base.value === null)
    )
      return over;
    d.add(
      new SpecbuildError('load/wrong-type', `"${key}" must be ${kindName(base)}, not a list`, {
        location: over.at,
      }),
    );
    return base;
  }
  // A scalar replaces a scalar; null (an empty value) replaces anything.
  if (base.kind === 'scalar' || over.value === null) return over;
  d.add(
    new SpecbuildError('load/wrong-type', `"${key}" must be ${kindName(base)}, not a string`, {
      location: over.at,
    }),
  );
  return base;
}

/** `over` composed onto `base` (neither is modified). */
export function compose(base: MapNode, over: MapNode, d: Diag): MapNode {
  const out: MapNode = {
    kind: 'map',
    entries: new Map(base.entries),
    keyAt: new Map(base.keyAt),
    at: over.at,
  };
  for (const [k, v] of over.entries) {
    out.entries.set(k, composeValue(base.entries.get(k), v, k, d));
    out.keyAt.set(k, over.keyAt.get(k) ?? over.at);
  }
  return out;
}

/** Reports every list directive that never found a list to apply to. */
export function checkComposed(n: YNode, d: Diag): void {
  if (n.kind === 'seq') {
    for (const i of n.items) checkComposed(i, d);
    return;
  }
  if (n.kind !== 'map') return;
  for (const [k, v] of n.entries) {
    if (directiveMap(v) !== undefined) {
      const dir = v.kind === 'map' ? [...v.entries.keys()].join(', ') : '';
      d.add(
        new SpecbuildError(
          'load/list-directive',
          `${dir} on "${k}", which no lower layer defines as a list`,
          {
            location: v.at,
            hint: `write "${k}" as a plain list, or define it in project.conf or the kind's defaults`,
          },
        ),
      );
    } else {
      checkComposed(v, d);
    }
  }
}
