// A fast path of the first loading stage for the YAML that element files
// are made of: block mappings and sequences of one-line plain or simply
// quoted scalars. It gives exactly the nodes (and locations) the `yaml`
// package's document gives through parseYaml, and gives up on anything else
// (flow collections, block or multi-line scalars, escapes, anchors, tags,
// duplicate keys, tabs, non-ASCII text...), which parseYaml then parses the
// full way: what it takes is checked against the full parse on every YAML
// file of the repository and on generated documents (yaml-block.test.ts).
import type { Location } from '../core/index.js';
import type { MapNode, ScalarNode, SeqNode, YNode } from './yaml.js';

/** One line that is neither blank nor only a comment. */
interface Line {
  /** Its number, from 1. */
  no: number;
  /** Offset of its first character in the text. */
  start: number;
  /** Spaces before its content. */
  indent: number;
  /** The line without its indentation (nor its newline). */
  text: string;
}

/** Characters a plain scalar may not start with, in this subset. */
const PLAIN_FIRST = new Set('-?:,[]{}#&*!|>\'"%@` ');
/** And a key: not `~` (null) nor `<` (`<<`, a merge key in some schemas) either. */
const KEY_FIRST = new Set([...PLAIN_FIRST, '~', '<']);
/** The longest implicit key YAML allows. */
const MAX_KEY = 1024;

class GiveUp extends Error {}

function giveUp(): never {
  throw new GiveUp();
}

/**
 * The node tree of `text` when it is within the subset (every line ending
 * with a newline), else undefined: nothing is reported from here, problems
 * are the full parser's to find and explain.
 */
export function parseBlockYaml(text: string, file: string): YNode | undefined {
  // Printable ASCII and newlines only, the last line ended.
  if (!/^[\x20-\x7e\n]*$/.test(text) || (text !== '' && !text.endsWith('\n'))) return undefined;
  const lines: Line[] = [];
  let start = 0;
  let no = 1;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const raw = text.slice(start, nl);
    let indent = 0;
    while (raw.charCodeAt(indent) === 32) indent++;
    const body = raw.slice(indent);
    if (body !== '' && !body.startsWith('#')) {
      if (indent === 0 && (body.startsWith('---') || body.startsWith('...'))) return undefined;
      lines.push({ no, start, indent, text: body });
    }
    start = nl + 1;
    no++;
  }
  try {
    return new BlockParser(lines, file).document();
  } catch (e) {
    if (e instanceof GiveUp) return undefined;
    throw e;
  }
}

class BlockParser {
  private i = 0;
  /**
   * Where the last node parsed ends when that is on its own line: an empty
   * value (null) ends where its line does, not past the newline, and so do
   * the collections it ends (`yaml` gives a one-line `key:` mapping the
   * length of that line).
   */
  private openEnd: { line: number; col: number } | undefined;

  constructor(
    private readonly lines: readonly Line[],
    private readonly file: string,
  ) {}

  document(): YNode {
    const first = this.lines[0];
    if (first === undefined) return this.scalar(null, 1, 1, 1);
    if (first.indent !== 0 || isItem(first.text)) giveUp();
    const root = this.map(0, first.text, first);
    if (this.i < this.lines.length) giveUp();
    return root;
  }

  private at(line: Line, col: number, length: number): Location {
    return { file: this.file, line: line.no, col: col + 1, length: Math.max(1, length) };
  }

  private scalar(value: string | null, line: number, col: number, length: number): ScalarNode {
    return { kind: 'scalar', value, at: { file: this.file, line, col, length } };
  }

  /**
   * A mapping whose keys stand at column `indent`; its first entry is
   * `text`, the rest of the current line from that column on.
   */
  private map(indent: number, text: string, line: Line): MapNode {
    const node: MapNode = {
      kind: 'map',
      entries: new Map(),
      keyAt: new Map(),
      at: this.at(line, indent, 1),
    };
    let entry = text;
    let cur = line;
    for (;;) {
      const colon = keyEnd(entry);
      if (colon < 0) giveUp();
      const key = entry.slice(0, colon);
      if (node.entries.has(key)) giveUp();
      node.keyAt.set(key, this.at(cur, indent, key.length));
      const rest = entry.slice(colon + 1);
      this.i++;
      let value: YNode;
      if (rest.trim() === '') {
        value = this.nested(indent, cur, cur.start + indent + colon + 1 + rest.length);
      } else {
        const lead = rest.length - rest.trimStart().length;
        if (lead === 0) giveUp();
        value = this.inlineScalar(rest.slice(lead), cur, indent + colon + 1 + lead);
        this.noContinuation(indent);
      }
      node.entries.set(key, value);
      const next = this.lines[this.i];
      if (next === undefined || next.indent < indent) return this.ended(node);
      if (next.indent > indent || isItem(next.text)) giveUp();
      entry = next.text;
      cur = next;
    }
  }

  /**
   * The value of a key with nothing after its colon: a block below it (a
   * sequence may stand at the key's own column), else null where the line
   * ends (`end`, an offset in the text).
   */
  private nested(indent: number, line: Line, end: number): YNode {
    const next = this.lines[this.i];
    if (next !== undefined && next.indent === indent && isItem(next.text)) return this.seq(indent);
    if (next === undefined || next.indent <= indent) {
      const col = end - line.start;
      const empty = this.scalar(null, line.no, col + 1, 1);
      this.openEnd = { line: line.no, col: col + 1 };
      return empty;
    }
    if (isItem(next.text)) return this.seq(next.indent);
    return this.map(next.indent, next.text, next);
  }

  /** A sequence whose dashes stand at column `indent`, from the current line. */
  private seq(indent: number): SeqNode {
    const first = this.lines[this.i];
    if (first === undefined) giveUp();
    const node: SeqNode = { kind: 'seq', items: [], at: this.at(first, indent, 1) };
    for (;;) {
      const line = this.lines[this.i];
      if (line?.indent !== indent || !isItem(line.text)) return this.ended(node);
      const body = line.text.slice(1);
      const lead = body.length - body.trimStart().length;
      const content = body.slice(lead);
      if (content === '' || isItem(content)) giveUp();
      const col = indent + 1 + lead;
      if (keyEnd(content) >= 0) {
        // `- key: value`: a mapping whose keys stand at the content's column.
        node.items.push(this.map(col, content, line));
      } else {
        this.i++;
        node.items.push(this.inlineScalar(content, line, col));
        this.noContinuation(indent);
      }
    }
  }

  /** A collection's length, once its last node is known (see openEnd). */
  private ended<N extends MapNode | SeqNode>(node: N): N {
    const end = this.openEnd;
    if (end?.line === node.at.line) node.at.length = Math.max(1, end.col - node.at.col);
    return node;
  }

  /** After a one-line scalar, a deeper line would continue it (or be an error). */
  private noContinuation(indent: number): void {
    const next = this.lines[this.i];
    if (next !== undefined && next.indent > indent) giveUp();
  }

  /** A scalar that is the rest of a line, from column `col` (comment allowed). */
  private inlineScalar(text: string, line: Line, col: number): ScalarNode {
    this.openEnd = undefined;
    const q = text[0];
    if (q === '"' || q === "'") {
      const close = text.indexOf(q, 1);
      if (close < 0) giveUp();
      const inner = text.slice(1, close);
      if (q === '"' && inner.includes('\\')) giveUp();
      const after = text.slice(close + 1);
      if (after.trim() !== '' && !/^ +#/.test(after)) giveUp();
      return this.scalar(inner.trim(), line.no, col + 1, close + 1);
    }
    if (q === undefined || PLAIN_FIRST.has(q)) giveUp();
    const hash = text.indexOf(' #');
    const raw = (hash < 0 ? text : text.slice(0, hash)).trimEnd();
    if (raw.includes(': ') || raw.endsWith(':')) giveUp();
    const value = raw === 'null' || raw === '~' ? null : raw;
    return this.scalar(value, line.no, col + 1, raw.length);
  }
}

/** A sequence entry: a dash alone or followed by a space. */
function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

/**
 * Where the colon of `text`'s `key:` is, when `text` is a mapping entry with
 * a plain key of the subset, else -1.
 */
function keyEnd(text: string): number {
  let colon = text.indexOf(': ');
  if (colon < 0 && text.endsWith(':')) colon = text.length - 1;
  if (colon <= 0 || colon > MAX_KEY) return -1;
  const key = text.slice(0, colon);
  if (KEY_FIRST.has(key[0] ?? ' ') || key.endsWith(' ') || key.includes(':') || key.includes(' #'))
    return -1;
  return colon;
}
