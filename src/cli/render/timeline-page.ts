// The styles and the drawing script of the timeline page (timeline.ts puts
// them inline, with the data, so the page needs nothing else). The script is
// plain ES2017 for any browser: it reads the JSON in #timeline-data, fills
// the figures and the table, and draws the lanes as SVG. Text goes in
// through textContent only (element names are the project's, not ours).

export const TIMELINE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2430; }
h1 { font-size: 20px; margin: 0 0 4px; }
#summary { margin: 0 0 12px; color: #4b5563; }
#figures { display: flex; flex-wrap: wrap; gap: 8px 20px; margin: 0 0 12px; }
#figures div { display: flex; flex-direction: column; }
#figures dt { font-size: 12px; color: #6b7280; }
#figures dd { margin: 0; font-size: 18px; font-weight: 600; }
#chart { overflow-x: auto; border: 1px solid #e5e7eb; }
#chart svg { display: block; }
#chart text { font-size: 11px; fill: #1d2430; }
#chart .lane-label { fill: #4b5563; }
#chart .lane-bg { fill: #f9fafb; }
#chart .axis line { stroke: #d1d5db; }
#chart .axis text { fill: #6b7280; }
.element { stroke: #1d2430; stroke-width: 0.5; }
.state-built { fill: #9cb8e6; }
.state-cached { fill: #c9ced6; }
.state-failed { fill: #e58a8a; }
.state-skipped { fill: #ffffff; stroke-dasharray: 3 2; }
.phase { fill: #5f7fb8; opacity: 0.55; }
.outcome-hit-primed, .outcome-used { fill: #2e9e4f; }
.outcome-hit-cached { fill: #3b82c4; }
.outcome-miss { fill: #d9652b; }
.outcome-unused { fill: #e3b341; }
.outcome-failed { fill: #c62828; }
.outcome-cancelled, .outcome-redundant { fill: #9ca3af; }
#legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 8px 0 16px; }
#legend .swatch { display: inline-block; margin-right: 4px; vertical-align: -1px; }
#elements { border-collapse: collapse; }
#elements th, #elements td { padding: 2px 10px 2px 0; text-align: left; }
#elements td.num { text-align: right; font-variant-numeric: tabular-nums; }
`;

export const TIMELINE_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('timeline-data').textContent);
  var SVG = 'http://www.w3.org/2000/svg';
  function el(tag, attrs, parent, ns) {
    var e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(e, t) { e.textContent = t; return e; }
  function pct(x) { return x === null ? '-' : Math.round(x * 100) + '%'; }
  function secs(ms) { return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s'; }

  var counts = {};
  data.elements.forEach(function (e) { counts[e.state] = (counts[e.state] || 0) + 1; });
  text(document.getElementById('summary'),
    (data.ok ? 'build succeeded' : 'build failed') + ' in ' + secs(data.duration) +
    ', started ' + data.started + '; speculative-actions ' + data.mode + '; ' +
    ['built', 'cached', 'failed', 'skipped'].map(function (s) { return (counts[s] || 0) + ' ' + s; }).join(', '));

  var figures = document.getElementById('figures');
  [['primed', 'primed'], ['unchanged', 'unchanged'], ['hits_primed', 'primed hits'],
   ['hits_cached', 'cached hits'], ['misses', 'misses'], ['deferred', 'deferred'],
   ['unresolved', 'unresolved'], ['skipped', 'skipped'], ['precision', 'precision'],
   ['recall', 'recall']].forEach(function (f) {
    var v = data.figures[f[0]];
    var box = el('div', {}, figures);
    text(el('dt', {}, box), f[1]);
    text(el('dd', { 'data-figure': f[0], 'data-value': JSON.stringify(v) }, box),
      f[0] === 'precision' || f[0] === 'recall' ? pct(v) : String(v));
  });

  var legend = document.getElementById('legend');
  [['state-built', 'element built'], ['state-cached', 'element cached'], ['state-failed', 'element failed'],
   ['outcome-hit-primed', 'primed hit / primed action used'], ['outcome-hit-cached', 'cached hit'],
   ['outcome-miss', 'miss (executed)'], ['outcome-unused', 'primed, not used'],
   ['outcome-redundant', 'submitted, the build ran it first'],
   ['outcome-failed', 'priming failed']].forEach(function (l) {
    var li = el('li', {}, legend);
    var sw = el('svg', { 'class': 'swatch', width: 12, height: 12 }, li, true);
    el('rect', { 'class': l[0], x: 0, y: 0, width: 12, height: 12 }, sw, true);
    li.appendChild(document.createTextNode(l[1]));
  });

  var chart = document.getElementById('chart');
  var LEFT = 150, RIGHT = 24, TOP = 24, ROW = 26;
  var width = Math.max(900, chart.clientWidth || 900);
  var plot = width - LEFT - RIGHT;
  var x = function (ms) { return LEFT + (ms / data.duration) * plot; };
  var height = TOP + data.lanes.length * ROW + 8;
  var svg = el('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height }, chart, true);
  var row = {};
  data.lanes.forEach(function (lane, i) {
    row[lane] = TOP + i * ROW;
    if (i % 2 === 0) el('rect', { 'class': 'lane-bg', x: 0, y: row[lane], width: width, height: ROW }, svg, true);
    text(el('text', { 'class': 'lane-label', x: 6, y: row[lane] + ROW / 2 + 4 }, svg, true), lane);
  });
  var axis = el('g', { 'class': 'axis' }, svg, true);
  var step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600].map(function (s) { return s * 1000; })
    .filter(function (s) { return data.duration / s <= 12; })[0] || 1200000;
  for (var t = 0; t <= data.duration; t += step) {
    el('line', { x1: x(t), x2: x(t), y1: TOP - 4, y2: height - 8 }, axis, true);
    text(el('text', { x: x(t) + 2, y: TOP - 8 }, axis, true), secs(t));
  }
  function box(cls, start, end, y, h, title, attrs, minWidth) {
    var w = Math.max(minWidth, x(end) - x(start));
    var a = { 'class': cls, x: x(start), y: y, width: w, height: h };
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) a[k] = attrs[k];
    var r = el('rect', a, svg, true);
    text(el('title', {}, r, true), title);
    return r;
  }
  var drawn = 0;
  data.elements.forEach(function (e) {
    var y = row[e.lane];
    if (y === undefined) return;
    var s = e.speculative;
    var title = e.name + ': ' + e.state + (e.end > e.start ? ', ' + secs(e.end - e.start) : '') +
      (s ? '; primed ' + s.primed + ', primed hits ' + s.hits_primed + ', cached hits ' + s.hits_cached +
        ', misses ' + s.misses + ', precision ' + pct(s.precision) + ', recall ' + pct(s.recall) : '');
    box('element state-' + e.state, e.start, e.end, y + 3, ROW - 6, title, { 'data-element': e.name }, 6);
    drawn++;
    e.phases.forEach(function (p) {
      box('phase', p.start, p.end, y + ROW - 9, 4, e.name + ': ' + p.phase + ', ' + secs(p.end - p.start), {}, 1);
    });
    e.actions.forEach(function (a) {
      box('action outcome-' + a.outcome, a.start, a.end, y + 6, ROW - 16, e.name + ': ' + a.outcome + ' ' + a.action,
        { 'data-action': a.action, 'data-outcome': a.outcome }, 2);
    });
    var label = x(e.end) - x(e.start) > e.name.length * 6.5 + 8 || e.end === e.start;
    if (label) text(el('text', { x: (e.end === e.start ? x(e.end) + 8 : x(e.start) + 4), y: y + ROW / 2 + 4 }, svg, true), e.name);
  });
  data.primed.forEach(function (p) {
    var y = row[p.lane];
    if (y === undefined) return;
    box('primed outcome-' + p.outcome, p.start, p.end, y + 5, ROW - 10,
      p.element + ': primed action ' + p.adapted + ' (' + p.outcome + ', ' + secs(p.end - p.start) + ')',
      { 'data-primed': p.adapted, 'data-outcome': p.outcome }, 2);
    drawn++;
  });

  var tbody = document.querySelector('#elements tbody');
  data.elements.forEach(function (e) {
    var tr = el('tr', { 'data-element': e.name }, tbody);
    var s = e.speculative;
    [e.name, e.state, e.lane, secs(e.start), e.end > e.start ? secs(e.end - e.start) : '-',
     s ? s.primed : '-', s ? s.hits_primed : '-', s ? s.hits_cached : '-', s ? s.misses : '-']
      .forEach(function (v, i) { text(el('td', i >= 3 ? { 'class': 'num' } : {}, tr), String(v)); });
  });
  document.body.setAttribute('data-drawn', String(drawn));
})();
`;
