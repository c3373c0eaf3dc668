// Cache keys, as BuildStream makes them: the SHA-256 of the canonical JSON of
// a dictionary describing everything that can change an element's result.
// The strong key holds the strong keys of everything staged for its build;
// the weak key only their names, so it survives a dependency's change and
// still moves with any change of the element itself (what speculative
// actions are stored under). What goes in is documented in docs/project.md.
import { createHash } from 'node:crypto';
import type { ElementDecl } from './element.js';
import { buildScope, type Graph, type GraphNode } from './graph.js';
import type { ElementName } from './names.js';
import type { Plain } from './yaml.js';

/** Bumped whenever what goes into a key changes meaning: every key moves. */
export const KEY_FORMAT = 1;

/**
 * JSON with keys sorted at every level, no whitespace, and characters
 * outside ASCII escaped: the same text for the same value on every machine.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    return JSON.stringify(v).replace(
      /[\u0080-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${canonicalJson(k)}:${canonicalJson(x)}`).join(',')}}`;
}

export function keyOf(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}

export interface ElementKeys {
  strong: string;
  weak: string;
}

/** The part of the key that is the element's own (no dependencies). */
export function ownKeyDict(
  decl: ElementDecl,
  sourceKeys: Plain[],
  toolchain: string,
): Record<string, Plain | number> {
  const own: Record<string, Plain | number> = {
    format: KEY_FORMAT,
    kind: decl.kind,
    public: decl.public,
    sources: sourceKeys,
  };
  if (decl.importConfig !== undefined) own.config = { ...decl.importConfig };
  if (decl.commands !== undefined) {
    const nocache = new Set(decl.nocache);
    own.config = {
      'configure-commands': decl.commands.configure,
      'build-commands': decl.commands.build,
      'install-commands': decl.commands.install,
      'strip-commands': decl.commands.strip,
      'command-subdir': decl.commandSubdir,
    };
    own.environment = Object.fromEntries(decl.environment.filter(([k]) => !nocache.has(k)));
    own.sandbox = {
      'build-os': decl.sandbox.buildOs,
      'build-arch': decl.sandbox.buildArch,
      'remote-apis-socket': decl.sandbox.remoteApisSocket ?? null,
    };
    own['build-root'] = decl.buildRoot;
    own['install-root'] = decl.installRoot;
    // The host supplies the compiler: results of another toolchain differ.
    own.toolchain = toolchain;
  }
  return own;
}

/**
 * Keys of every node of the graph, dependencies first. A node whose sources
 * (or any dependency's) have no ref has no keys.
 */
export function computeKeys(
  graph: Graph,
  sourceKeys: ReadonlyMap<ElementName, Plain[] | undefined>,
  toolchain: string,
): Map<ElementName, ElementKeys | undefined> {
  const keys = new Map<ElementName, ElementKeys | undefined>();
  const one = (node: GraphNode): ElementKeys | undefined => {
    const src = sourceKeys.get(node.name);
    if (src === undefined) return undefined;
    const own = ownKeyDict(node.decl, src, toolchain);
    const scope = buildScope(node);
    const weak = keyOf({ ...own, dependencies: scope.map((n) => n.name) });
    const deps: [string, string][] = [];
    for (const n of scope) {
      const k = keys.get(n.name);
      if (k === undefined) return undefined;
      deps.push([n.name, k.strong]);
    }
    return { weak, strong: keyOf({ ...own, dependencies: deps, 'weak-key': weak }) };
  };
  for (const node of graph.order) keys.set(node.name, one(node));
  return keys;
}
