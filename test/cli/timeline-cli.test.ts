// `specbuild build --timeline FILE.html --trace FILE.json`, end to end: a
// real rebuild with primed actions (real gcc, the real sandbox), its page
// opened in a real headless browser (Debian's chromium), which must draw
// every element and show exactly the --report file's figures; and the Chrome
// trace, with a thread per lane and an event per element and primed action.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TimelineRecorder } from '../../src/cli/render/timeline.js';
import type { Report } from '../../src/cli/render/report.js';
import { emptyStats } from '../../src/speculative/index.js';
import { ran, specbuild } from '../helpers/cli-rig.js';
import { requireCommand } from '../helpers/prereq.js';
import { runProcess } from '../helpers/process.js';
import { PROJECT_CONF, ProjectRig } from '../helpers/project-rig.js';
import { importElement, manualElement } from '../helpers/scenario.js';

/** base (a header) ← one, two (independent: two builder lanes) ← app. */
const project = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst': importElement('base'),
  'elements/one.bst': manualElement({
    path: 'one',
    buildDepends: ['base.bst'],
    build: ['$CC -c one.c -o one.o'],
    install: ['install -D one.o %{install-root}/usr/lib/one.o'],
  }),
  'elements/two.bst': manualElement({
    path: 'two',
    buildDepends: ['base.bst'],
    build: ['$CC -c two.c -o two.o'],
    install: ['install -D two.o %{install-root}/usr/lib/two.o'],
  }),
  'elements/app.bst': manualElement({
    path: 'app',
    buildDepends: ['base.bst', 'one.bst', 'two.bst'],
    build: ['$CC -c main.c -o main.o', '$CC -o app main.o /usr/lib/one.o /usr/lib/two.o'],
    install: ['install -D app %{install-root}%{bindir}/app'],
  }),
  'base/base.h': '#define BASE 1\n',
  'one/one.c': '#include <base.h>\nint one(void) { return BASE; }\n',
  'two/two.c': '#include <base.h>\nint two(void) { return BASE + 1; }\n',
  'app/main.c':
    '#include <base.h>\nint one(void);\nint two(void);\nint main(void) { return one() + two() - 3 * BASE; }\n',
};

/** The page as the browser has it once its script has run. */
async function renderedDom(file: string): Promise<string> {
  const r = await runProcess(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--window-size=1280,900',
      '--virtual-time-budget=5000',
      '--dump-dom',
      pathToFileURL(file).href,
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Each tag named `tag` in `html` with its attributes. */
function tags(html: string, tag: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const m of html.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'g'))) {
    const attrs: Record<string, string> = {};
    for (const a of (m[1] ?? '').matchAll(/([\w-]+)="([^"]*)"/g))
      attrs[a[1] ?? ''] = (a[2] ?? '').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    out.push(attrs);
  }
  return out;
}

const pct = (x: number | null): string => (x === null ? '-' : `${String(Math.round(x * 100))}%`);

describe('specbuild build --timeline and --trace', () => {
  it('draws every element and primed action in a real browser, with the figures of --report', async () => {
    requireCommand('chromium', 'apt-get install chromium (scripts/install-test-deps.sh does)');
    await using rig = await ProjectRig.create(project);
    const first = await specbuild(rig, ['build', '--speculative-actions', 'full', 'app.bst']);
    assert.equal(first.code, 0, ran(first));
    await rig.write({ 'base/base.h': '#define BASE 2\n' });
    const page = join(rig.scratch, 'timeline.html');
    const traceFile = join(rig.scratch, 'trace.json');
    const reportFile = join(rig.scratch, 'report.json');
    const r = await specbuild(rig, [
      'build',
      '--speculative-actions',
      'full',
      '--report',
      reportFile,
      '--timeline',
      page,
      '--trace',
      traceFile,
      'app.bst',
    ]);
    assert.equal(r.code, 0, ran(r));
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.deepEqual(
      report.elements.map((e) => [e.name, e.state]),
      [
        ['base.bst', 'built'],
        ['one.bst', 'built'],
        ['two.bst', 'built'],
        ['app.bst', 'built'],
      ],
    );
    // The rebuild primed one.c's, two.c's and main.c's compiles (and the link).
    assert.ok(report.speculative.primed >= 3, JSON.stringify(report.speculative));

    const dom = await renderedDom(page);
    // The figures: the report's totals, value and text.
    const figures = tags(dom, 'dd').filter((d) => d['data-figure'] !== undefined);
    const keys = Object.keys(report.speculative) as (keyof Report['speculative'])[];
    assert.deepEqual(figures.map((d) => d['data-figure']).sort(), [...keys].sort());
    for (const k of keys) {
      const d = figures.find((f) => f['data-figure'] === k);
      assert.deepEqual(JSON.parse(d?.['data-value'] ?? 'undefined'), report.speculative[k], k);
      const text = new RegExp(`data-figure="${k}"[^>]*>([^<]*)<`).exec(dom)?.[1];
      const v = report.speculative[k];
      assert.equal(text, k === 'precision' || k === 'recall' ? pct(v) : String(v), k);
    }
    // Every element drawn as a bar the browser laid out, in a builder lane.
    const rects = tags(dom, 'rect');
    const bars = rects.filter((a) => a['data-element'] !== undefined);
    assert.deepEqual(bars.map((b) => b['data-element']).sort(), [
      'app.bst',
      'base.bst',
      'one.bst',
      'two.bst',
    ]);
    for (const b of bars) {
      assert.match(b.class ?? '', /\belement state-built\b/);
      assert.ok(Number(b.width) >= 6 && Number(b.x) >= 150, JSON.stringify(b));
    }
    // Each element's recorded actions, coloured as the build answered them.
    const actions = rects.filter((a) => a['data-action'] !== undefined);
    const count = (o: string): number => actions.filter((a) => a['data-outcome'] === o).length;
    assert.equal(count('hit-primed'), report.speculative.hits_primed);
    assert.equal(count('hit-cached'), report.speculative.hits_cached);
    assert.equal(count('miss'), report.speculative.misses);
    assert.equal(actions.length, report.elements.flatMap((e) => e.subactions).length);
    // Primed actions in executor lanes: those priming produced are the report's primed.
    const primed = rects.filter((a) => a['data-primed'] !== undefined);
    const produced = primed.filter((a) => ['used', 'unused'].includes(a['data-outcome'] ?? ''));
    assert.equal(produced.length, report.speculative.primed);
    assert.equal(
      primed.filter((a) => a['data-outcome'] === 'used').length,
      report.speculative.hits_primed,
    );
    // The table lists every element, and the script says it drew them all.
    assert.equal(tags(dom, 'tr').filter((t) => t['data-element'] !== undefined).length, 4);
    assert.equal(tags(dom, 'body')[0]?.['data-drawn'], String(4 + primed.length));

    // The Chrome trace: the same lanes, elements and primed actions, in microseconds.
    const trace = JSON.parse(await readFile(traceFile, 'utf8')) as {
      traceEvents: {
        name: string;
        cat?: string;
        ph: string;
        ts?: number;
        dur?: number;
        tid: number;
        args?: Record<string, unknown>;
      }[];
      otherData: Record<string, unknown>;
    };
    const threads = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
    const lanes = threads.map((t) => t.args?.name);
    assert.ok(lanes.includes('builder 1') && lanes.includes('builder 2'), String(lanes));
    assert.ok(
      lanes.some((l) => typeof l === 'string' && l.startsWith('primed on ')),
      String(lanes),
    );
    const elements = trace.traceEvents.filter(
      (e) => e.ph === 'X' && (e.cat ?? '').startsWith('element'),
    );
    assert.deepEqual(elements.map((e) => e.name).sort(), [
      'app.bst',
      'base.bst',
      'one.bst',
      'two.bst',
    ]);
    // one and two build side by side: two lanes.
    const lane = (n: string): number | undefined => elements.find((e) => e.name === n)?.tid;
    assert.notEqual(lane('one.bst'), lane('two.bst'));
    for (const e of trace.traceEvents.filter((x) => x.ph !== 'M')) {
      assert.ok(Number.isInteger(e.ts) && (e.ts ?? -1) >= 0, JSON.stringify(e));
      if (e.ph === 'X') assert.ok(Number.isInteger(e.dur) && (e.dur ?? -1) >= 0);
      assert.ok(
        threads.some((t) => t.tid === e.tid),
        `event on an unnamed thread: ${e.name}`,
      );
    }
    assert.equal(
      trace.traceEvents.filter((e) => (e.cat ?? '').startsWith('primed,')).length,
      primed.length,
    );
    for (const k of keys) assert.deepEqual(trace.otherData[k], report.speculative[k], k);

    // A screenshot, as a person would see it (a PNG the browser drew).
    const shot = join(rig.scratch, 'timeline.png');
    const s = await runProcess(
      'chromium',
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--window-size=1280,900',
        `--screenshot=${shot}`,
        pathToFileURL(page).href,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(s.code, 0, s.stderr);
    const png = await readFile(shot);
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.equal(png.readUInt32BE(16), 1280, 'width');
  });

  it('puts builds that overlap in separate builder lanes, and elements not built here in their own', async () => {
    let now = 1000;
    const t = new TimelineRecorder(1000, () => now);
    const at = (ms: number): void => {
      now = 1000 + ms;
    };
    at(0);
    t.event({ type: 'element', element: 'c.bst', state: 'cached' });
    at(10);
    t.event({ type: 'element', element: 'a.bst', state: 'building' });
    at(20);
    t.event({ type: 'element', element: 'b.bst', state: 'building' });
    at(30);
    t.event({ type: 'build-phase', element: 'a.bst', phase: 'build-commands' });
    at(100);
    t.event({ type: 'element', element: 'a.bst', state: 'built' });
    at(120);
    t.event({ type: 'element', element: 'd.bst', state: 'building' });
    at(150);
    t.event({ type: 'element', element: 'b.bst', state: 'built' });
    at(200);
    t.event({ type: 'element', element: 'd.bst', state: 'failed' });
    const el = (name: string, state: 'built' | 'cached' | 'failed') => ({
      name,
      state,
      strong_key: null,
      weak_key: null,
      started: null,
      finished: null,
      subactions: [],
      error: null,
      speculative: null,
    });
    const report: Report = {
      version: 1,
      ok: false,
      mode: 'none',
      speculative: emptyStats(),
      started: new Date(1000).toISOString(),
      finished: new Date(1210).toISOString(),
      elements: [
        el('c.bst', 'cached'),
        el('a.bst', 'built'),
        el('b.bst', 'built'),
        el('d.bst', 'failed'),
      ],
    };
    const tl = await t.finish(report);
    assert.equal(tl.duration, 210);
    assert.deepEqual(tl.lanes, ['builder 1', 'builder 2', 'not built here']);
    assert.deepEqual(
      tl.elements.map((e) => [e.name, e.lane, e.start, e.end]),
      [
        ['c.bst', 'not built here', 0, 0],
        ['a.bst', 'builder 1', 10, 100],
        ['b.bst', 'builder 2', 20, 150],
        ['d.bst', 'builder 1', 120, 200],
      ],
    );
    assert.deepEqual(tl.elements[1]?.phases, [{ phase: 'build-commands', start: 30, end: 100 }]);
  });
});
