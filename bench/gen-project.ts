// A generated BuildStream-style project for the load benchmark: N elements in
// a random DAG (fixed seed, so every run and every machine gets the same
// project), in levels so the longest dependency path is `levels` long, each
// element naming 3 dependencies of lower levels with plain `depends:`, kinds
// manual/make/import/stack mixed, each with a local source of a few small
// files. Building it is cheap (commands are `true`, Makefiles do nothing,
// imports carry three small files), so the first build that caches it all is
// done once and reused.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface GeneratedProject {
  /** Every element name, lowest level first. */
  elements: string[];
  /** The stack element that depends, directly or not, on every other. */
  top: string;
  /** Dependencies named per element. */
  deps: Map<string, string[]>;
  /** Longest dependency path (in elements, top included). */
  depth: number;
}

/** mulberry32: a small deterministic PRNG, enough for a fixed random graph. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'manual' | 'make' | 'import' | 'stack';

function elementFile(name: string, kind: Kind, deps: string[]): string {
  const lines = [`kind: ${kind}`, `description: generated element ${name}`];
  if (deps.length > 0) lines.push('depends:', ...deps.map((d) => `- ${d}.bst`));
  if (kind !== 'stack') lines.push('sources:', '- kind: local', `  path: files/${name}`);
  if (kind === 'manual')
    lines.push(
      'variables:',
      `  greeting: hello from ${name}`,
      'config:',
      '  build-commands:',
      '  - true',
      '  install-commands:',
      '  - "true %{greeting} %{install-root}"',
    );
  if (kind === 'make') lines.push('variables:', '  make-args: PREFIX="%{prefix}" QUIET=1');
  // Each import lays its files under a top-level directory of its own, so
  // that a dependant's sandbox mounts one small overlay per import.
  if (kind === 'import') lines.push('config:', `  target: /gen-${name}`);
  return `${lines.join('\n')}\n`;
}

function sourceFiles(name: string, kind: Kind): Record<string, string> {
  const files: Record<string, string> = {
    README: `${name}: generated for the load benchmark\n`,
    'data.txt': `${name}\n`.repeat(8),
    'config.ini': `[${name}]\nvalue=${name.length}\n`,
  };
  if (kind === 'make') files.Makefile = 'all:\n\t@true\ninstall:\n\t@true\n';
  return files;
}

export function planProject(
  count: number,
  levels: number,
  seed: number,
): GeneratedProject & { kinds: Map<string, Kind> } {
  const rnd = prng(seed);
  const perLevel = Math.ceil(count / levels);
  const byLevel: string[][] = [];
  const deps = new Map<string, string[]>();
  const kinds = new Map<string, Kind>();
  const used = new Set<string>();
  const elements: string[] = [];
  for (let level = 0, n = 0; level < levels; level++) {
    const names: string[] = [];
    for (let i = 0; i < perLevel && n < count; i++, n++) {
      const name = `l${String(level).padStart(2, '0')}-e${String(n).padStart(4, '0')}`;
      names.push(name);
      elements.push(name);
      const r = rnd();
      let kind: Kind;
      if (level === 0) kind = r < 0.5 ? 'import' : 'manual';
      else kind = r < 0.35 ? 'manual' : r < 0.6 ? 'make' : r < 0.8 ? 'import' : 'stack';
      kinds.set(name, kind);
      const mine: string[] = [];
      if (level > 0) {
        // One from the level below (one not yet used when there is one), so
        // paths are `levels` long and every element is reached from the top.
        const below = byLevel[level - 1] ?? [];
        const fresh = below.filter((b) => !used.has(b));
        const pool = fresh.length > 0 ? fresh : below;
        mine.push(pool[Math.floor(rnd() * pool.length)] ?? '');
        const lower = byLevel.slice(0, level).flat();
        while (mine.length < Math.min(3, lower.length)) {
          const pick = lower[Math.floor(rnd() * lower.length)] ?? '';
          if (!mine.includes(pick)) mine.push(pick);
        }
      }
      for (const m of mine) used.add(m);
      deps.set(name, mine);
    }
    byLevel.push(names);
  }
  const top = 'top';
  const sinks = elements.filter((e) => !used.has(e));
  deps.set(top, sinks);
  kinds.set(top, 'stack');
  return { elements: [...elements, top], top, deps, depth: levels + 1, kinds };
}

/** Writes the project under `dir`; returns its plan. */
export async function writeGeneratedProject(
  dir: string,
  opts: { count: number; levels: number; seed: number },
): Promise<GeneratedProject> {
  const plan = planProject(opts.count, opts.levels, opts.seed);
  const files: Record<string, string> = {
    'project.conf': [
      'name: genbench',
      'min-version: 2.0',
      'element-path: elements',
      'variables:',
      '  generated: "yes"',
      'environment:',
      '  GENERATED: "%{generated}"',
      '',
    ].join('\n'),
  };
  for (const name of plan.elements) {
    const kind = plan.kinds.get(name) ?? 'stack';
    files[`elements/${name}.bst`] = elementFile(name, kind, plan.deps.get(name) ?? []);
    if (kind !== 'stack')
      for (const [f, text] of Object.entries(sourceFiles(name, kind)))
        files[`files/${name}/${f}`] = text;
  }
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return plan;
}
