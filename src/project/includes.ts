// `(@)` includes: a mapping may name files (project-relative) whose content
// lies beneath it; the including mapping wins, and later files win over
// earlier ones. Includes nest; a file that includes itself is an error.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import { compose } from './compose.js';
import type { Diag } from './schema.js';
import type { Result } from '../core/index.js';
import { emptyMap, parseYaml, type MapNode, type YNode } from './yaml.js';

const INCLUDE = '(@)';

/** Reads and parses project files, each once per load. */
export class FileLoader {
  private readonly cache = new Map<string, Promise<YNode | undefined>>();
  private readonly builtins = new Map<string, Result<YNode>>();

  constructor(readonly projectDir: string) {}

  /** Parses a project-relative file; undefined (and reported) when missing or invalid. */
  load(
    rel: string,
    d: Diag,
    referrer?: { at: YNode['at']; what?: string; hint?: string },
  ): Promise<YNode | undefined> {
    let p = this.cache.get(rel);
    if (p === undefined) {
      p = Promise.resolve(this.read(rel, d, referrer));
      this.cache.set(rel, p);
    }
    return p;
  }

  /**
   * Reads synchronously: element files are small, and fs.promises' readFile
   * (open, fstat, read, close through the thread pool, and a FileHandle
   * each) cost 0.57 s for bench:load's 1,001 files on its 2-core machine,
   * readFileSync a tenth of that.
   */
  private read(
    rel: string,
    d: Diag,
    referrer?: { at: YNode['at']; what?: string; hint?: string },
  ): YNode | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.projectDir, rel), 'utf8');
    } catch {
      d.add(
        new SpecbuildError('load/missing-file', `${referrer?.what ?? rel}: ${rel} does not exist`, {
          location: referrer?.at,
          provenance: referrer === undefined ? rel : undefined,
          hint: referrer?.hint,
        }),
      );
      return undefined;
    }
    return d.take(parseYaml(text, rel));
  }

  /**
   * Built-in YAML (a kind's defaults), parsed once per load: every element
   * of a kind composes the same nodes, which composing never modifies.
   * Parsing them per element was ~0.4 s of bench:load's 1,001 elements.
   */
  builtin(name: string, text: string, d: Diag): YNode | undefined {
    let r = this.builtins.get(name);
    if (r === undefined) {
      r = parseYaml(text, name);
      this.builtins.set(name, r);
    }
    return d.take(r);
  }
}

/** A project-relative path that stays inside the project, or undefined. */
export function projectPath(p: string): string | undefined {
  if (isAbsolute(p)) return undefined;
  const n = normalize(p);
  if (n === '..' || n.startsWith('../')) return undefined;
  return n;
}

/** `m` with its includes (and those of every nested mapping) composed beneath it. */
export async function resolveIncludes(
  m: MapNode,
  files: FileLoader,
  d: Diag,
  stack: readonly string[] = [],
): Promise<MapNode> {
  let base: MapNode | undefined;
  const inc = m.entries.get(INCLUDE);
  if (inc !== undefined) {
    const names = inc.kind === 'scalar' ? [inc] : inc.kind === 'seq' ? inc.items : [];
    if (inc.kind === 'map')
      d.add(
        new SpecbuildError('load/wrong-type', '(@) must be a file name or a list of them', {
          location: inc.at,
        }),
      );
    for (const n of names) {
      if (n.kind !== 'scalar' || n.value === null) {
        d.add(
          new SpecbuildError('load/wrong-type', '(@) entries must be file names', {
            location: n.at,
          }),
        );
        continue;
      }
      const rel = projectPath(n.value);
      if (rel === undefined) {
        d.add(
          new SpecbuildError(
            'load/invalid-value',
            `(@) "${n.value}" is not a path inside the project`,
            {
              location: n.at,
            },
          ),
        );
        continue;
      }
      if (stack.includes(rel)) {
        d.add(
          new SpecbuildError(
            'load/invalid-value',
            `${rel} includes itself: ${[...stack, rel].join(' → ')}`,
            {
              location: n.at,
            },
          ),
        );
        continue;
      }
      const node = await files.load(rel, d, n);
      if (node === undefined) continue;
      if (node.kind !== 'map') {
        d.add(
          new SpecbuildError('load/wrong-type', `${rel} must hold a mapping`, {
            location: node.at,
          }),
        );
        continue;
      }
      const included = await resolveIncludes(node, files, d, [...stack, rel]);
      base = base === undefined ? included : compose(base, included, d);
    }
  }
  const own: MapNode = { kind: 'map', entries: new Map(), keyAt: new Map(), at: m.at };
  for (const [k, v] of m.entries) {
    if (k === INCLUDE) continue;
    own.entries.set(k, v.kind === 'map' ? await resolveIncludes(v, files, d, stack) : v);
    own.keyAt.set(k, m.keyAt.get(k) ?? m.at);
  }
  return base === undefined ? own : compose(base, own, d);
}

export { emptyMap };
