// The second loading stage: one element file into a locally valid element.
// Its layers are composed (project < kind defaults < project.conf `elements:`
// < element), its variables resolved, and its environment, commands, sandbox
// and sources expanded and checked. Dependencies are only named here; the
// graph stage resolves them.
import { arch } from 'node:os';
import { join } from 'node:path';
import { SpecbuildError, type Location } from '../core/index.js';
import { checkComposed, compose } from './compose.js';
import { BUILD_KINDS, KIND_DEFAULTS } from './defaults.js';
import { resolveIncludes } from './includes.js';
import { parseElementName, type ElementName } from './names.js';
import type { Project } from './project.js';
import {
  asBool,
  asMap,
  asScalar,
  asSeq,
  asString,
  asStringList,
  checkKeys,
  didYouMean,
  type Diag,
} from './schema.js';
import { SOURCE_KEYS, type SourceDecl, type SourceKind } from './source-decl.js';
import { Variables, type VariableDef } from './variables.js';
import { emptyMap, toPlain, type MapNode, type Plain, type YNode } from './yaml.js';

export interface DependencyDecl {
  name: ElementName;
  /** Needed to build this element (staged in its sandbox). */
  build: boolean;
  /** Needed to use this element (staged wherever it is). */
  runtime: boolean;
  /**
   * `config: digest-environment: VAR` (BuildStream's): the build gets VAR =
   * the digest (HASH/SIZE) of this dependency staged with its runtime
   * closure, e.g. for the chrootRootDigest of recorded actions.
   */
  digestEnvironment?: string;
  at: Location;
}

export interface Commands {
  configure: string[];
  build: string[];
  install: string[];
  strip: string[];
}

export interface SandboxDecl {
  buildOs: string;
  buildArch: string;
  /** Where the element's build finds a REAPI endpoint (a unix socket path inside its sandbox). */
  remoteApisSocket?: string;
}

export type Kind = 'import' | 'stack' | 'manual' | 'make' | 'autotools' | 'cmake';
export const KINDS: readonly Kind[] = ['import', 'stack', 'manual', 'make', 'autotools', 'cmake'];

export interface ElementDecl {
  name: ElementName;
  /** The element file, project-relative. */
  file: string;
  kind: Kind;
  description: string;
  deps: DependencyDecl[];
  sources: SourceDecl[];
  variables: Variables;
  /** The element's whole environment, expanded, sorted by name. */
  environment: [string, string][];
  /** Names left out of the cache key (sorted). */
  nocache: string[];
  /** For kinds that run commands. */
  commands?: Commands;
  /** Where commands run, relative to the build root (command-subdir), '' for the root. */
  commandSubdir: string;
  /** For import: which part of the sources goes where in the artifact. */
  importConfig?: { source: string; target: string };
  public: Plain;
  sandbox: SandboxDecl;
  buildRoot: string;
  installRoot: string;
  at: Location;
}

const ELEMENT_KEYS = [
  'kind',
  'description',
  'depends',
  'build-depends',
  'runtime-depends',
  'sources',
  'variables',
  'environment',
  'environment-nocache',
  'config',
  'public',
  'sandbox',
];
const PROTECTED = ['project-name', 'element-name', 'max-jobs'];
/** What a ref looks like, for the kinds that have one. */
const REF_FORMATS: Partial<Record<SourceKind, { re: RegExp; what: string }>> = {
  tar: { re: /^[0-9a-f]{64}$/, what: 'a SHA-256 (64 lowercase hex digits)' },
  git: { re: /^[0-9a-f]{40}$/, what: 'a commit (40 lowercase hex digits)' },
};
const COMMAND_KEYS = ['configure-commands', 'build-commands', 'install-commands', 'strip-commands'];

function canonicalArch(a: string): string {
  const map: Record<string, string> = {
    x86_64: 'x86-64',
    amd64: 'x86-64',
    x64: 'x86-64',
    arm64: 'aarch64',
    i386: 'x86-32',
    i686: 'x86-32',
  };
  return map[a] ?? a;
}

export function hostArch(): string {
  return canonicalArch(arch());
}

/** Parses a dependency list entry (a name, or {filename, type}). */
function parseDeps(
  list: YNode | undefined,
  key: 'depends' | 'build-depends' | 'runtime-depends',
  d: Diag,
): DependencyDecl[] {
  const seq = asSeq(list, key, d);
  const out: DependencyDecl[] = [];
  for (const item of seq?.items ?? []) {
    let names: { text: string; at: Location }[] = [];
    let digestEnvironment: string | undefined;
    let type = key === 'build-depends' ? 'build' : key === 'runtime-depends' ? 'runtime' : 'all';
    if (item.kind === 'scalar' && item.value !== null) {
      names = [{ text: item.value, at: item.at }];
    } else if (item.kind === 'map') {
      checkKeys(
        item,
        key === 'depends'
          ? ['filename', 'type', 'strict', 'config']
          : ['filename', 'strict', 'config'],
        `a ${key} entry`,
        d,
      );
      const f = item.entries.get('filename');
      if (f === undefined) {
        d.add(
          new SpecbuildError('load/missing-key', `a ${key} entry has no "filename"`, {
            location: item.at,
          }),
        );
      } else if (f.kind === 'seq') {
        for (const x of f.items) {
          const s = asScalar(x, 'filename', d);
          if (s?.value != null) names.push({ text: s.value, at: s.at });
        }
      } else {
        const s = asScalar(f, 'filename', d);
        if (s?.value != null) names.push({ text: s.value, at: s.at });
      }
      const t = asScalar(item.entries.get('type'), 'type', d);
      if (t?.value != null) {
        if (!['build', 'runtime', 'all'].includes(t.value))
          d.add(
            new SpecbuildError(
              'load/invalid-value',
              `dependency type "${t.value}" is not build, runtime or all`,
              {
                location: t.at,
              },
            ),
          );
        else type = t.value;
      }
      const config = asMap(item.entries.get('config'), 'config', d);
      if (config !== undefined) {
        checkKeys(config, ['digest-environment'], `the config of a ${key} entry`, d);
        const v = asScalar(config.entries.get('digest-environment'), 'digest-environment', d);
        if (v?.value != null) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.value))
            d.add(
              new SpecbuildError(
                'load/invalid-value',
                `digest-environment "${v.value}" is not an environment variable name`,
                { location: v.at, hint: 'letters, digits and _, e.g. SYSROOT_DIGEST' },
              ),
            );
          else if (type === 'runtime')
            d.add(
              new SpecbuildError(
                'load/invalid-value',
                'digest-environment is only for build dependencies',
                { location: v.at, hint: 'list the dependency under build-depends' },
              ),
            );
          else digestEnvironment = v.value;
        }
      }
      if (asBool(item.entries.get('strict'), 'strict', d) === false)
        d.add(
          new SpecbuildError('load/invalid-value', 'strict: false is not supported', {
            location: item.entries.get('strict')?.at ?? item.at,
          }),
        );
    } else {
      d.add(
        new SpecbuildError('load/wrong-type', `a ${key} entry must be a name or a mapping`, {
          location: item.at,
        }),
      );
    }
    for (const n of names) {
      const name = parseElementName(n.text);
      if (typeof name !== 'string') {
        d.add(new SpecbuildError('load/bad-element-name', name.error, { location: n.at }));
        continue;
      }
      out.push({
        name,
        build: type !== 'runtime',
        runtime: type !== 'build',
        at: n.at,
        ...(digestEnvironment === undefined ? {} : { digestEnvironment }),
      });
    }
  }
  return out;
}

/** Merges repeated dependencies (types or-ed), keeping first-mention order. */
function mergeDeps(all: DependencyDecl[]): DependencyDecl[] {
  const by = new Map<string, DependencyDecl>();
  for (const dep of all) {
    const seen = by.get(dep.name);
    if (seen === undefined) by.set(dep.name, { ...dep });
    else {
      seen.build ||= dep.build;
      seen.runtime ||= dep.runtime;
      seen.digestEnvironment ??= dep.digestEnvironment;
    }
  }
  return [...by.values()];
}

/** A mapping of the composed configuration (empty when absent). */
function section(m: MapNode, key: string, d: Diag): MapNode {
  return asMap(m.entries.get(key), key, d) ?? emptyMap(m.at);
}

/**
 * An element file, loaded: its declaration when it is valid, and the
 * dependencies it names either way (so that loading goes on to them and a
 * run reports the problems of every file at once).
 */
export interface LoadedElement {
  decl: ElementDecl | undefined;
  deps: DependencyDecl[];
}

export async function loadElement(
  project: Project,
  name: ElementName,
  d: Diag,
  /** Where another element names this one (a missing file is reported there). */
  referrer?: { at: Location; by: ElementName },
): Promise<LoadedElement> {
  const none: LoadedElement = { decl: undefined, deps: [] };
  const rel = join(project.elementPath, name);
  const node = await project.files.load(
    rel,
    d,
    referrer === undefined
      ? undefined
      : {
          at: referrer.at,
          what: `${name}, a dependency of ${referrer.by}`,
          hint: `check the name, or create ${join(project.elementPath, name)}`,
        },
  );
  if (node === undefined) return none;
  const raw = asMap(node, rel, d);
  if (raw === undefined) return none;
  const before = d.errors.length;
  const el = await resolveIncludes(raw, project.files, d, [rel]);
  checkKeys(el, ELEMENT_KEYS, rel, d);
  const deps = mergeDeps([
    ...parseDeps(el.entries.get('depends'), 'depends', d),
    ...parseDeps(el.entries.get('build-depends'), 'build-depends', d),
    ...parseDeps(el.entries.get('runtime-depends'), 'runtime-depends', d),
  ]);
  const invalid: LoadedElement = { decl: undefined, deps };

  const kindNode = asScalar(el.entries.get('kind'), 'kind', d);
  const kindText = kindNode?.value ?? undefined;
  if (kindText === undefined) {
    d.add(
      new SpecbuildError('load/missing-key', `${rel} has no "kind"`, {
        location: el.at,
        hint: `kinds: ${KINDS.join(', ')}`,
      }),
    );
    return invalid;
  }
  if (!(KINDS as readonly string[]).includes(kindText)) {
    const near = didYouMean(kindText, KINDS);
    d.add(
      new SpecbuildError('load/invalid-value', `unknown kind "${kindText}"`, {
        location: kindNode?.at,
        hint: near === undefined ? `kinds: ${KINDS.join(', ')}` : `did you mean "${near}"?`,
      }),
    );
    return invalid;
  }
  const kind = kindText as Kind;

  // Layers, lowest first.
  const defaults = project.files.builtin(
    `<built-in ${kind} defaults>`,
    KIND_DEFAULTS[kind] ?? '',
    d,
  );
  const kindLayer = defaults?.kind === 'map' ? defaults : emptyMap(el.at);
  const override = asMap(
    section(project.config, 'elements', d).entries.get(kind),
    `elements.${kind}`,
    d,
  );
  const pluginLayer = override === undefined ? kindLayer : compose(kindLayer, override, d);
  const layered = (key: string, withProject: boolean): MapNode => {
    let m = withProject ? section(project.config, key, d) : emptyMap(el.at);
    m = compose(m, section(pluginLayer, key, d), d);
    m = compose(m, section(el, key, d), d);
    checkComposed(m, d);
    return m;
  };

  // Variables, with the ones the loader provides.
  const varsNode = layered('variables', true);
  const defs = new Map<string, VariableDef>();
  for (const [k, v] of varsNode.entries) {
    if (PROTECTED.includes(k)) {
      d.add(
        new SpecbuildError(
          'load/protected-variable',
          `"${k}" is set by specbuild and cannot be redefined`,
          {
            location: varsNode.keyAt.get(k) ?? varsNode.at,
          },
        ),
      );
      continue;
    }
    const s = asScalar(v, `variables.${k}`, d);
    defs.set(k, { value: s?.value ?? '', at: v.at });
  }
  const notparallel = defs.get('notparallel');
  const serial = notparallel !== undefined && ['True', 'true', '1'].includes(notparallel.value);
  const synthetic = { file: rel, line: 1, col: 1 };
  defs.set('project-name', { value: project.name, at: synthetic });
  defs.set('element-name', { value: name, at: synthetic });
  defs.set('max-jobs', { value: String(serial ? 1 : project.maxJobs), at: synthetic });
  const variables = Variables.resolve(defs, d);
  const expand = (n: YNode | undefined, what: string): string | undefined => {
    const s = asScalar(n, what, d);
    if (s?.value == null) return undefined;
    return variables.expand(s.value, s.at, d);
  };

  // Environment (expanded) and the names kept out of the cache key (a union of every layer).
  const envNode = layered('environment', true);
  const environment: [string, string][] = [];
  for (const [k, v] of envNode.entries) environment.push([k, expand(v, `environment.${k}`) ?? '']);
  environment.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const nocache = new Set<string>();
  for (const layer of [project.config, pluginLayer, el]) {
    for (const n of asStringList(
      layer.entries.get('environment-nocache'),
      'environment-nocache',
      d,
    ) ?? [])
      nocache.add(n);
  }

  // Configuration of the kind.
  const config = layered('config', false);
  let commands: Commands | undefined;
  let importConfig: ElementDecl['importConfig'];
  if (BUILD_KINDS.includes(kind)) {
    checkKeys(config, COMMAND_KEYS, `${kind} config`, d);
    const list = (key: string): string[] => {
      const seq = asSeq(config.entries.get(key), key, d);
      const out: string[] = [];
      for (const [i, item] of (seq?.items ?? []).entries()) {
        const c = expand(item, `${key}[${i}]`);
        if (c !== undefined && c !== '') out.push(c);
      }
      return out;
    };
    commands = {
      configure: list('configure-commands'),
      build: list('build-commands'),
      install: list('install-commands'),
      strip: list('strip-commands'),
    };
  } else if (kind === 'import') {
    checkKeys(config, ['source', 'target'], 'import config', d);
    importConfig = {
      source: expand(config.entries.get('source'), 'source') ?? '/',
      target: expand(config.entries.get('target'), 'target') ?? '/',
    };
  } else {
    checkKeys(config, [], 'stack config', d);
  }

  // Sandbox.
  const sb = layered('sandbox', true);
  checkKeys(sb, ['build-os', 'build-arch', 'remote-apis-socket'], 'sandbox', d);
  const sandbox: SandboxDecl = {
    buildOs: (expand(sb.entries.get('build-os'), 'build-os') ?? 'linux').toLowerCase(),
    buildArch: canonicalArch(expand(sb.entries.get('build-arch'), 'build-arch') ?? hostArch()),
  };
  const ras = asMap(sb.entries.get('remote-apis-socket'), 'remote-apis-socket', d);
  if (ras !== undefined) {
    checkKeys(ras, ['path'], 'remote-apis-socket', d);
    const p = expand(ras.entries.get('path'), 'remote-apis-socket.path');
    if (p === undefined || !p.startsWith('/'))
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          'remote-apis-socket.path must be an absolute path in the sandbox',
          {
            location: ras.entries.get('path')?.at ?? ras.at,
            hint: 'e.g. path: /run/reapi.sock',
          },
        ),
      );
    else sandbox.remoteApisSocket = p;
  }

  // Sources.
  const sources: SourceDecl[] = [];
  const srcSeq = asSeq(el.entries.get('sources'), 'sources', d);
  for (const [i, s] of (srcSeq?.items ?? []).entries()) {
    const m = asMap(s, `sources[${i}]`, d);
    if (m === undefined) continue;
    const sk = asString(m.entries.get('kind'), `sources[${i}].kind`, d);
    if (sk === undefined || !(sk in SOURCE_KEYS)) {
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          sk === undefined ? `sources[${i}] has no kind` : `unknown source kind "${sk}"`,
          {
            location: m.entries.get('kind')?.at ?? m.at,
            hint: `source kinds: ${Object.keys(SOURCE_KEYS).join(', ')}`,
          },
        ),
      );
      continue;
    }
    const skind = sk as SourceKind;
    checkKeys(m, ['kind', 'directory', ...SOURCE_KEYS[skind]], `a ${skind} source`, d);
    const cfg: Record<string, string> = {};
    const at: Record<string, Location> = {};
    for (const key of SOURCE_KEYS[skind]) {
      const v = expand(m.entries.get(key), `${skind}.${key}`);
      if (v !== undefined) {
        cfg[key] = v;
        at[key] = m.entries.get(key)?.at ?? m.at;
      }
    }
    const ref = cfg.ref;
    const refFormat = REF_FORMATS[skind];
    if (ref !== undefined && refFormat !== undefined && !refFormat.re.test(ref))
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          `${skind} source ref "${ref}" is not ${refFormat.what}`,
          {
            location: at.ref,
            hint: 'fix it, or remove it and run: specbuild source track',
          },
        ),
      );
    sources.push({
      kind: skind,
      directory: expand(m.entries.get('directory'), 'directory') ?? '',
      config: cfg,
      at: m.at,
      keyAt: at,
      index: i,
    });
  }
  if (kind === 'import' && sources.length === 0)
    d.add(
      new SpecbuildError('load/invalid-value', 'an import element needs at least one source', {
        location: el.at,
      }),
    );
  if (kind === 'stack') {
    if (sources.length > 0)
      d.add(
        new SpecbuildError('load/invalid-value', 'a stack element cannot have sources', {
          location: srcSeq?.at ?? el.at,
        }),
      );
    for (const dep of deps)
      if (!(dep.build && dep.runtime))
        d.add(
          new SpecbuildError(
            'load/invalid-value',
            `stack dependencies must be both build and runtime (${dep.name} is not)`,
            {
              location: dep.at,
            },
          ),
        );
  }

  const commandSubdir = variables.get('command-subdir') ?? '';
  const buildRoot = variables.get('build-root') ?? '';
  const installRoot = variables.get('install-root') ?? '';
  for (const [v, value] of [
    ['build-root', buildRoot],
    ['install-root', installRoot],
  ] as const) {
    if (!value.startsWith('/') || value === '/')
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          `%{${v}} "${value}" must be an absolute directory other than /`,
          {
            location: varsNode.entries.get(v)?.at ?? el.at,
          },
        ),
      );
  }
  if (commandSubdir.startsWith('/') || commandSubdir.split('/').includes('..'))
    d.add(
      new SpecbuildError(
        'load/invalid-value',
        `command-subdir "${commandSubdir}" must be relative to the build root`,
        {
          location: varsNode.entries.get('command-subdir')?.at ?? el.at,
        },
      ),
    );
  const pub = layered('public', false);
  if (d.errors.length > before) return invalid;
  const decl: ElementDecl = {
    name,
    file: rel,
    kind,
    description: asString(el.entries.get('description'), 'description', d) ?? '',
    deps,
    sources,
    variables,
    environment,
    nocache: [...nocache].sort(),
    commands,
    commandSubdir,
    importConfig,
    public: toPlain(pub),
    sandbox,
    buildRoot,
    installRoot,
    at: el.at,
  };
  return { decl, deps };
}
