// Cache keys: pinned for a committed fixture project (test/golden/keys.expected;
// `npm run update-golden` after a change meant to move them), and moved by
// exactly the inputs that should move them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LocalCas } from '../../src/cas/index.js';
import {
  computeKeys,
  loadGraph,
  loadProject,
  LocalSource,
  type ElementKeys,
  type ElementName,
  type Plain,
} from '../../src/project/index.js';
import { assertGolden } from '../helpers/golden.js';
import { repoRoot } from '../helpers/paths.js';
import { ProjectRig, PROJECT_CONF } from '../helpers/project-rig.js';
import { tempDir } from '../helpers/tmp.js';

const TOOLCHAIN = 'golden-toolchain';

async function keysOf(
  dir: string,
  targets: string[],
  toolchain = TOOLCHAIN,
): Promise<Map<string, ElementKeys | undefined>> {
  const p = await loadProject(dir, { maxJobs: 4 });
  assert.ok(p.ok, p.ok ? '' : p.errors.map((e) => e.message).join('\n'));
  const g = await loadGraph(p.value, targets);
  assert.ok(g.ok, g.ok ? '' : g.errors.map((e) => e.message).join('\n'));
  await using tmp = await tempDir();
  const cas = await LocalCas.open({ dir: join(tmp.path, 'cas') });
  const env = { project: p.value, sourceDir: join(tmp.path, 'sources'), cas };
  const sourceKeys = new Map<ElementName, Plain[]>();
  for (const node of g.value.order) {
    const keys: Plain[] = [];
    for (const s of node.decl.sources) {
      const src = new LocalSource(s);
      keys.push({ kind: s.kind, key: await src.key(env), directory: s.directory });
    }
    sourceKeys.set(node.name, keys);
  }
  return computeKeys(g.value, sourceKeys, toolchain);
}

describe('cache keys', () => {
  it('match the golden keys of the fixture project', async () => {
    const keys = await keysOf(join(repoRoot, 'test', 'fixtures', 'keys-project'), ['all.bst']);
    const lines = [...keys].map(
      ([name, k]) => `${name} strong=${k?.strong ?? '-'} weak=${k?.weak ?? '-'}`,
    );
    assertGolden('keys.expected', `${lines.join('\n')}\n`);
  });

  const files = {
    'project.conf': PROJECT_CONF,
    'elements/base.bst':
      'kind: manual\nsources:\n- kind: local\n  path: base\nconfig:\n  build-commands:\n  - echo base\n',
    'elements/lib.bst':
      'kind: manual\ndepends:\n- base.bst\nsources:\n- kind: local\n  path: lib\n',
    'elements/app.bst': 'kind: make\ndepends:\n- lib.bst\nsources:\n- kind: local\n  path: app\n',
    'base/b.c': 'int b;\n',
    'lib/l.c': 'int l;\n',
    'app/a.c': 'int a;\n',
  };

  async function moved(change: Record<string, string>): Promise<Record<string, string>> {
    await using rig = await ProjectRig.create(files);
    const before = await keysOf(rig.dir, ['app.bst']);
    await rig.write(change);
    const after = await keysOf(rig.dir, ['app.bst']);
    const out: Record<string, string> = {};
    for (const name of ['base.bst', 'lib.bst', 'app.bst']) {
      const b = before.get(name);
      const a = after.get(name);
      assert.ok(a && b);
      out[name] =
        `${a.strong === b.strong ? '' : 'strong'}${a.weak === b.weak ? '' : ' weak'}`.trim() ||
        'none';
    }
    return out;
  }

  it("a dependency change moves dependants' strong keys, never their weak keys", async () => {
    assert.deepEqual(await moved({ 'base/b.c': 'int b = 2;\n' }), {
      'base.bst': 'strong weak',
      'lib.bst': 'strong',
      'app.bst': 'strong',
    });
  });

  it("an element's own source, command, environment or sandbox change moves both of its keys only", async () => {
    const app = files['elements/app.bst'];
    assert.deepEqual(await moved({ 'app/a.c': 'int a = 1;\n' }), {
      'base.bst': 'none',
      'lib.bst': 'none',
      'app.bst': 'strong weak',
    });
    assert.deepEqual(await moved({ 'elements/app.bst': `${app}variables:\n  make-args: -k\n` }), {
      'base.bst': 'none',
      'lib.bst': 'none',
      'app.bst': 'strong weak',
    });
    assert.deepEqual(await moved({ 'elements/app.bst': `${app}environment:\n  CFLAGS: -O2\n` }), {
      'base.bst': 'none',
      'lib.bst': 'none',
      'app.bst': 'strong weak',
    });
    assert.deepEqual(
      await moved({
        'elements/app.bst': `${app}sandbox:\n  remote-apis-socket:\n    path: /run/r.sock\n`,
      }),
      {
        'base.bst': 'none',
        'lib.bst': 'none',
        'app.bst': 'strong weak',
      },
    );
    // A change of lib's own command moves lib both ways, app only strongly.
    assert.deepEqual(
      await moved({
        'elements/lib.bst': `${files['elements/lib.bst']}config:\n  build-commands:\n  - make\n`,
      }),
      { 'base.bst': 'none', 'lib.bst': 'strong weak', 'app.bst': 'strong' },
    );
  });

  it('variables left out of the cache key (environment-nocache) and max-jobs move nothing', async () => {
    const app = files['elements/app.bst'];
    assert.deepEqual(
      await moved({
        'elements/app.bst': `${app}environment:\n  SCRATCH: x\nenvironment-nocache:\n- SCRATCH\n`,
      }),
      { 'base.bst': 'none', 'lib.bst': 'none', 'app.bst': 'none' },
    );
  });

  it('another toolchain moves the keys of elements that run commands', async () => {
    await using rig = await ProjectRig.create({
      ...files,
      'elements/imp.bst': 'kind: import\nsources:\n- kind: local\n  path: base\n',
    });
    const a = await keysOf(rig.dir, ['app.bst', 'imp.bst'], 'one');
    const b = await keysOf(rig.dir, ['app.bst', 'imp.bst'], 'two');
    assert.notEqual(a.get('app.bst')?.weak, b.get('app.bst')?.weak);
    assert.equal(a.get('imp.bst')?.strong, b.get('imp.bst')?.strong, 'an import runs no compiler');
  });
});
