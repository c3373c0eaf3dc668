// Loading project.conf: built-in defaults composed beneath it (with its
// includes), its name and version checked, and the layers every element of
// the project composes onto (variables, environment, sandbox, per-kind
// overrides), all located for error messages.
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Diagnostics, SpecbuildError, type Result } from '../core/index.js';
import { checkComposed, compose } from './compose.js';
import { defaultMaxJobs, PROJECT_DEFAULTS } from './defaults.js';
import { FileLoader, projectPath, resolveIncludes } from './includes.js';
import { asMap, asString, checkKeys, type Diag } from './schema.js';
import { emptyMap, parseYaml, type MapNode, type YNode } from './yaml.js';

export const PROJECT_FILE = 'project.conf';

/** Keys of project.conf that specbuild uses. */
const USED_KEYS = [
  'name',
  'min-version',
  'element-path',
  'aliases',
  'variables',
  'environment',
  'environment-nocache',
  'sandbox',
  'elements',
  'split-rules',
  'artifacts',
];
/**
 * Keys a BuildStream project may carry that specbuild accepts and does not
 * act on (plugins: the kinds are built in; the rest concern features not
 * implemented here), so that such a project loads unchanged.
 */
const ACCEPTED_KEYS = [
  'plugins',
  'defaults',
  'shell',
  'fatal-warnings',
  'ref-storage',
  'mirrors',
  'source-caches',
  'remote-execution',
  'sources',
];

export interface Project {
  name: string;
  /** Absolute directory holding project.conf. */
  dir: string;
  /** Absolute directory holding the element files. */
  elementDir: string;
  /** The same, relative to `dir` ('.' for the project directory itself). */
  elementPath: string;
  minVersion: string;
  aliases: ReadonlyMap<string, string>;
  /** project.conf over the built-in defaults (variables, environment, sandbox, elements, ...). */
  config: MapNode;
  /**
   * `artifacts:` as written (after includes): the artifact servers the
   * project recommends. Parsed by the command line, which alone may check
   * remote addresses and certificate files (src/cli/remote-config.ts).
   */
  artifacts: YNode | undefined;
  /** Variables every element starts from (project-name and max-jobs included). */
  maxJobs: number;
  files: FileLoader;
}

/** The directory holding project.conf: `dir` or the nearest parent that has one. */
export async function findProjectDir(start: string): Promise<string | undefined> {
  let dir = resolve(start);
  for (;;) {
    const st = await stat(join(dir, PROJECT_FILE)).catch(() => undefined);
    if (st?.isFile() === true) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export interface LoadProjectOptions {
  /** max-jobs for every element (default: the number of cores, at most 8). */
  maxJobs?: number;
}

export async function loadProject(
  start: string,
  opts: LoadProjectOptions = {},
): Promise<Result<Project>> {
  const dir = await findProjectDir(start);
  if (dir === undefined) {
    return {
      ok: false,
      errors: [
        new SpecbuildError(
          'load/missing-file',
          `no ${PROJECT_FILE} in ${resolve(start)} or above`,
          {
            hint: 'run specbuild inside a project, or give its directory with -C DIR',
          },
        ),
      ],
    };
  }
  const d: Diag = new Diagnostics();
  const files = new FileLoader(dir);
  const raw = await files.load(PROJECT_FILE, d);
  const top = raw === undefined ? undefined : asMap(raw, PROJECT_FILE, d);
  if (top === undefined) return { ok: false, errors: d.errors };
  // name, min-version and element-path must be written in project.conf itself.
  const conf = await resolveIncludes(top, files, d, [PROJECT_FILE]);
  checkKeys(conf, [...USED_KEYS, ...ACCEPTED_KEYS], PROJECT_FILE, d);
  const name = asString(top.entries.get('name'), 'name', d);
  if (name === undefined) {
    d.add(
      new SpecbuildError('load/missing-key', `${PROJECT_FILE} has no "name"`, {
        location: top.at,
        hint: 'add name: my-project',
      }),
    );
  } else if (!NAME_RE.test(name)) {
    d.add(
      new SpecbuildError('load/invalid-value', `project name "${name}" is not a valid name`, {
        location: top.entries.get('name')?.at,
        hint: 'use letters, digits, "_" and "-", not starting with a digit',
      }),
    );
  }
  const minVersion = checkMinVersion(top, d);
  const builtin = d.take(parseYaml(PROJECT_DEFAULTS, '<built-in project defaults>'));
  const composed =
    builtin?.kind === 'map' ? compose(builtin, conf, d) : compose(emptyMap(conf.at), conf, d);
  // `elements:` overrides apply to kind defaults later: their directives wait until then.
  for (const [k, v] of composed.entries) if (k !== 'elements') checkComposed(v, d);
  const elementPath = asString(composed.entries.get('element-path'), 'element-path', d) ?? '.';
  const rel = projectPath(elementPath);
  let elementDir = dir;
  if (rel === undefined) {
    d.add(
      new SpecbuildError(
        'load/invalid-value',
        `element-path "${elementPath}" is not inside the project`,
        {
          location: composed.entries.get('element-path')?.at,
        },
      ),
    );
  } else {
    elementDir = join(dir, rel);
    const st = await stat(elementDir).catch(() => undefined);
    if (st?.isDirectory() !== true)
      d.add(
        new SpecbuildError(
          'load/missing-file',
          `element-path "${elementPath}" is not a directory`,
          {
            location: composed.entries.get('element-path')?.at,
          },
        ),
      );
  }
  const aliases = new Map<string, string>();
  const am = asMap(composed.entries.get('aliases'), 'aliases', d);
  for (const [k, v] of am?.entries ?? []) {
    const url = asString(v, `aliases.${k}`, d);
    if (url !== undefined) aliases.set(k, url);
  }
  for (const key of ['variables', 'environment', 'sandbox', 'elements', 'split-rules']) {
    asMap(composed.entries.get(key), key, d);
  }
  const maxJobs = opts.maxJobs ?? defaultMaxJobs();
  return d.result({
    name: name ?? '',
    dir,
    elementDir,
    elementPath: rel ?? '.',
    minVersion: minVersion ?? '2.0',
    aliases,
    config: composed,
    artifacts: composed.entries.get('artifacts'),
    maxJobs,
    files,
  });
}

/** BuildStream 2 projects say `min-version: 2.N`; specbuild reads the 2.x format. */
function checkMinVersion(top: MapNode, d: Diag): string | undefined {
  const node = top.entries.get('min-version');
  const v = asString(node, 'min-version', d);
  if (v === undefined) {
    d.add(
      new SpecbuildError('load/missing-key', `${PROJECT_FILE} has no "min-version"`, {
        location: top.at,
        hint: top.entries.has('format-version')
          ? 'this looks like a BuildStream 1 project (format-version); specbuild reads the BuildStream 2 format: min-version: 2.0'
          : 'add min-version: 2.0',
      }),
    );
    return undefined;
  }
  const m = /^(\d+)\.(\d+)$/.exec(v);
  if (m === null || m[1] !== '2') {
    d.add(
      new SpecbuildError('load/version', `min-version "${v}" is not a BuildStream 2 version`, {
        location: node?.at,
        hint: 'write min-version: 2.0 (or 2.N)',
      }),
    );
    return undefined;
  }
  return v;
}

/** The URL with an `alias:` prefix replaced by the alias's value (others unchanged). */
export function translateUrl(project: Project, url: string): string {
  const colon = url.indexOf(':');
  if (colon <= 0) return url;
  const alias = project.aliases.get(url.slice(0, colon));
  return alias === undefined ? url : alias + url.slice(colon + 1);
}
