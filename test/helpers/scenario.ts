// Small projects for the speculative-action scenarios: elements whose
// compiles, links and archives go through specbuild-cc and specbuild-exec to
// the per-build REAPI socket, and the per-element counts the scenario tests
// assert (prime outcomes and how the build answered each recorded action).
import assert from 'node:assert/strict';
import type { RigBuild } from './build-rig.js';
import { PROJECT_CONF } from './project-rig.js';

/** The environment and sandbox of an element whose actions are recorded. */
export const SOCKET_ENV = [
  'environment:',
  '  CC: specbuild-cc gcc',
  '  SPECBUILD_SERVER: unix:/run/reapi.sock',
  '  SPECBUILD_LINK: "1"',
  'sandbox:',
  '  remote-apis-socket:',
  '    path: /run/reapi.sock',
];

/** SOCKET_ENV with make's jobs one at a time, so actions are recorded in command order. */
export const SOCKET_SERIAL = [...SOCKET_ENV, 'variables:', '  notparallel: true'];

/**
 * A manual element built from the local `app` directory, its commands run
 * one at a time through specbuild-cc (recorded in command order), installing
 * `app` into %{bindir}.
 */
export function appElement(buildDepends: string[], build: string[]): string {
  return [
    'kind: manual',
    ...(buildDepends.length === 0 ? [] : ['build-depends:', ...buildDepends.map((d) => `- ${d}`)]),
    'sources:',
    '- kind: local',
    '  path: app',
    ...SOCKET_SERIAL,
    'config:',
    '  build-commands:',
    ...build.map((c) => `  - ${JSON.stringify(c)}`),
    '  install-commands:',
    '  - install -D app %{install-root}%{bindir}/app',
    '',
  ].join('\n');
}

/** specbuild-exec with the PATH its commands find sh, sed and ar on. */
export const EXEC = 'specbuild-exec --env PATH=/usr/bin:/bin';

/** `ar` as a recorded action: `archive('liba.a', ['a.o', 'b.o'])`. */
export function archive(out: string, objects: string[]): string {
  const inputs = objects.map((o) => `--input ${o}`).join(' ');
  return `${EXEC} ${inputs} --output ${out} -- ar rcsD ${out} ${objects.join(' ')}`;
}

/** An import element: the files under `path` at `target` (default /usr/include). */
export function importElement(path: string, target = '/usr/include'): string {
  return `kind: import\nsources:\n- kind: local\n  path: ${path}\nconfig:\n  target: ${target}\n`;
}

/** A manual element with recorded actions, its sources in the project directory `path`. */
export function manualElement(e: {
  path: string;
  buildDepends?: string[];
  depends?: string[];
  build: string[];
  install: string[];
}): string {
  const list = (key: string, xs: string[] | undefined): string[] =>
    xs === undefined || xs.length === 0 ? [] : [`${key}:`, ...xs.map((x) => `- ${x}`)];
  const cmds = (xs: string[]): string[] => xs.map((c) => `  - ${JSON.stringify(c)}`);
  return [
    'kind: manual',
    ...list('build-depends', e.buildDepends),
    ...list('depends', e.depends),
    'sources:',
    '- kind: local',
    `  path: ${e.path}`,
    ...SOCKET_ENV,
    'config:',
    '  build-commands:',
    ...cmds(e.build),
    '  install-commands:',
    ...cmds(e.install),
    '',
  ].join('\n');
}

/**
 * Counts of one element's build-action outcomes and prime outcomes. Deferrals
 * while inputs are not known yet depend on timing (a dependency may finish
 * before or after priming starts), so they are checked apart: every action
 * deferred was settled later (or is counted as deferred at build end).
 */
export function counts(r: RigBuild, element: string): Record<string, number> {
  const out: Record<string, number> = {};
  const deferred = new Set<string>();
  const settled = new Set<string>();
  for (const e of r.events) {
    if ((e.type === 'build-action' || e.type === 'prime') && e.element === element) {
      if (
        e.type === 'prime' &&
        e.outcome === 'deferred' &&
        !(e.reason ?? '').startsWith('still waiting')
      ) {
        deferred.add(e.action);
        continue;
      }
      if (e.type === 'prime' && ['instantiated', 'unchanged', 'unresolved'].includes(e.outcome))
        settled.add(e.action);
      const k = `${e.type}:${e.outcome}`;
      out[k] = (out[k] ?? 0) + 1;
    }
  }
  for (const a of deferred) assert.ok(settled.has(a), `${a} was deferred and never settled`);
  return out;
}

/** The reasons of an element's `unresolved` prime events, in order. */
export function unresolvedReasons(r: RigBuild, element: string): string[] {
  return r.events.flatMap((e) =>
    e.type === 'prime' && e.element === element && e.outcome === 'unresolved'
      ? [e.reason ?? '']
      : [],
  );
}

/** The speculative stats of an element's result. */
export function statsOf(r: RigBuild, element: string): { precision: unknown; recall: unknown } {
  const res = r.results.find((x) => x.name === element);
  assert.ok(res?.speculative !== undefined, `${element} has no speculative stats`);
  return { precision: res.speculative.precision, recall: res.speculative.recall };
}

/**
 * Scenario 1's project: dep.bst installs dep.h in /usr/include, app.bst
 * compiles main.c (which includes it) and util.c with `make` and links them.
 * `cflags` go on each compile (e.g. a relative -I for a worker without a
 * sandbox root).
 */
export function multifileApp(cflags = ''): Record<string, string> {
  const flags = cflags === '' ? '' : `${cflags} `;
  return {
    'project.conf': PROJECT_CONF,
    'elements/dep.bst': importElement('dep'),
    'elements/app.bst': [
      'kind: manual',
      'build-depends:',
      '- dep.bst',
      'sources:',
      '- kind: local',
      '  path: app',
      ...SOCKET_ENV,
      'config:',
      '  build-commands:',
      '  - make',
      '  install-commands:',
      '  - install -D app %{install-root}%{bindir}/app',
      '',
    ].join('\n'),
    'dep/dep.h': '#define DEP 1\n',
    'app/Makefile': `app: main.o util.o\n\t$(CC) -o app main.o util.o\n%.o: %.c\n\t$(CC) ${flags}-c $< -o $@\n`,
    'app/main.c': '#include <dep.h>\nint util(void);\nint main(void) { return DEP + util(); }\n',
    'app/util.c': 'int util(void) { return 0; }\n',
  };
}

/**
 * base (a header) ← liba (runtime-depends on base) ← app (build-depends on
 * liba only; compiles main.c, which includes both headers, and other.c, then
 * links them, serially): the lessons and explain tests' chain.
 */
export const CHAIN_PROJECT: Record<string, string> = {
  'project.conf': PROJECT_CONF,
  'elements/base.bst':
    'kind: import\nsources:\n- kind: local\n  path: base\nconfig:\n  target: /usr/include\n',
  'elements/liba.bst': [
    'kind: manual',
    'runtime-depends:',
    '- base.bst',
    'sources:',
    '- kind: local',
    '  path: liba',
    'config:',
    '  install-commands:',
    '  - install -D liba.h %{install-root}%{includedir}/liba.h',
    '',
  ].join('\n'),
  'elements/app.bst': appElement(
    ['liba.bst'],
    ['$CC -c main.c -o main.o', '$CC -c other.c -o other.o', '$CC -o app main.o other.o'],
  ),
  'base/base.h': '#define BASE 1\n',
  'liba/liba.h': '#define LIBA 2\n',
  'app/main.c':
    '#include <base.h>\n#include <liba.h>\nint other(void);\nint main(void) { return BASE + LIBA + other(); }\n',
  'app/other.c': 'int other(void) { return 0; }\n',
};
