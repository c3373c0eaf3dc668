// examples/hello end to end with the real CLI: a clean build records, per
// element, exactly the compiles, links and archive steps its wrapper log
// shows and the app prints its line; a second build is all cached; a changed
// .c file of libbase rebuilds it and everything above it, those above from
// the action cache except the app's link; and two fresh caches record the
// same action digests, the exactness that priming relies on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactCache, LocalCas, RefStore, listFiles, stageTree } from '../../src/cas/index.js';
import { fromPb } from '../../src/reapi/index.js';
import { cliMain, repoRoot } from '../helpers/paths.js';
import { describeRun, runProcess } from '../helpers/process.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';
import type { LogLine } from '../helpers/cproject.js';

const ELEMENTS = ['libbase.bst', 'libmid.bst', 'app.bst', 'hello.bst'];
const APP_OUTPUT = 'Hello, world! [2 words, tag ED90F094, mid 0.3 on base 1.2, app 1.0]\n';
/** What each element's wrapped commands write (-o or --output), in build order. */
const ACTION_OUTPUTS: Record<string, string[]> = {
  'libbase.bst': [
    'build/strbuf.o',
    'build/checksum.o',
    'build/hex.o',
    'build/version.o',
    'build/libbase.a',
  ],
  'libmid.bst': [
    'build/greet.o',
    'build/shout.o',
    'build/words.o',
    'build/tag.o',
    'build/version.o',
    'build/libmid.a',
  ],
  'app.bst': [
    'CMakeFiles/app.dir/src/main.c.o',
    'CMakeFiles/app.dir/src/report.c.o',
    'CMakeFiles/app.dir/src/plural.c.o',
    'app',
  ],
};

interface ReportElement {
  name: string;
  state: string;
  strong_key: string;
  subactions: string[];
}

interface Build {
  cacheDir: string;
  elements: Map<string, ReportElement>;
  states: Record<string, string>;
}

describe('examples/hello', () => {
  let tmp: TempDir;
  let project: string;
  let first: Build;

  before(async () => {
    tmp = await tempDir('specbuild-example-');
    project = join(tmp.path, 'hello');
    await cp(join(repoRoot, 'examples', 'hello'), project, { recursive: true });
  });
  after(async () => {
    await tmp[Symbol.asyncDispose]();
  });

  /**
   * `specbuild build hello.bst` into the cache `name`. One job per element
   * (max-jobs 1, which no key or action includes), so that the order in
   * which actions complete, and are recorded and logged, is the build order.
   */
  async function build(name: string): Promise<Build> {
    const cacheDir = join(tmp.path, name);
    const config = join(tmp.path, `${name}.yaml`);
    await writeFile(config, `cachedir: ${JSON.stringify(cacheDir)}\nbuild:\n  max-jobs: 1\n`);
    const report = join(tmp.path, `${name}-report.json`);
    const r = await runProcess(
      process.execPath,
      [cliMain, '--config', config, '-C', project, 'build', 'hello.bst', '--report', report],
      { timeoutMs: 120_000, env: { ...process.env, CI: 'true' } },
    );
    assert.equal(r.code, 0, describeRun('specbuild build', r));
    const parsed = JSON.parse(await readFile(report, 'utf8')) as { elements: ReportElement[] };
    const elements = new Map(parsed.elements.map((e) => [e.name, e]));
    const states = Object.fromEntries(parsed.elements.map((e) => [e.name, e.state]));
    return { cacheDir, elements, states };
  }

  /** An element's artifact files, by path, and a way to read them. */
  async function artifact(b: Build, element: string) {
    const cas = await LocalCas.open({ dir: b.cacheDir });
    const artifacts = new ArtifactCache(cas, new RefStore(join(b.cacheDir, 'refs', 'artifacts')));
    const key = b.elements.get(element)?.strong_key ?? '';
    const art = await artifacts.lookup('hello', element.replace(/\.bst$/, ''), key);
    assert.ok(art?.files, `no artifact of ${element}`);
    const files = fromPb(art.files);
    const read = async (path: string): Promise<string> => {
      const f = (await listFiles(cas, files)).find((x) => x.path === path);
      assert.ok(f, `${element} has no ${path}`);
      return Buffer.from(await cas.readBlob(f.digest)).toString('utf8');
    };
    return { cas, files, read };
  }

  /** The element's wrapper log, from its artifact. */
  async function wrapperLog(b: Build, element: string): Promise<LogLine[]> {
    const text = await (
      await artifact(b, element)
    ).read(`usr/share/specbuild/${element}.wrapper.log`);
    return text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LogLine);
  }

  /** The file a logged command writes: gcc's -o, or the archive of `ar rcsD ARCHIVE ...`. */
  const outputOf = (argv: string[]): string | undefined => {
    if (argv[0] === 'ar') return argv[2];
    const o = argv.indexOf('-o');
    return o < 0 ? undefined : argv[o + 1];
  };

  it('builds every element, records exactly the wrapped commands, and the app runs', async () => {
    first = await build('cache1');
    assert.deepEqual(first.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'built'])));
    for (const [element, outputs] of Object.entries(ACTION_OUTPUTS)) {
      const log = await wrapperLog(first, element);
      const actions = log.filter((l) => l.outcome === 'miss' || l.outcome === 'hit');
      assert.deepEqual(
        actions.map((l) => [outputOf(l.argv), l.outcome]),
        outputs.map((o) => [o, 'miss']),
        element,
      );
      assert.deepEqual(
        first.elements.get(element)?.subactions,
        actions.map((l) => l.action),
        element,
      );
      // Anything else ran locally: only CMake's compiler probes (its ABI
      // check compiles with -v, which the wrapper leaves to the compiler).
      for (const l of log.filter((x) => !actions.includes(x)))
        assert.ok(
          l.outcome === 'local' && element === 'app.bst' && !l.argv.includes('-Wall'),
          `${element}: ${JSON.stringify(l)}`,
        );
    }
    // The app, checked out of its artifact, prints a line from all three.
    const app = await artifact(first, 'app.bst');
    const dir = join(tmp.path, 'checkout');
    await mkdir(dir);
    await stageTree(app.cas, app.files, dir);
    const run = spawnSync(join(dir, 'usr', 'bin', 'app'), { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, APP_OUTPUT);
  });

  it('builds nothing the second time', async () => {
    const again = await build('cache1');
    assert.deepEqual(again.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'cached'])));
  });

  it("rebuilds libbase and everything above it after a change to one of libbase's .c files", async () => {
    const hex = join(project, 'files', 'libbase', 'src', 'hex.c');
    const original = await readFile(hex, 'utf8');
    // New code in hex.o, hence in libbase.a; no header changes.
    await writeFile(hex, `${original}\nint base_hex_width(void)\n{\n\treturn 8;\n}\n`);
    const changed = await build('cache1');
    await writeFile(hex, original);
    assert.deepEqual(changed.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'built'])));
    // Above libbase, only the app's link has new inputs: the rest are hits.
    const outcomes = async (element: string) =>
      (await wrapperLog(changed, element))
        .filter((l) => l.outcome !== 'local')
        .map((l) => `${outputOf(l.argv) ?? '?'} ${l.outcome}`);
    assert.deepEqual(await outcomes('libbase.bst'), [
      'build/strbuf.o hit',
      'build/checksum.o hit',
      'build/hex.o miss',
      'build/version.o hit',
      'build/libbase.a miss',
    ]);
    assert.deepEqual(
      await outcomes('libmid.bst'),
      (ACTION_OUTPUTS['libmid.bst'] ?? []).map((o) => `${o} hit`),
    );
    assert.deepEqual(
      changed.elements.get('libmid.bst')?.subactions,
      first.elements.get('libmid.bst')?.subactions,
    );
    assert.deepEqual(await outcomes('app.bst'), [
      'CMakeFiles/app.dir/src/main.c.o hit',
      'CMakeFiles/app.dir/src/report.c.o hit',
      'CMakeFiles/app.dir/src/plural.c.o hit',
      'app miss',
    ]);
  });

  it('records the same action digests per element when built from scratch in another cache', async () => {
    const other = await build('cache2');
    assert.deepEqual(other.states, Object.fromEntries(ELEMENTS.map((e) => [e, 'built'])));
    for (const element of ELEMENTS)
      assert.deepEqual(
        other.elements.get(element)?.subactions,
        first.elements.get(element)?.subactions,
        element,
      );
  });
});
