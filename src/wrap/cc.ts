// specbuild-cc's work, done in the daemon: recognise a compile (or, with
// SPECBUILD_LINK, a link), discover its inputs with the compiler's own -M,
// build an action whose digest depends only on the command and its files,
// and answer it from the action cache or by remote execution.
import { spawn } from 'node:child_process';
import { access, constants as fsConstants, readFile, realpath, stat } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { SpecbuildError, type EventSink } from '../core/index.js';
import type { Uploads } from '../cas/index.js';
import {
  ActionResultSchema,
  buildTree,
  digestKey,
  hostPlatform,
  parseDigest,
  toPb,
  type ActionResult,
  type Digest,
  type TreeEntry,
} from '../reapi/index.js';
import type { RemoteEndpoint } from '../remote/index.js';
import { parseCompilerArgs } from './cc-args.js';
import { depsOf } from './make-deps.js';
import { platformFromEnv } from './env.js';
import { wrapperTarget } from './env.js';
import { addAction, runAction } from './remote-action.js';
import { PhaseClock, type WrapEvent, type WrapPhase } from './outcome.js';
import type { StatCache } from './stat-cache.js';
import { directKey, type DirectCache, type DirectFile } from './direct-cache.js';

/**
 * Environment variables a compile or link action carries when set (nothing
 * else reaches it): the locale (diagnostics), SOURCE_DATE_EPOCH (__DATE__),
 * and the variables that extend the compiler's include and library search,
 * without which the action would not compile what the command compiles.
 */
export const ENV_ALLOW_LIST = [
  'CPATH',
  'CPLUS_INCLUDE_PATH',
  'C_INCLUDE_PATH',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'LIBRARY_PATH',
  'OBJC_INCLUDE_PATH',
  'SOURCE_DATE_EPOCH',
];

/**
 * Variables that make the compiler read or write files the wrapper cannot
 * see (another driver's programs, a dependency file of its own): a command
 * run with one of them set runs locally.
 */
export const ENV_LOCAL_ONLY = [
  'COMPILER_PATH',
  'DEPENDENCIES_OUTPUT',
  'GCC_EXEC_PREFIX',
  'SUNPRO_DEPENDENCIES',
];
/** Where SPECBUILD_PROJECT_ROOT's files sit in an action's input root. */
export const PROJECT_DIR = 'project';
/**
 * Set in every compile and link action to the digest of the compiler binary
 * that runs it: results of another compiler (or version) under the same name
 * can never be mixed up.
 */
export const COMPILER_DIGEST_ENV = 'SPECBUILD_COMPILER_DIGEST';
/** PATH inside actions: fixed, never the user's. */
export const ACTION_PATH = '/usr/local/bin:/usr/bin:/bin';

export interface CcConfig {
  server: string | undefined;
  instance: string;
  cacheOnly: boolean;
  link: boolean;
  projectRoot: string | undefined;
  depsExclude: string[];
  logFile: string | undefined;
  verbose: boolean;
  /** SPECBUILD_DIRECT: skip the dependency scan while the last one's files are unchanged. */
  direct: boolean;
  /**
   * SPECBUILD_REMOTE_PLATFORM (and SPECBUILD_/RECC_REMOTE_PLATFORM_<NAME>): the action's platform properties, instead of
   * this host's (for a cluster whose workers advertise their own); a string
   * saying what is wrong when the variable does not parse.
   */
  platform: [string, string][] | string | undefined;
}

export function ccConfig(env: ReadonlyMap<string, string>): CcConfig {
  const flag = (k: string): boolean => {
    const v = env.get(k);
    return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  };
  const root = env.get('SPECBUILD_PROJECT_ROOT');
  return {
    ...wrapperTarget((k) => env.get(k)),
    cacheOnly: flag('SPECBUILD_CACHE_ONLY'),
    link: flag('SPECBUILD_LINK'),
    projectRoot: root === undefined || root === '' ? undefined : resolve(root),
    depsExclude: (env.get('SPECBUILD_DEPS_EXCLUDE_PATHS') ?? '')
      .split(/[,:]/)
      .filter((p) => p !== ''),
    verbose: flag('SPECBUILD_VERBOSE'),
    direct: flag('SPECBUILD_DIRECT'),
    platform: platformFromEnv(env),
  };
}

export interface CcRequest {
  /** The compiler as given, then its arguments. */
  argv: string[];
  cwd: string;
  env: ReadonlyMap<string, string>;
}

export type CcReply =
  | { kind: 'local'; reason: string }
  | { kind: 'fallback'; error: SpecbuildError }
  | {
      kind: 'done';
      outcome: 'hit' | 'miss';
      action: Digest;
      exitCode: number;
      stdout: Uint8Array;
      stderr: Uint8Array;
      /** Milliseconds per phase, for SPECBUILD_VERBOSE. */
      phases: Partial<Record<WrapPhase, number>>;
    };

export interface CcContext {
  statCache: StatCache;
  /** Direct mode's memory (kept by the daemon). */
  directCache?: DirectCache;
  /** A connected endpoint for a target and instance (kept warm by the daemon). */
  endpoint(target: string, instance: string): Promise<RemoteEndpoint>;
  /** Where each run's phase events go. */
  events?: EventSink<WrapEvent>;
}

interface Captured {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
}

function run(argv: string[], cwd: string, env: ReadonlyMap<string, string>): Promise<Captured> {
  return new Promise((resolvePromise, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd ?? '', args, {
      cwd,
      env: Object.fromEntries(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('close', (code) => {
      resolvePromise({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
  });
}

const resolved = new Map<string, string>();

/** The compiler's path through a PATH (looked up once per daemon and PATH), or undefined. */
async function lookupCompiler(
  name: string,
  path: string,
  cwd: string,
): Promise<string | undefined> {
  if (name.includes('/')) return resolve(cwd, name);
  // Relative PATH entries resolve against the working directory.
  const key = path.split(delimiter).every((d) => d.startsWith('/'))
    ? `${path}\0${name}`
    : `${path}\0${name}\0${cwd}`;
  const known = resolved.get(key);
  if (known !== undefined) return known;
  for (const dir of path.split(delimiter)) {
    const candidate = resolve(cwd, dir === '' ? '.' : dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      resolved.set(key, candidate);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The compiler a command runs, as the action records it. */
export interface ResolvedCompiler {
  /** Its real path (symlinks resolved), here and on the action's PATH alike. */
  real: string;
  /** The content of that binary: part of the action, so another compiler never shares it. */
  digest: Digest;
}

/**
 * Resolves the compiler through the caller's PATH and checks that the
 * action's fixed PATH reaches the same binary (else the executor would run a
 * different compiler, and the command must run here).
 */
export async function resolveCompiler(
  name: string,
  env: ReadonlyMap<string, string>,
  cwd: string,
  stats: StatCache,
): Promise<ResolvedCompiler | { local: string }> {
  const here = await lookupCompiler(name, env.get('PATH') ?? '/usr/bin:/bin', cwd);
  if (here === undefined) return { local: `${name} not found on PATH` };
  const real = await realpath(here).catch(() => undefined);
  if (real === undefined) return { local: `${here} cannot be resolved` };
  if (!name.includes('/')) {
    const there = await lookupCompiler(name, ACTION_PATH, '/');
    const thereReal =
      there === undefined ? undefined : await realpath(there).catch(() => undefined);
    if (thereReal !== real)
      return {
        local: `${name} is ${real} here but ${thereReal ?? 'absent'} on the action PATH (${ACTION_PATH})`,
      };
  }
  return { real, digest: (await stats.digest(real)).digest };
}

/** Where a host file goes in the input root, and how arguments name it. */
class Layout {
  constructor(
    private readonly cwd: string,
    private readonly root: string | undefined,
  ) {}

  /**
   * Path of a host file inside the input root. Under the project root, files
   * go below PROJECT_DIR (the same for every checkout, and clear of top-level
   * names such as lib/ or usr/); elsewhere, at their absolute paths.
   */
  inRoot(abs: string): string {
    if (this.root !== undefined && (abs === this.root || abs.startsWith(`${this.root}/`))) {
      const rel = relative(this.root, abs);
      return rel === '' ? PROJECT_DIR : `${PROJECT_DIR}/${rel}`;
    }
    return abs.slice(1);
  }

  get workingDirectory(): string {
    return this.inRoot(this.cwd);
  }

  /** Rewrites an absolute path under the project root to one relative to the cwd. */
  arg(a: string): string {
    if (this.root === undefined) return a;
    const fix = (p: string): string =>
      isAbsolute(p) && (p === this.root || p.startsWith(`${this.root ?? ''}/`))
        ? relative(this.cwd, p) || '.'
        : p;
    const m = /^(-I|-iquote|-isystem|-idirafter|-include|-imacros|-o|-MF|-L)(\/.*)$/.exec(a);
    if (m?.[1] !== undefined && m[2] !== undefined) return m[1] + fix(m[2]);
    return fix(a);
  }
}

export interface BuiltAction {
  action: Digest;
  uploads: Uploads;
  outputs: string[];
  /** How the inputs were found: a -M scan, direct mode's memory, or a link trace. */
  deps: 'scan' | 'direct' | 'trace';
}

/** Builds the compile action for a recognised command; undefined means "run it locally". */
export async function buildCompileAction(
  req: CcRequest,
  cfg: CcConfig,
  stats: StatCache,
  api: { low: string; high: string },
  /** Direct mode's memory; used when cfg.direct (SPECBUILD_DIRECT) is on. */
  direct?: DirectCache,
): Promise<BuiltAction | { local: string }> {
  const [compiler, ...args] = req.argv;
  if (compiler === undefined) return { local: 'no compiler given' };
  const localOnly = ENV_LOCAL_ONLY.find((k) => (req.env.get(k) ?? '') !== '');
  if (localOnly !== undefined) return { local: `${localOnly} is set` };
  const tool = await resolveCompiler(compiler, req.env, req.cwd, stats);
  if ('local' in tool) return tool;
  const parsed = parseCompilerArgs(args, { cwd: req.cwd });
  if (parsed.kind === 'local') return { local: parsed.reason };
  if (parsed.kind === 'link' && !cfg.link)
    return { local: 'link commands are cached only with SPECBUILD_LINK' };
  const layout = new Layout(
    req.cwd,
    cfg.projectRoot !== undefined &&
      (req.cwd === cfg.projectRoot || req.cwd.startsWith(`${cfg.projectRoot}/`))
      ? cfg.projectRoot
      : undefined,
  );
  // Outputs go inside the working directory, into directories that exist (as
  // gcc would fail without them, so must the wrapped command: it runs here).
  const outRel: string[] = [];
  for (const o of parsed.kind === 'compile' ? parsed.outputs : [parsed.output]) {
    const abs = resolve(req.cwd, o);
    const rel = relative(req.cwd, abs);
    if (rel === '..' || rel.startsWith('../') || isAbsolute(rel))
      return { local: `output ${o} is outside the working directory` };
    const parent = await stat(dirname(abs)).catch(() => undefined);
    if (parent?.isDirectory() !== true)
      return { local: `the directory of output ${o} does not exist` };
    outRel.push(rel);
  }

  // Every input with its digest, in discovery order, excluded paths left out.
  let inputs: DirectFile[] | undefined;
  let deps: BuiltAction['deps'];
  const digestAll = async (files: string[]): Promise<DirectFile[]> => {
    const abs = [...new Set(files.map((f) => resolve(req.cwd, f))).values()].filter(
      (a) => !cfg.depsExclude.some((p) => a.startsWith(p)),
    );
    const ds = await Promise.all(abs.map((a) => stats.digest(a)));
    return abs.map((path, i) => {
      const d = ds[i];
      if (d === undefined) throw new Error('bug: digest missing');
      return { path, hash: d.digest.hash, size: d.digest.size, executable: d.executable };
    });
  };
  if (parsed.kind === 'compile') {
    deps = 'scan';
    const key =
      direct !== undefined && cfg.direct
        ? directKey([
            digestKey(tool.digest),
            req.argv,
            req.cwd,
            [...ENV_ALLOW_LIST, 'PATH'].map((k) => req.env.get(k) ?? null),
            cfg.projectRoot ?? null,
            cfg.depsExclude,
          ])
        : undefined;
    const remembered = key === undefined ? undefined : direct?.get(key);
    if (remembered !== undefined) {
      const now = await Promise.all(
        remembered.map((f) => stats.digest(f.path).catch(() => undefined)),
      );
      const same = remembered.every((f, i) => {
        const n = now[i];
        return (
          n !== undefined &&
          n.digest.hash === f.hash &&
          n.digest.size === f.size &&
          n.executable === f.executable
        );
      });
      if (same) {
        inputs = [...remembered];
        deps = 'direct';
      }
    }
    if (inputs === undefined) {
      const scan = await run([compiler, ...parsed.depsArgs], req.cwd, req.env);
      if (scan.code !== 0)
        return { local: 'dependency discovery failed (the compiler will say why)' };
      // The source itself, always: -M lists nothing for assembler or preprocessed input.
      inputs = await digestAll([parsed.source, ...depsOf(scan.stdout.toString('utf8'))]);
      if (key !== undefined) direct?.set(key, inputs);
    }
  } else {
    const trace = await run(
      [compiler, ...parsed.expandedArgs, '-Wl,--trace', '-o', '/dev/null'],
      req.cwd,
      req.env,
    );
    if (trace.code !== 0) return { local: 'the linker trace failed' };
    inputs = await digestAll([...parsed.inputs, ...linkerInputs(trace.stdout.toString('utf8'))]);
    deps = 'trace';
  }
  const entries: TreeEntry[] = [{ kind: 'dir', path: layout.workingDirectory }];
  const uploads: BuiltAction['uploads'] = new Map();
  for (const f of inputs) {
    const digest = parseDigest(f.hash, f.size);
    uploads.set(digestKey(digest), { digest, path: f.path });
    entries.push({
      kind: 'file',
      path: layout.inRoot(f.path),
      digest,
      executable: f.executable,
    });
  }
  const tree = buildTree(entries);
  for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
  const env: [string, string][] = [
    ...ENV_ALLOW_LIST.flatMap((k): [string, string][] => {
      const v = req.env.get(k);
      return v === undefined ? [] : [[k, v]];
    }),
    ['PATH', ACTION_PATH],
    // Ignored by the compiler; ties the action to the exact compiler binary.
    [COMPILER_DIGEST_ENV, digestKey(tool.digest)],
  ];
  const outputs = [...new Set(outRel)].sort();
  const action = addAction(
    {
      argv: [compiler, ...parsed.expandedArgs.map((a) => layout.arg(a))],
      env,
      workingDirectory: layout.workingDirectory,
      outputs,
      platform: Array.isArray(cfg.platform) ? cfg.platform : [...(await hostPlatform())],
      inputRoot: tree.root,
    },
    api.high,
    uploads,
  );
  return { action, uploads, outputs, deps };
}

/** Files the GNU linker reports opening with --trace (one per line, archives as `(lib.a)member`). */
export function linkerInputs(trace: string): string[] {
  const out = new Set<string>();
  for (const raw of trace.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.includes(': mode ')) continue;
    const archive = /^\(?([^()]+\.a)\)/.exec(line);
    if (archive?.[1] !== undefined) out.add(archive[1]);
    else if (line.startsWith('/') || /^[\w./-]+\.(o|so(\.\d+)*|a)$/.test(line)) out.add(line);
  }
  return [...out];
}

/** The whole of one specbuild-cc invocation, minus running locally (the client does that). */
export async function handleCompile(
  req: CcRequest,
  ctx: CcContext,
  /** Aborted when the client went away: nothing is written into its tree then. */
  signal?: AbortSignal,
): Promise<CcReply> {
  const cfg = ccConfig(req.env);
  if (cfg.server === undefined)
    return { kind: 'local', reason: 'no server configured (SPECBUILD_SERVER)' };
  if (typeof cfg.platform === 'string')
    return { kind: 'fallback', error: new SpecbuildError('wrap/usage', cfg.platform) };
  let ep: RemoteEndpoint;
  try {
    ep = await ctx.endpoint(cfg.server, cfg.instance);
  } catch (e) {
    return { kind: 'fallback', error: SpecbuildError.from(e) };
  }
  const clock = new PhaseClock(ctx.events);
  try {
    const built = await buildCompileAction(req, cfg, ctx.statCache, ep.apiVersion, ctx.directCache);
    if ('local' in built) return { kind: 'local', reason: built.local };
    clock.end(built.deps === 'direct' ? 'action-direct' : 'action');
    const ran = await runAction(ep, built.action, built.uploads, {
      cwd: req.cwd,
      outputs: built.outputs,
      signal,
      clock,
      runHere: cfg.cacheOnly ? () => runAndUpload(req, built, ep) : undefined,
    });
    return { kind: 'done', action: built.action, phases: clock.phases, ...ran };
  } catch (e) {
    // Whatever failed (a header gone mid-build, the server), the compile runs here.
    return { kind: 'fallback', error: SpecbuildError.from(e) };
  }
}

/** SPECBUILD_CACHE_ONLY: compile here, then store the outputs and the result (exit 0 only). */
async function runAndUpload(
  req: CcRequest,
  built: BuiltAction,
  ep: RemoteEndpoint,
): Promise<ActionResult> {
  const ran = await run(req.argv, req.cwd, req.env);
  const result = create(ActionResultSchema, { exitCode: ran.code });
  const blobs: Uint8Array[] = [ran.stdout, ran.stderr];
  const files: { path: string; data: Buffer; executable: boolean }[] = [];
  for (const o of built.outputs) {
    const path = join(req.cwd, o);
    const data = await readFile(path).catch(() => undefined);
    if (data !== undefined) {
      // A linked program keeps its executable bit when it comes back from the cache.
      const executable = ((await stat(path)).mode & 0o111) !== 0;
      files.push({ path: o, data, executable });
      blobs.push(data);
    }
  }
  const digests = await ep.cas.writeBlobs(blobs);
  result.stdoutDigest = toPb(digests[0] as Digest);
  result.stderrDigest = toPb(digests[1] as Digest);
  files.forEach((f, i) => {
    result.outputFiles.push({
      $typeName: 'build.bazel.remote.execution.v2.OutputFile',
      path: f.path,
      digest: toPb(digests[i + 2] as Digest),
      isExecutable: f.executable,
      contents: new Uint8Array(0),
    });
  });
  if (ran.code === 0) await ep.actionCache.updateActionResult(built.action, result);
  return result;
}
