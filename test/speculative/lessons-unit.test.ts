// The lessons from BuildStream's implementation that generation and
// instantiation must not repeat, tested on real CAS trees, actions and action
// results (no builds): each test fails on BuildStream's behaviour.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { LocalActionCache, LocalCas } from '../../src/cas/index.js';
import {
  ActionResultSchema,
  buildTree,
  digestOf,
  encodeAction,
  TreeSchema,
  DirectorySchema,
  toPb,
  type Digest,
} from '../../src/reapi/index.js';
import {
  generate,
  instantiate,
  OverlayType,
  TreeFiles,
  type InstantiateEnv,
  type OriginState,
  type SpeculativeAction,
} from '../../src/speculative/index.js';
import { tempDir } from '../helpers/tmp.js';

const BUILD_ROOT = '/buildstream/p/app.bst';

async function rig() {
  const tmp = await tempDir();
  const cas = await LocalCas.open({ dir: join(tmp.path, 'cache') });
  const ac = await LocalActionCache.open(join(tmp.path, 'cache'), cas);
  /** A tree of text files (path → content), stored; returns its root. */
  const tree = async (files: Record<string, string>): Promise<Digest> => {
    const entries = [];
    for (const [path, text] of Object.entries(files)) {
      const digest = await cas.writeBlob(Buffer.from(text));
      entries.push({ kind: 'file' as const, path, digest, executable: false });
    }
    const t = buildTree(entries);
    await cas.writeBlobs([...t.directories.values()].map((d) => d.bytes));
    return t.root;
  };
  /** An action compiling in `wd` with `inputs`, stored; returns its digest. */
  const action = async (inputRoot: Digest, wd: string, outputs: string[]): Promise<Digest> => {
    const enc = encodeAction({
      argv: ['gcc', '-c', 'x.c'],
      env: [],
      workingDirectory: wd,
      outputs,
      inputRoot,
    });
    await cas.writeBlobs([enc.command.bytes, enc.action.bytes]);
    return enc.action.digest;
  };
  /** Stores a successful result of `a` with output files (path → content). */
  const result = async (
    a: Digest,
    files: Record<string, string>,
    extra: { dirs?: Record<string, Record<string, string>>; links?: Record<string, string> } = {},
  ): Promise<void> => {
    const r = create(ActionResultSchema, { exitCode: 0 });
    for (const [path, text] of Object.entries(files))
      r.outputFiles.push({
        $typeName: 'build.bazel.remote.execution.v2.OutputFile',
        path,
        digest: toPb(await cas.writeBlob(Buffer.from(text))),
        isExecutable: false,
        contents: new Uint8Array(0),
        nodeProperties: undefined,
      });
    for (const [path, content] of Object.entries(extra.dirs ?? {})) {
      const files2 = [];
      for (const [name, text] of Object.entries(content))
        files2.push({
          name,
          digest: toPb(await cas.writeBlob(Buffer.from(text))),
          isExecutable: false,
        });
      const treeMsg = create(TreeSchema, {
        root: create(DirectorySchema, { files: files2 }),
        children: [],
      });
      const td = await cas.writeBlob(toBinary(TreeSchema, treeMsg));
      r.outputDirectories.push({
        $typeName: 'build.bazel.remote.execution.v2.OutputDirectory',
        path,
        treeDigest: toPb(td),
        isTopologicallySorted: false,
        rootDirectoryDigest: undefined,
      });
    }
    for (const [path, target] of Object.entries(extra.links ?? {}))
      r.outputSymlinks.push({
        $typeName: 'build.bazel.remote.execution.v2.OutputSymlink',
        path,
        target,
        nodeProperties: undefined,
      });
    await ac.updateActionResult(a, r);
  };
  return { tmp, cas, ac, tree, action, result, trees: new TreeFiles(cas) };
}

type Rig = Awaited<ReturnType<typeof rig>>;

function env(
  r: Rig,
  origins: Record<string, OriginState>,
  adapted: Map<string, Digest> = new Map(),
): InstantiateEnv {
  return {
    cas: r.cas,
    ac: r.ac,
    trees: r.trees,
    element: 'app.bst',
    origin: (el) => origins[el] ?? {},
    adapted: (base) => adapted.get(base.hash),
  };
}

async function fileIn(r: Rig, root: Digest, path: string): Promise<string | undefined> {
  const d = await r.trees.fileAt(root, path);
  return d === undefined ? undefined : Buffer.from(await r.cas.readBlob(d)).toString();
}

async function inputOf(
  r: Rig,
  action: Digest | { digest: Digest; blobs: Uint8Array[] },
): Promise<Digest> {
  if (!('hash' in action)) {
    await r.cas.writeBlobs(action.blobs);
    return inputOf(r, action.digest);
  }
  const { readAction } = await import('../../src/speculative/index.js');
  return (await readAction(r.cas, action)).inputRoot;
}

describe('speculative actions: lessons (generation and instantiation)', () => {
  it('lesson 4: two identical files of different origin: only the one whose origin changed is replaced', async () => {
    const r = await rig();
    await using _ = r.tmp;
    const same = '#define X 1\n';
    const depFiles = await r.tree({ 'usr/include/dep.h': same });
    const sources = await r.tree({ 'local.h': same, 'x.c': 'int x;\n' });
    const input = await r.tree({
      'usr/include/dep.h': same,
      'buildstream/p/app.bst/local.h': same,
      'buildstream/p/app.bst/x.c': 'int x;\n',
    });
    const a = await r.action(input, 'buildstream/p/app.bst', ['x.o']);
    const { speculative } = await generate(r.cas, r.ac, r.trees, {
      mode: 'full',
      buildRoot: BUILD_ROOT,
      sources,
      files: await r.tree({}),
      subactions: [a],
      deps: [{ name: 'dep.bst', files: depFiles }],
    });
    const sa = speculative.actions[0];
    assert.ok(sa);
    assert.deepEqual(
      sa.overlays.map((o) => [
        OverlayType[o.type],
        o.sourceElement,
        o.sourcePath,
        o.targetPaths.join(','),
      ]),
      [
        ['SOURCE', '', 'local.h', 'buildstream/p/app.bst/local.h'],
        ['SOURCE', '', 'x.c', 'buildstream/p/app.bst/x.c'],
        ['ARTIFACT', 'dep.bst', 'usr/include/dep.h', 'usr/include/dep.h'],
      ],
    );
    // dep.h changes; the identical local.h must stay as it was.
    const newDep = await r.tree({ 'usr/include/dep.h': '#define X 2\n' });
    const out = await instantiate(
      env(r, { 'app.bst': { sourcesUnchanged: true }, 'dep.bst': { files: newDep } }),
      sa,
    );
    assert.equal(out.kind, 'changed');
    const root = await inputOf(r, out);
    assert.equal(await fileIn(r, root, 'usr/include/dep.h'), '#define X 2\n');
    assert.equal(await fileIn(r, root, 'buildstream/p/app.bst/local.h'), same);
  });

  it('lesson 1: an action waiting on an input is deferred, never unchanged, and its consumers wait too', async () => {
    const r = await rig();
    await using _ = r.tmp;
    const depFiles = await r.tree({ 'usr/include/dep.h': 'A\n' });
    const sources = await r.tree({ 'x.c': 'int x;\n' });
    const root1 = await r.tree({
      'usr/include/dep.h': 'A\n',
      'buildstream/p/app.bst/x.c': 'int x;\n',
    });
    const compile = await r.action(root1, 'buildstream/p/app.bst', ['x.o']);
    await r.result(compile, { 'x.o': 'object-A' });
    const root2 = await r.tree({ 'buildstream/p/app.bst/x.o': 'object-A' });
    const link = await r.action(root2, 'buildstream/p/app.bst', ['app']);
    const { speculative } = await generate(r.cas, r.ac, r.trees, {
      mode: 'intra-element',
      buildRoot: BUILD_ROOT,
      sources,
      files: await r.tree({}),
      subactions: [compile, link],
      deps: [{ name: 'dep.bst', files: depFiles }],
    });
    const [c, l] = speculative.actions as [SpeculativeAction, SpeculativeAction];
    assert.deepEqual(
      l.overlays.map((o) => [OverlayType[o.type], o.sourcePath]),
      [['ACTION', 'x.o']],
    );
    // dep.bst is changed and not built yet, and has no artifact_overlays: the compile cannot resolve.
    const origins = { 'app.bst': { sourcesUnchanged: true }, 'dep.bst': {} };
    const adapted = new Map<string, Digest>();
    const cOut = await instantiate(env(r, origins, adapted), c);
    assert.deepEqual(cOut, { kind: 'deferred', waiting: 'artifact of dep.bst' });
    // So the compile never enters the map, and the link waits on it instead of reading its recorded output.
    const lOut = await instantiate(env(r, origins, adapted), l);
    assert.equal(lOut.kind, 'deferred');
    assert.match(lOut.waiting, /to be instantiated/);
  });

  it("lesson 3: the element's own artifact is never an origin for its own actions", async () => {
    const r = await rig();
    await using _ = r.tmp;
    const sources = await r.tree({ 'x.c': 'int x;\n' });
    // The action reads a file whose content only the element's own artifact holds.
    const input = await r.tree({
      'buildstream/p/app.bst/x.c': 'int x;\n',
      'opt/out.txt': 'own output\n',
    });
    const a = await r.action(input, 'buildstream/p/app.bst', ['x.o']);
    await r.result(a, { 'x.o': 'obj' });
    const { speculative } = await generate(r.cas, r.ac, r.trees, {
      mode: 'full',
      buildRoot: BUILD_ROOT,
      sources,
      files: await r.tree({ 'opt/out.txt': 'own output\n', 'usr/lib/x.o': 'obj' }),
      subactions: [a],
      deps: [],
    });
    const overlays = speculative.actions.flatMap((s) => s.overlays);
    assert.deepEqual(
      overlays.map((o) => [OverlayType[o.type], o.sourceElement, o.sourcePath]),
      [['SOURCE', '', 'x.c']],
      'nothing names the own artifact',
    );
    // It is indexed for dependants only: where its files came from.
    assert.deepEqual(
      speculative.artifactOverlays.map((o) => [
        OverlayType[o.type],
        o.sourcePath,
        o.targetPaths.join(','),
      ]),
      [['ACTION', 'x.o', 'usr/lib/x.o']],
    );
  });

  it('lesson 6: ACTION overlays resolve through output directories (their Tree) and symlinks', async () => {
    const r = await rig();
    await using _ = r.tmp;
    const sources = await r.tree({ 'gen.in': 'v1\n' });
    const genRoot = await r.tree({ 'buildstream/p/app.bst/gen.in': 'v1\n' });
    const gen = await r.action(genRoot, 'buildstream/p/app.bst', ['gen', 'cur.h']);
    await r.result(gen, {}, { dirs: { gen: { 'x.h': 'X1\n' } }, links: { 'cur.h': 'gen/x.h' } });
    const useRoot = await r.tree({
      'buildstream/p/app.bst/gen/x.h': 'X1\n',
      'buildstream/p/app.bst/cur.h': 'X1\n',
    });
    const use = await r.action(useRoot, 'buildstream/p/app.bst', ['y.o']);
    const { speculative } = await generate(r.cas, r.ac, r.trees, {
      mode: 'intra-element',
      buildRoot: BUILD_ROOT,
      sources,
      files: await r.tree({}),
      subactions: [gen, use],
      deps: [],
    });
    const u = speculative.actions[1];
    assert.ok(u);
    assert.deepEqual(
      u.overlays.map((o) => [OverlayType[o.type], o.sourcePath, o.targetPaths.join(',')]),
      [
        ['ACTION', 'cur.h', 'buildstream/p/app.bst/cur.h'],
        ['ACTION', 'gen/x.h', 'buildstream/p/app.bst/gen/x.h'],
      ],
    );
    // The generator, adapted to new sources, produced a new x.h: both places follow it.
    const genRoot2 = await r.tree({ 'buildstream/p/app.bst/gen.in': 'v2\n' });
    const gen2 = await r.action(genRoot2, 'buildstream/p/app.bst', ['gen', 'cur.h']);
    await r.result(gen2, {}, { dirs: { gen: { 'x.h': 'X2\n' } }, links: { 'cur.h': 'gen/x.h' } });
    const out = await instantiate(
      env(r, { 'app.bst': { sourcesUnchanged: false } }, new Map([[gen.hash, gen2]])),
      u,
    );
    assert.ok(out.kind === 'changed', JSON.stringify(out));
    const root = await inputOf(r, out);
    assert.equal(await fileIn(r, root, 'buildstream/p/app.bst/gen/x.h'), 'X2\n');
    assert.equal(await fileIn(r, root, 'buildstream/p/app.bst/cur.h'), 'X2\n');
  });

  it('lesson 7: the same inputs generate byte-identical speculative actions', async () => {
    const r = await rig();
    await using _ = r.tmp;
    const sources = await r.tree({ 'b.c': 'b\n', 'a.c': 'a\n', 'z.h': 'z\n' });
    const dep = await r.tree({ 'usr/include/d.h': 'd\n', 'usr/include/e.h': 'e\n' });
    const input = await r.tree({
      'buildstream/p/app.bst/a.c': 'a\n',
      'buildstream/p/app.bst/b.c': 'b\n',
      'buildstream/p/app.bst/z.h': 'z\n',
      'usr/include/d.h': 'd\n',
      'usr/include/e.h': 'e\n',
    });
    const a = await r.action(input, 'buildstream/p/app.bst', ['a.o']);
    const gen = async () =>
      digestOf(
        toBinary(
          (await import('../../src/reapi/index.js')).speculativePb.SpeculativeActionsSchema,
          (
            await generate(r.cas, r.ac, new TreeFiles(r.cas), {
              mode: 'full',
              buildRoot: BUILD_ROOT,
              sources,
              files: await r.tree({}),
              subactions: [a],
              deps: [{ name: 'dep.bst', files: dep }],
            })
          ).speculative,
        ),
      );
    assert.equal((await gen()).hash, (await gen()).hash);
  });
});

describe('speculative actions: modes generate exactly their overlay types', () => {
  it('source-artifact: SOURCE and ARTIFACT only; intra-element: + own ACTION and BUILD_TREE; full: + dependency ACTION with the action copied in', async () => {
    const r = await rig();
    await using _ = r.tmp;
    // A dependency whose build generated gen.h (an output of its recorded action, not a file of its artifact).
    const depGenRoot = await r.tree({ 'buildstream/p/dep.bst/gen.in': 'g\n' });
    const depGen = await r.action(depGenRoot, 'buildstream/p/dep.bst', ['gen.h']);
    await r.result(depGen, { 'gen.h': 'GEN\n' });
    const depSA = (
      await generate(r.cas, r.ac, r.trees, {
        mode: 'full',
        buildRoot: '/buildstream/p/dep.bst',
        sources: await r.tree({ 'gen.in': 'g\n' }),
        files: await r.tree({ 'usr/include/dep.h': 'D\n' }),
        subactions: [depGen],
        deps: [],
      })
    ).speculative;
    const depFiles = await r.tree({ 'usr/include/dep.h': 'D\n' });
    const sources = await r.tree({ 'x.c': 'x\n' });
    const compileRoot = await r.tree({
      'buildstream/p/app.bst/x.c': 'x\n',
      'buildstream/p/app.bst/gen.h': 'GEN\n',
      'usr/include/dep.h': 'D\n',
    });
    const compile = await r.action(compileRoot, 'buildstream/p/app.bst', ['x.o']);
    await r.result(compile, { 'x.o': 'OBJ\n' });
    const link = await r.action(
      await r.tree({ 'buildstream/p/app.bst/x.o': 'OBJ\n' }),
      'buildstream/p/app.bst',
      ['app'],
    );
    const types = async (mode: 'source-artifact' | 'intra-element' | 'full') => {
      const { speculative } = await generate(r.cas, r.ac, new TreeFiles(r.cas), {
        mode,
        buildRoot: BUILD_ROOT,
        sources,
        files: await r.tree({}),
        subactions: [compile, link],
        deps: [{ name: 'dep.bst', files: depFiles, speculative: depSA }],
      });
      return speculative.actions.map((a) => [
        a.element,
        a.overlays
          .map((o) => `${OverlayType[o.type]}:${o.sourceElement}:${o.sourcePath}`)
          .join(' '),
      ]);
    };
    assert.deepEqual(await types('source-artifact'), [
      ['', 'SOURCE::x.c ARTIFACT:dep.bst:usr/include/dep.h'],
    ]);
    // gen.h, of no origin intra-element knows, sits in app's build tree: read from it live.
    assert.deepEqual(await types('intra-element'), [
      ['', 'SOURCE::x.c ARTIFACT:dep.bst:usr/include/dep.h BUILD_TREE::gen.h'],
      ['', 'ACTION::x.o'],
    ]);
    assert.deepEqual(await types('full'), [
      ['dep.bst', 'SOURCE::gen.in'],
      ['', 'SOURCE::x.c ACTION:dep.bst:gen.h ARTIFACT:dep.bst:usr/include/dep.h'],
      ['', 'ACTION::x.o'],
    ]);
  });
});
