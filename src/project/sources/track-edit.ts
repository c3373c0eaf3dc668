// `specbuild source track` writes the new ref into the element file itself,
// as BuildStream does, and changes nothing else: comments, quoting,
// indentation and the other sources stay byte for byte. The yaml package
// gives each node's exact byte range; the edit splices text at that range
// (or inserts a `ref:` line) instead of re-serialising the document.
import { readFile, stat } from 'node:fs/promises';
import { isMap, isScalar, isSeq, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { SpecbuildError, writeFileAtomic } from '../../core/index.js';

function fail(file: string, why: string): SpecbuildError {
  return new SpecbuildError('source/track', `cannot write the new ref into ${file}: ${why}`, {
    provenance: file,
    hint: 'write the ref into the element file by hand',
  });
}

/** The scalar written in the style of `like` (quotes kept; block scalars become plain). */
function styled(value: string, type: string | undefined): string {
  if (type === 'QUOTE_DOUBLE') return JSON.stringify(value);
  if (type === 'QUOTE_SINGLE') return `'${value.replace(/'/g, "''")}'`;
  return value;
}

/**
 * `text` with the ref of `sources[index]` set to `ref`. Only that value
 * changes; a source without `ref:` gets one, as the last key of its mapping.
 * With `kind`, the source must be of that kind (a guard against a file that
 * changed since it was loaded).
 */
export function setSourceRef(
  text: string,
  index: number,
  ref: string,
  file: string,
  kind?: string,
): string {
  if (!/^[0-9A-Za-z._+-]+$/.test(ref)) throw fail(file, `"${ref}" is not a ref`);
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: true });
  if (doc.errors.length > 0)
    throw fail(file, `it does not parse (${doc.errors[0]?.message ?? ''})`);
  const top = doc.contents;
  const sources = isMap(top) ? top.get('sources', true) : undefined;
  if (!isSeq(sources)) throw fail(file, 'it has no "sources" list of its own');
  const item = sources.items[index];
  if (!isMap(item)) throw fail(file, `sources[${index}] is not a mapping in this file`);
  const map = item;
  const written = map.get('kind');
  if (kind !== undefined && written !== kind)
    throw fail(file, `sources[${index}] is of kind "${String(written)}" here, not "${kind}"`);
  const pair = map.items.find((p) => isScalar(p.key) && p.key.value === 'ref');
  if (pair !== undefined) return replaceValue(text, pair, ref, file);
  return insertRef(text, map, ref, file);
}

function replaceValue(text: string, pair: Pair, ref: string, file: string): string {
  const v = pair.value;
  if (!isScalar(v) || v.range == null) throw fail(file, 'its ref is not a plain value');
  const [start, end] = v.range;
  if (start === end) return `${text.slice(0, start)} ${ref}${text.slice(end)}`; // `ref:` with no value
  const written = text.slice(start, end);
  const lineBreak = /\r?\n$/.exec(written)?.[0] ?? ''; // block scalars' ranges end with one
  return text.slice(0, start) + styled(ref, v.type) + lineBreak + text.slice(end);
}

function insertRef(text: string, map: YAMLMap, ref: string, file: string): string {
  const last = map.items.at(-1);
  const first = map.items[0];
  const lastEnd = (last?.value as { range?: [number, number, number] } | null)?.range?.[1];
  const firstKey = (first?.key as { range?: [number, number, number] } | null)?.range?.[0];
  if (lastEnd === undefined || firstKey === undefined)
    throw fail(file, 'the source mapping has no value to place the ref after');
  if (map.flow === true) return `${text.slice(0, lastEnd)}, ref: ${ref}${text.slice(lastEnd)}`;
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const indent = ' '.repeat(firstKey - (text.lastIndexOf('\n', firstKey - 1) + 1));
  const line = `${indent}ref: ${ref}${eol}`;
  if (text[lastEnd - 1] === '\n') return text.slice(0, lastEnd) + line + text.slice(lastEnd);
  const nl = text.indexOf('\n', lastEnd);
  if (nl < 0) return `${text}${eol}${line}`;
  return text.slice(0, nl + 1) + line + text.slice(nl + 1);
}

/** Rewrites the element file at `path` (named `file` in messages) with the new ref, atomically. */
export async function writeSourceRef(
  path: string,
  index: number,
  ref: string,
  file: string = path,
  kind?: string,
): Promise<void> {
  const text = await readFile(path, 'utf8');
  const next = setSourceRef(text, index, ref, file, kind);
  if (next === text) return;
  await writeFileAtomic(path, next, { mode: (await stat(path)).mode & 0o7777 });
}
