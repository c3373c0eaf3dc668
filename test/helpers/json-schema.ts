// A validator for the subset of JSON Schema (draft 2020-12) that our schemas
// use, so that tests can check documents we write against the schemas we
// publish without a dependency. A keyword outside the subset is an error,
// never silently ignored: a schema that grows past it fails loudly here.
// Subset: type, const, enum, pattern, format (date-time), properties,
// required, additionalProperties (boolean), items, oneOf, $ref to "#/...",
// $defs, and the annotations $schema, $id, $comment, title, description.

export type Schema = boolean | { [keyword: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', '$comment', 'title', 'description', '$defs']);
const KEYWORDS = new Set([
  'type',
  'const',
  'enum',
  'pattern',
  'format',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'oneOf',
  '$ref',
  'minimum',
  'maximum',
]);

/** RFC 3339 date-time, as format "date-time" means it. */
const DATE_TIME =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function hasType(v: unknown, type: string): boolean {
  const t = typeOf(v);
  return t === type || (type === 'number' && t === 'integer');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeOf(v) === 'object';
}

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every way `value` breaks `schema`, as `PATH: why` (empty when it is valid). */
export function validate(schema: Schema, value: unknown): string[] {
  const root = schema;
  const resolve = (ref: string): Schema => {
    if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref} (only "#/...")`);
    let at: unknown = root;
    for (const part of ref.slice(2).split('/')) {
      if (!isObject(at) || !(part in at)) throw new Error(`$ref ${ref} leads nowhere`);
      at = at[part];
    }
    return at as Schema;
  };
  const check = (s: Schema, v: unknown, path: string, out: string[]): void => {
    if (s === true) return;
    if (s === false) {
      out.push(`${path}: not allowed`);
      return;
    }
    for (const k of Object.keys(s))
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k))
        throw new Error(`${path}: schema keyword "${k}" is outside the supported subset`);
    if (typeof s.$ref === 'string') check(resolve(s.$ref), v, path, out);
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => hasType(v, t))) {
        out.push(`${path}: is ${typeOf(v)}, not ${types.join(' or ')}`);
        return;
      }
    }
    if ('const' in s && !equal(s.const, v))
      out.push(`${path}: is ${JSON.stringify(v)}, not ${JSON.stringify(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => equal(e, v)))
      out.push(`${path}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum)
        out.push(`${path}: ${v} is below ${s.minimum}`);
      if (typeof s.maximum === 'number' && v > s.maximum)
        out.push(`${path}: ${v} is above ${s.maximum}`);
    }
    if (typeof v === 'string') {
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v))
        out.push(`${path}: ${JSON.stringify(v)} does not match ${s.pattern}`);
      if (s.format !== undefined) {
        if (s.format !== 'date-time')
          throw new Error(`${path}: unsupported format ${JSON.stringify(s.format)}`);
        if (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v)))
          out.push(`${path}: ${JSON.stringify(v)} is not a date-time`);
      }
    }
    if (Array.isArray(s.oneOf)) {
      const passing = (s.oneOf as Schema[]).filter((sub) => {
        const errs: string[] = [];
        check(sub, v, path, errs);
        return errs.length === 0;
      }).length;
      if (passing !== 1)
        out.push(`${path}: matches ${passing} of the ${s.oneOf.length} schemas of oneOf, not 1`);
    }
    if (Array.isArray(v) && s.items !== undefined)
      v.forEach((item, i) => {
        check(s.items as Schema, item, `${path}[${i}]`, out);
      });
    if (isObject(v)) {
      const props = isObject(s.properties) ? (s.properties as Record<string, Schema>) : {};
      for (const r of (s.required as string[] | undefined) ?? [])
        if (!(r in v)) out.push(`${path}: "${r}" is missing`);
      for (const [k, x] of Object.entries(v)) {
        const sub = props[k];
        if (sub !== undefined) check(sub, x, `${path}.${k}`, out);
        else if (s.additionalProperties === false) out.push(`${path}: "${k}" is not allowed`);
        else if (s.additionalProperties !== undefined && s.additionalProperties !== true)
          throw new Error(`${path}: additionalProperties must be a boolean here`);
      }
    }
  };
  const out: string[] = [];
  check(schema, value, '$', out);
  return out;
}
