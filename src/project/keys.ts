// Cache keys, as BuildStream makes them: the SHA-256 of the canonical JSON of
// a dictionary describing everything that can change an element's result.
// The strong key holds the strong keys of everything staged for its build;
// the weak key only their names, so it survives a dependency's change and
// still moves with any change of the element itself (what speculative
// actions are stored under). What goes in is documented in docs/project.md.
import { createHash } from 'node:crypto';
import type { ElementDecl } from './element.js';
import { Scopes, type Graph, type GraphNode } from './graph.js';
import type { ElementName } from './names.js';
import type { Plain } from './yaml.js';

/** Bumped whenever what goes into a key changes meaning: every key moves. */
export const KEY_FORMAT = 1;

/**
 * Text that is already canonical JSON, spliced into `canonicalJson`'s output
 * as it is: the large parts of keys (the dependency lists) are serialized
 * once per element instead of once per dependant.
 */
export class CanonicalText {
  constructor(readonly text: string) {}
}

const NON_ASCII = /[\u0080-\uffff]/;
const NON_ASCII_ALL = /[\u0080-\uffff]/g;

function canonicalString(s: string): string {
  const j = JSON.stringify(s);
  // Nearly all text is ASCII: a test is cheaper than a replace that finds nothing.
  return NON_ASCII.test(j)
    ? j.replace(NON_ASCII_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : j;
}

/**
 * JSON with keys sorted at every level, no whitespace, and characters
 * outside ASCII escaped: the same text for the same value on every machine.
 */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'string') return canonicalString(v);
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (v instanceof CanonicalText) return v.text;
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(v[i]);
    return `${out}]`;
  }
  const o = v as Record<string, unknown>;
  const names = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let out = '{';
  for (let i = 0; i < names.length; i++) {
    const k = names[i] as string;
    out += `${i === 0 ? '' : ','}${canonicalString(k)}:${canonicalJson(o[k])}`;
  }
  return `${out}}`;
}

export function keyOf(v: unknown): string {
  return createHash('sha256').update(canonicalJson(v)).digest('hex');
}

export interface ElementKeys {
  strong: string;
  weak: string;
  /**
   * The weak key without the element's sources: its recipe (kind, commands,
   * environment, sandbox, dependency names). Equal across two builds whose
   * element changed only in its sources (speculative actions then follow a
   * copy of its actions with the new sources).
   */
  recipe?: string;
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
    const digestEnv = decl.deps.flatMap((dep) =>
      dep.digestEnvironment === undefined ? [] : [[dep.name, dep.digestEnvironment]],
    );
    // Only when used: every other element's key stays as it was.
    if (digestEnv.length > 0) own['digest-environment'] = digestEnv.sort();
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
  const scopes = new Scopes();
  // Each element's name and `[name, strong key]` as canonical JSON, made
  // once: a dependant's key splices them. bench:load's 1,000 elements have
  // build scopes of 143 elements median (171,000 entries in all); with every
  // entry serialized afresh, computeKeys took 1.2-1.8 s, now 0.25-0.4 s.
  // By the node's number in `scopes`.
  const nameJson: (string | undefined)[] = [];
  const pairJson: (string | undefined)[] = [];
  const one = (node: GraphNode): ElementKeys | undefined => {
    const src = sourceKeys.get(node.name);
    if (src === undefined) return undefined;
    // Each value serialized once, for both keys.
    const own: Record<string, CanonicalText> = {};
    for (const [k, v] of Object.entries(ownKeyDict(node.decl, src, toolchain)))
      own[k] = new CanonicalText(canonicalJson(v));
    const scope = scopes.buildScopeIds(node);
    const names: string[] = [];
    const pairs: string[] = [];
    for (const id of scope) {
      names.push(nameJson[id] ?? canonicalJson(scopes.node(id).name));
      const pair = pairJson[id];
      if (pair === undefined) return undefined; // a dependency has no keys
      pairs.push(pair);
    }
    const deps = new CanonicalText(`[${names.join(',')}]`);
    const weak = keyOf({ ...own, dependencies: deps });
    const recipe = keyOf({ ...own, sources: new CanonicalText('null'), dependencies: deps });
    const strong = keyOf({
      ...own,
      dependencies: new CanonicalText(`[${pairs.join(',')}]`),
      'weak-key': weak,
    });
    return { weak, strong, recipe };
  };
  for (const node of graph.order) {
    const k = one(node);
    keys.set(node.name, k);
    const id = scopes.idOf(node);
    const name = canonicalJson(node.name);
    nameJson[id] = name;
    if (k !== undefined) pairJson[id] = `[${name},${canonicalJson(k.strong)}]`;
  }
  return keys;
}
