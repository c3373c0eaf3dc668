// Build scopes and runtime closures reused across nodes (Scopes) give what
// a fresh depth-first walk per node gives, in the same order; canonical JSON
// splices pre-serialized text as if it had serialized the value itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildScope,
  CanonicalText,
  canonicalJson,
  runtimeClosure,
  Scopes,
  type ElementName,
  type GraphNode,
} from '../../src/project/index.js';

/** The walk as it was written before Scopes: depth first, by name, each once. */
function walkClosure(node: GraphNode, seen: Set<string>, out: GraphNode[]): void {
  if (seen.has(node.name)) return;
  seen.add(node.name);
  for (const r of node.runtimeDeps) walkClosure(r, seen, out);
  out.push(node);
}

function referenceScope(node: GraphNode): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const b of node.buildDeps) {
    const c: GraphNode[] = [];
    walkClosure(b, new Set(), c);
    for (const n of c) {
      if (seen.has(n.name)) continue;
      seen.add(n.name);
      out.push(n.name);
    }
  }
  return out;
}

/** A random DAG whose nodes depend only on earlier ones, build/runtime/both mixed. */
function randomGraph(count: number, seed: number): GraphNode[] {
  let s = seed;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const nodes: GraphNode[] = [];
  for (let i = 0; i < count; i++) {
    const n: GraphNode = {
      name: `e${i}.bst` as ElementName,
      decl: undefined as never,
      buildDeps: [],
      runtimeDeps: [],
    };
    for (let k = 0; k < 3 && i > 0; k++) {
      const d = nodes[Math.floor(rnd() * i)];
      if (d === undefined || n.buildDeps.includes(d) || n.runtimeDeps.includes(d)) continue;
      const type = rnd();
      if (type < 0.7) n.buildDeps.push(d);
      if (type > 0.3) n.runtimeDeps.push(d);
    }
    nodes.push(n);
  }
  return nodes;
}

describe('Scopes', () => {
  it('match a fresh depth-first walk per node, in order', () => {
    for (const seed of [1, 2, 3]) {
      const nodes = randomGraph(150, seed);
      const scopes = new Scopes();
      // Asked in an order other than the graph's, so reused closures are not always the ones just made.
      for (const n of [...nodes].reverse()) {
        const closure: GraphNode[] = [];
        walkClosure(n, new Set(), closure);
        const want = closure.map((x) => x.name);
        assert.deepEqual(
          scopes.runtimeClosure(n).map((x) => x.name),
          want,
        );
        assert.deepEqual(
          runtimeClosure(n).map((x) => x.name),
          want,
        );
        assert.deepEqual(
          scopes.buildScope(n).map((x) => x.name),
          referenceScope(n),
        );
        assert.deepEqual(
          buildScope(n).map((x) => x.name),
          referenceScope(n),
        );
      }
    }
  });
});

describe('canonicalJson', () => {
  it('splices CanonicalText as the value it stands for', () => {
    const deps = [
      ['b.bst', 'f'.repeat(64)],
      ['ä.bst', '0'.repeat(64)],
    ];
    const spliced = new CanonicalText(canonicalJson(deps));
    assert.equal(
      canonicalJson({ z: 1, dependencies: spliced }),
      canonicalJson({ z: 1, dependencies: deps }),
    );
    assert.equal(
      canonicalJson({ b: ['x', null, true, 2], a: 'é\u{1F600}', c: undefined }),
      '{"a":"\\u00e9\\ud83d\\ude00","b":["x",null,true,2]}',
    );
  });
});
