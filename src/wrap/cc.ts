// specbuild-cc's work, done in the daemon: recognise a compile (or, with
// SPECBUILD_LINK, a link), discover its inputs with the compiler's own -M,
// build an action whose digest depends only on the command and its files,
// and answer it from the action cache or by remote execution.
import { randomUUID } from 'node:crypto';
import {
  constants as fsConstants,
  accessSync,
  chmodSync,
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  realpathSync,
  statSync,
  writeSync,
  type BigIntStats,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import {
  basename,
  delimiter,
  dirname,
  isAbsolute,
  join,
  posix,
  relative,
  resolve,
} from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampNow, type Timestamp } from '@bufbuild/protobuf/wkt';
import { RecentMap, SpecbuildError, removeFile, type EventSink } from '../core/index.js';
import { readSmallFile, uploadMissing, type UploadItem, type Uploads } from '../cas/index.js';
import {
  ActionResultSchema,
  ExecutedActionMetadataSchema,
  buildTree,
  checkActionResult,
  digestKey,
  digestOf,
  EMPTY_DIGEST,
  encodeAction,
  fromPb,
  hostPlatform,
  hostToolchainFiles,
  parseDigest,
  toPb,
  type ActionResult,
  type ActionSpec,
  type Digest,
  parseDigestString,
  type TreeEntry,
} from '../reapi/index.js';
import type { RemoteEndpoint } from '../remote/index.js';
import { parseCompilerArgs, type CompileInfo, type LinkInfo } from './cc-args.js';
import { depsOf } from './make-deps.js';
import { platformFromEnv } from './env.js';
import { wrapperTarget } from './env.js';
import { addAction, runAction } from './remote-action.js';
import { storeActionCache, storeCas } from './objects-dir-cas.js';
import { PhaseClock, type WrapEvent, type WrapPhase } from './outcome.js';
import type { Answer, AnswerCheck, AnswerOutput } from './native-answers.js';
import { localBlobPath } from './outputs.js';
import { MARK_ASM, MARK_DATE, MARK_TIMESTAMP, type StatCache } from './stat-cache.js';
import { threadSpawner, type Captured } from './spawner.js';
import {
  directKey,
  MAX_REMEMBERED_RESULT,
  type DirectCache,
  type DirectEntry,
  type DirectFile,
} from './direct-cache.js';
import {
  absentCandidates,
  firstPresent,
  kindAt,
  parseSearchPath,
  PROBE_RULES,
  type SearchPath,
} from './include-probes.js';

/**
 * Environment variables a compile or link action carries when set (nothing
 * else reaches it): the locale and LANGUAGE (diagnostics), SOURCE_DATE_EPOCH (__DATE__),
 * and the variables that extend the compiler's include and library search,
 * without which the action would not compile what the command compiles.
 */
export const ENV_ALLOW_LIST = [
  'CPATH',
  'CPLUS_INCLUDE_PATH',
  'C_INCLUDE_PATH',
  'LANG',
  'LANGUAGE',
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
  /**
   * Direct mode (on unless SPECBUILD_DIRECT=0): skip the dependency scan
   * while the last one's files are unchanged and no header would shadow one.
   */
  direct: boolean;
  /**
   * SPECBUILD_COMPILE_HERE (default on): when the server executes on this
   * machine, run a compile here once and store its result instead of
   * scanning its dependencies and sending it there.
   */
  compileHere: boolean;
  /** SPECBUILD_KNOWN_COMMANDS: a file of Command digests for which a stored result may exist. */
  knownCommands: string | undefined;
  /**
   * SPECBUILD_REMOTE_PLATFORM (and SPECBUILD_/RECC_REMOTE_PLATFORM_<NAME>): the action's platform properties, instead of
   * this host's (for a cluster whose workers advertise their own); a string
   * saying what is wrong when the variable does not parse.
   */
  platform: [string, string][] | string | undefined;
  /** SOURCE_DATE_EPOCH is set (and reaches the action): __DATE__ and __TIME__ are fixed by it. */
  sourceDateEpoch: boolean;
  /**
   * SPECBUILD_NATIVE_HITS (default on): after answering a compile from direct
   * mode's memory, write down its checks and answer for the native client,
   * which then answers it without the daemon (native-answers.ts).
   */
  nativeHits: boolean;
}

export function ccConfig(env: ReadonlyMap<string, string>): CcConfig {
  const flag = (k: string): boolean => {
    const v = env.get(k);
    return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  };
  const unlessOff = (k: string): boolean => {
    const v = env.get(k);
    return v === undefined || v === '' || flag(k);
  };
  const root = env.get('SPECBUILD_PROJECT_ROOT');
  const known = env.get('SPECBUILD_KNOWN_COMMANDS');
  return {
    ...wrapperTarget((k) => env.get(k)),
    cacheOnly: flag('SPECBUILD_CACHE_ONLY'),
    link: flag('SPECBUILD_LINK'),
    projectRoot: root === undefined || root === '' ? undefined : resolve(root),
    depsExclude: (env.get('SPECBUILD_DEPS_EXCLUDE_PATHS') ?? '')
      .split(/[,:]/)
      .filter((p) => p !== ''),
    verbose: flag('SPECBUILD_VERBOSE'),
    direct: unlessOff('SPECBUILD_DIRECT'),
    compileHere: unlessOff('SPECBUILD_COMPILE_HERE'),
    knownCommands: known === undefined || known === '' ? undefined : known,
    platform: platformFromEnv(env),
    sourceDateEpoch: (env.get('SOURCE_DATE_EPOCH') ?? '') !== '',
    nativeHits: unlessOff('SPECBUILD_NATIVE_HITS'),
  };
}

export interface CcRequest {
  /** The compiler as given, then its arguments. */
  argv: string[];
  cwd: string;
  env: ReadonlyMap<string, string>;
  /** The command's umask: files made for it get the modes it would have given them (default 022). */
  umask?: number;
}

export type CcReply =
  | { kind: 'local'; reason: string }
  | { kind: 'fallback'; error: SpecbuildError }
  | {
      kind: 'done';
      outcome: 'hit' | 'miss';
      /** Undefined for a compile run here once that failed (no action was made). */
      action: Digest | undefined;
      deps: BuiltAction['deps'];
      exitCode: number;
      stdout: Uint8Array;
      stderr: Uint8Array;
      /** Milliseconds per phase, for SPECBUILD_VERBOSE. */
      phases: Partial<Record<WrapPhase, number>>;
      /** A hit answered from direct mode's memory of the result (the action cache not asked). */
      remembered?: boolean;
      /** What direct mode found for a compile (undefined when it is off, and for links). */
      direct?: DirectState;
      /**
       * Why the result of a run here was not stored (an input changed while it
       * ran, so its contents may not be what the compiler read).
       */
      unstored?: string;
      /** For a hit from direct mode's memory: how the native client may answer it next time. */
      answer?: ClientAnswer;
    };

/** An answer for the native client, without its log line (the handler's). */
export type ClientAnswer = Omit<Answer, 'logFile' | 'logHead' | 'logTail'>;

export interface CcContext {
  statCache: StatCache;
  /** Direct mode's memory (kept by the daemon). */
  directCache?: DirectCache;
  /** A connected endpoint for a target and instance (kept warm by the daemon). */
  endpoint(target: string, instance: string): Promise<RemoteEndpoint>;
  /** Where each run's phase events go. */
  events?: EventSink<WrapEvent>;
}

/**
 * A command of the compile, run through this thread's spawner (a small
 * process that forks cheaply; spawner.ts), or directly without one.
 */
function run(
  argv: string[],
  cwd: string,
  env: ReadonlyMap<string, string>,
  /** The command's umask, for a run that makes its outputs (see outputsUmask). */
  umask?: number,
): Promise<Captured> {
  return threadSpawner().run(argv, cwd, env, umask === undefined ? undefined : outputsUmask(umask));
}

/**
 * The umask a command's outputs are made under: its own, less the owner's
 * bits. Group and others never get, even for the moment before
 * modesAsAsked sets the outputs' modes, what the command's umask denies
 * them (a 077 user's object was world-readable in between); the owner keeps
 * x, by which a linked program is known to be one (a umask of 0177 would
 * have hidden it).
 */
function outputsUmask(umask: number): number {
  return umask & 0o077;
}

/**
 * Compilers found through a PATH, each trusted for a second: a compiler
 * installed earlier on the PATH meanwhile (/usr/local/bin) is what the run
 * finds, so the action must name it, not the one found before.
 */
const resolved = new RecentMap<string, string>(1000, 1000);

/**
 * The compiler's path through a PATH (looked up at most once a second per
 * PATH), or undefined. Synchronous, as the other metadata calls of a
 * command: each fs.promises call is a round trip through the thread pool,
 * which cost the daemon more CPU than the call itself.
 */
function lookupCompiler(name: string, path: string, cwd: string): string | undefined {
  if (name.includes('/')) return resolve(cwd, name);
  // Relative PATH entries resolve against the working directory.
  const key = path.split(delimiter).every((d) => d.startsWith('/'))
    ? `${path}\0${name}`
    : `${path}\0${name}\0${cwd}`;
  const known = resolved.get(key);
  if (known !== undefined) return known.value;
  for (const dir of path.split(delimiter)) {
    const candidate = resolve(cwd, dir === '' ? '.' : dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      resolved.set(key, candidate);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Real paths of compilers, each trusted for a second (update-alternatives may move a link). */
const realpaths = new RecentMap<string, string | undefined>(1000, 1000);

function realpathOf(path: string): string | undefined {
  const known = realpaths.get(path);
  if (known !== undefined) return known.value;
  let real: string | undefined;
  try {
    // libc's, as fs.promises.realpath was: Node's own realpathSync reads a
    // `..` in a link's target as text, before the link before it is followed.
    real = realpathSync.native(path);
  } catch {
    real = undefined;
  }
  realpaths.set(path, real);
  return real;
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
  const here = lookupCompiler(name, env.get('PATH') ?? '/usr/bin:/bin', cwd);
  if (here === undefined) return { local: `${name} not found on PATH` };
  const real = realpathOf(here);
  if (real === undefined) return { local: `${here} cannot be resolved` };
  if (!name.includes('/')) {
    const there = lookupCompiler(name, ACTION_PATH, '/');
    const thereReal = there === undefined ? undefined : realpathOf(there);
    if (thereReal !== real)
      return {
        local: `${name} is ${real} here but ${thereReal ?? 'absent'} on the action PATH (${ACTION_PATH})`,
      };
  }
  return { real, digest: (await stats.digest(real, { marks: false })).digest };
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
  /** Its Command message's digest (the Command is one of `uploads`). */
  command: Digest;
  uploads: Uploads;
  outputs: string[];
  /** How the inputs were found: a -M scan, direct mode's memory, the compile itself, or a link trace. */
  deps: 'scan' | 'direct' | 'compile' | 'trace';
  /** The result direct mode remembers for this action (used when its outputs are on this machine). */
  known?: ActionResult;
  /** Keeps a successful result with direct mode's entry for this action. */
  remember?: (result: ActionResult) => void;
  /** The input files as hashed for the action (checked again after a run here). */
  inputs?: readonly DirectFile[];
  /** The first input changed since the scan that listed them started (see startStamp). */
  changedSinceScan?: () => string | undefined;
  /** Direct mode's paths where a new header would shadow a listed one. */
  absent?: readonly string[];
}

/** A recognised compile or link: everything of its action but the input files. */
export interface PreparedCommand {
  compiler: string;
  tool: ResolvedCompiler;
  parsed: CompileInfo | LinkInfo;
  layout: Layout;
  /** The action without its input root (the Command is complete). */
  spec: Omit<ActionSpec, 'inputRoot'>;
  /** The Command's digest: the same for every run of this command, whatever its inputs hold. */
  command: Digest;
  apiHigh: string;
}

/** Whether `path` is a directory now (following links); false for anything that cannot be stat'ed. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
}

/** Checks a command and builds everything of its action but the inputs; undefined means "run it locally". */
export async function prepareCommand(
  req: CcRequest,
  cfg: CcConfig,
  stats: StatCache,
  api: { low: string; high: string },
): Promise<PreparedCommand | { local: string }> {
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
    if (!isDirectory(dirname(abs))) return { local: `the directory of output ${o} does not exist` };
    outRel.push(rel);
  }
  const env: [string, string][] = [
    ...ENV_ALLOW_LIST.flatMap((k): [string, string][] => {
      const v = req.env.get(k);
      return v === undefined ? [] : [[k, v]];
    }),
    ['PATH', ACTION_PATH],
    // Ignored by the compiler; ties the action to the exact compiler binary.
    [COMPILER_DIGEST_ENV, digestKey(tool.digest)],
  ];
  const spec = {
    argv: [compiler, ...parsed.expandedArgs.map((a) => layout.arg(a))],
    env,
    workingDirectory: layout.workingDirectory,
    outputs: [...new Set(outRel)].sort(),
    platform: Array.isArray(cfg.platform) ? cfg.platform : [...(await hostPlatform())],
  };
  const command = encodeAction({ ...spec, inputRoot: EMPTY_DIGEST }, api.high).command.digest;
  return { compiler, tool, parsed, layout, spec, command, apiHigh: api.high };
}

/** The action of a prepared command over these input files. */
export function finishAction(
  prep: PreparedCommand,
  inputs: readonly DirectFile[],
  deps: BuiltAction['deps'],
): BuiltAction {
  const entries: TreeEntry[] = [{ kind: 'dir', path: prep.layout.workingDirectory }];
  const uploads: BuiltAction['uploads'] = new Map();
  for (const f of inputs) {
    const digest = parseDigest(f.hash, f.size);
    uploads.set(digestKey(digest), { digest, path: f.path });
    entries.push({
      kind: 'file',
      path: prep.layout.inRoot(f.path),
      digest,
      executable: f.executable,
    });
  }
  const tree = buildTree(entries);
  for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
  const action = addAction({ ...prep.spec, inputRoot: tree.root }, prep.apiHigh, uploads);
  return { action, command: prep.command, uploads, outputs: [...prep.spec.outputs], deps, inputs };
}

/** Every input with its digest, in discovery order, duplicates and excluded paths left out. */
async function digestAll(
  files: readonly string[],
  cwd: string,
  cfg: CcConfig,
  stats: StatCache,
  /** Set to why the first input that makes the compile uncacheable does (see uncacheable). */
  found?: { why?: string },
): Promise<DirectFile[]> {
  const abs = [...new Set(files.map((f) => resolve(cwd, f))).values()].filter(
    (a) => !cfg.depsExclude.some((p) => a.startsWith(p)),
  );
  const ds = await Promise.all(abs.map((a) => stats.digest(a)));
  return abs.map((path, i) => {
    const d = ds[i];
    if (d === undefined) throw new Error('bug: digest missing');
    if (d.marks !== 0 && found !== undefined) found.why ??= uncacheable(path, d.marks, cfg);
    const f = { path, hash: d.digest.hash, size: d.digest.size, executable: d.executable };
    statTaken.set(f, d.stat);
    return f;
  });
}

/**
 * The stat each of digestAll's files was hashed under (StatCache.digest):
 * changedSince and the client's answer use it rather than a stat of their
 * own, three per input per miss where one does. Beside the file, not in
 * it: a DirectFile is saved as JSON, and direct mode keeps copies (entryOf),
 * so a stat lives only as long as its request's files.
 */
const statTaken = new WeakMap<DirectFile, BigIntStats>();

/** Why a compile reading `path`, whose bytes mention `marks` (MARK_*), is not cached; undefined when it is. */
function uncacheable(path: string, marks: number, cfg: CcConfig): string | undefined {
  if ((marks & MARK_ASM) !== 0)
    return `${path} has .incbin or .include: the assembler reads files no dependency list names`;
  if ((marks & MARK_TIMESTAMP) !== 0)
    return `${path} has __TIMESTAMP__: the source's mtime, which no action carries`;
  if ((marks & MARK_DATE) !== 0 && !cfg.sourceDateEpoch)
    return `${path} has __DATE__ or __TIME__: the time of the compile (set SOURCE_DATE_EPOCH to cache it)`;
  return undefined;
}

/**
 * Direct mode's key of a compile: everything but the contents of its
 * headers. Not the user's PATH: it only chose the compiler, whose real path
 * is here (and its digest is in the command), and the scan and the action
 * never look anything up through it. Builds vary it between the compiles
 * of one build (libtool and shells that prepend to it): libpng's compiled
 * under two PATHs, at random, so with PATH in the key a second build found
 * no memory of 16-27 of its 51 compiles and scanned them.
 */
async function directKeyOf(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  stats: StatCache,
): Promise<string> {
  const source = await stats.digest(resolve(req.cwd, prep.parsed.source));
  return directKey([
    PROBE_RULES,
    digestKey(prep.command),
    req.argv,
    req.cwd,
    prep.tool.real,
    ENV_ALLOW_LIST.map((k) => req.env.get(k) ?? null),
    cfg.projectRoot ?? null,
    cfg.depsExclude,
    prep.spec.platform,
    digestKey(source.digest),
  ]);
}

/**
 * A remembered entry's state: every file the same and no shadowing header
 * (fresh), some file changed or a shadowing header appeared (stale, `why`
 * says which), or a file gone.
 */
async function checkEntry(
  entry: DirectEntry,
  stats: StatCache,
  cfg: CcConfig,
): Promise<{ state: 'fresh' | 'stale'; why: DirectState; now: DirectFile[] } | { state: 'gone' }> {
  const now = await Promise.all(
    entry.files.map((f) => stats.digest(f.path).catch(() => undefined)),
  );
  const files: DirectFile[] = [];
  const shadowed = firstPresent(entry.absent) !== undefined;
  let same = true;
  for (const [i, f] of entry.files.entries()) {
    const n = now[i];
    if (n === undefined) return { state: 'gone' };
    // Remembered before such files were refused (an older daemon's memory): not trusted.
    if (uncacheable(f.path, n.marks, cfg) !== undefined) same = false;
    files.push({
      path: f.path,
      hash: n.digest.hash,
      size: n.digest.size,
      executable: n.executable,
    });
    same &&= n.digest.hash === f.hash && n.digest.size === f.size && n.executable === f.executable;
  }
  const why: DirectState = !same ? 'changed' : shadowed ? 'shadowed' : 'fresh';
  return { state: why === 'fresh' ? 'fresh' : 'stale', why, now: files };
}

/**
 * What direct mode found for a compile, for the log line: its memory
 * usable (fresh), a listed file changed, a header that would shadow one
 * appeared, a listed file gone, or no memory of the command at all.
 */
export type DirectState = 'fresh' | 'changed' | 'shadowed' | 'gone' | 'none';

/**
 * The action of a fresh direct-mode entry: the digest it remembers (its
 * files are unchanged and its key covers the rest of the action), the tree
 * and messages built only when a miss needs them.
 */
function reuseAction(
  prep: PreparedCommand,
  entry: DirectEntry,
  files: DirectFile[],
  direct: DirectCache,
): BuiltAction {
  const known = entry.action === undefined ? undefined : parseDigestString(entry.action);
  if (known === undefined) {
    const built = finishAction(prep, files, 'direct');
    entry.action = digestKey(built.action);
    direct.changed();
    return { ...built, remember: rememberIn(direct, entry, built.action) };
  }
  let full: BuiltAction | undefined;
  const result = decodeResult(entry.result);
  return {
    action: known,
    command: prep.command,
    outputs: [...prep.spec.outputs],
    deps: 'direct',
    inputs: files,
    get uploads(): Uploads {
      full ??= finishAction(prep, files, 'direct');
      return full.uploads;
    },
    ...(result === undefined ? {} : { known: result }),
    remember: rememberIn(direct, entry, known),
    absent: entry.absent,
  };
}

/**
 * A result as direct mode keeps it: a successful one of output files only
 * (a compile's), as its message in base64; undefined for any other.
 */
function encodeResult(r: ActionResult): string | undefined {
  if (!plainResult(r)) return undefined;
  const text = Buffer.from(toBinary(ActionResultSchema, r)).toString('base64');
  return text.length <= MAX_REMEMBERED_RESULT ? text : undefined;
}

/** A successful result of output files only. */
function plainResult(r: ActionResult): boolean {
  /* eslint-disable @typescript-eslint/no-deprecated -- older peers' symlink lists */
  return (
    r.exitCode === 0 &&
    r.outputDirectories.length === 0 &&
    r.outputSymlinks.length === 0 &&
    r.outputFileSymlinks.length === 0 &&
    r.outputDirectorySymlinks.length === 0
  );
  /* eslint-enable @typescript-eslint/no-deprecated */
}

/** Remembered results as decoded, by their text (decoding one cost 0.16 ms a hit). */
const decodedResults = new Map<string, ActionResult | undefined>();
const MAX_DECODED_RESULTS = 4096;

/** A remembered result, or undefined when there is none or it does not decode as one. */
function decodeResult(text: string | undefined): ActionResult | undefined {
  if (text === undefined) return undefined;
  if (decodedResults.has(text)) return decodedResults.get(text);
  let r: ActionResult | undefined;
  try {
    r = fromBinary(ActionResultSchema, Buffer.from(text, 'base64'));
    checkActionResult(r);
    if (!plainResult(r)) r = undefined;
  } catch {
    r = undefined;
  }
  if (decodedResults.size >= MAX_DECODED_RESULTS) decodedResults.clear();
  decodedResults.set(text, r);
  return r;
}

/** Keeps `action`'s result with `entry` (as its result, the action now its action). */
function rememberIn(
  direct: DirectCache,
  entry: DirectEntry,
  action: Digest,
): (result: ActionResult) => void {
  return (result) => {
    const text = encodeResult(result);
    if (text === undefined) return;
    entry.action = digestKey(action);
    entry.result = text;
    direct.changed();
  };
}

/**
 * The include search path per compiler and flags (one `-v` run each, per
 * daemon, and again once a directory it ignored as missing exists).
 */
const searchPaths = new Map<string, Promise<SearchPath | undefined>>();
const MAX_SEARCH_PATHS = 1000;

async function searchPathOf(
  prep: PreparedCommand & { parsed: CompileInfo },
  cwd: string,
): Promise<SearchPath | undefined> {
  const { parsed } = prep;
  // The flags without the source, its outputs and dependency options.
  const flags = prep.spec.argv.slice(1).filter((_, i) => !parsed.dropForQuery.has(i));
  // Untranslated, for the messages read (the search path is the same in any locale).
  const env = new Map([...prep.spec.env, ['LC_ALL', 'C']]);
  const key = JSON.stringify([prep.tool.real, prep.tool.digest.hash, flags, cwd, prep.spec.env]);
  let p = searchPaths.get(key);
  if (p !== undefined) {
    // A directory created since it was read is on the chain now, where it
    // was left out: read it again (the scan of this compile saw it there).
    const known = await p;
    if (known?.missing.some((d) => kindAt(d) === 'dir') === true) {
      if (searchPaths.get(key) === p) searchPaths.delete(key);
      p = undefined;
    }
  }
  if (p === undefined) {
    p = run(
      [
        prep.compiler,
        ...flags,
        '-v',
        '-E',
        '-x',
        parsed.language ?? 'c',
        '-o',
        '/dev/null',
        '/dev/null',
      ],
      cwd,
      env,
    ).then((r) => (r.code === 0 ? parseSearchPath(r.stderr.toString('utf8'), cwd) : undefined));
    if (searchPaths.size >= MAX_SEARCH_PATHS) searchPaths.clear();
    searchPaths.set(key, p);
  }
  return p;
}

/**
 * The compiler's default <...> directories, where its system headers are:
 * the chain `-v` prints with none of the command's flags and no include
 * variables (one run per compiler and language, per daemon). Empty when it
 * cannot be read: every header is then taken as the project's.
 */
const systemDirs = new Map<string, Promise<string[]>>();

function systemDirsOf(
  prep: PreparedCommand & { parsed: CompileInfo },
  cwd: string,
): Promise<string[]> {
  const language = prep.parsed.language ?? 'c';
  // Named as the command names it (clang++ and clang are one binary); a
  // relative name (./cc) is found from the working directory.
  const named = prep.compiler.includes('/') ? resolve(cwd, prep.compiler) : prep.compiler;
  const key = JSON.stringify([named, prep.tool.real, prep.tool.digest.hash, language]);
  let p = systemDirs.get(key);
  if (p === undefined) {
    const env = new Map(
      prep.spec.env.filter(([k]) => !k.endsWith('INCLUDE_PATH') && k !== 'CPATH'),
    );
    env.set('LC_ALL', 'C');
    const argv = [named, '-v', '-E', '-x', language, '-o', '/dev/null', '/dev/null'];
    p = run(argv, '/', env).then((r) =>
      r.code === 0 ? (parseSearchPath(r.stderr.toString('utf8'), '/')?.bracket ?? []) : [],
    );
    if (systemDirs.size >= MAX_SEARCH_PATHS) systemDirs.clear();
    systemDirs.set(key, p);
  }
  return p;
}

/** What direct mode keeps of a dependency list (the inputs, and where a new header would shadow one). */
async function entryOf(
  prep: PreparedCommand & { parsed: CompileInfo },
  cwd: string,
  inputs: DirectFile[],
  action: Digest,
): Promise<DirectEntry | undefined> {
  const [path, system] = await Promise.all([searchPathOf(prep, cwd), systemDirsOf(prep, cwd)]);
  if (path === undefined) return undefined; // no search list: never skip the scan
  const source = resolve(cwd, prep.parsed.source);
  return {
    // Copies: direct mode keeps these for as long as it remembers the
    // command, and the originals key this request's stats (statTaken),
    // ~1 KB each, which must not live as long.
    files: inputs.map(({ path, hash, size, executable }) => ({ path, hash, size, executable })),
    action: digestKey(action),
    absent: absentCandidates(
      source,
      inputs.map((f) => f.path),
      path,
      { cwd, forced: prep.parsed.forcedIncludes, system },
    ),
  };
}

/** The dependency scan: the compiler with -M, listing every file the compile reads. */
async function scanInputs(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  stats: StatCache,
): Promise<{ inputs: DirectFile[]; startedNs: bigint } | { local: string }> {
  // The list is what the scan read; the digests, what the files hold after
  // it. A file changed since the scan started (a header given another
  // #include) may not be listed rightly: such a compile runs here, its
  // list not remembered.
  const stamp = startStamp(req.cwd, prep.parsed);
  try {
    const scan = await run([prep.compiler, ...prep.parsed.depsArgs], req.cwd, req.env);
    if (scan.code !== 0)
      return { local: 'dependency discovery failed (the compiler will say why)' };
    // The source itself, always: -M lists nothing for assembler or preprocessed input.
    const found: { why?: string } = {};
    const inputs = await digestAll(
      [prep.parsed.source, ...depsOf(scan.stdout.toString('utf8'))],
      req.cwd,
      cfg,
      stats,
      found,
    );
    if (found.why !== undefined) return { local: found.why };
    const late = changedSince(inputs, stamp.ns, true);
    if (late !== undefined) return { local: `${late} changed during the dependency scan` };
    return { inputs, startedNs: stamp.ns };
  } finally {
    removeFile(stamp.path);
  }
}

/** Builds the compile action for a recognised command; undefined means "run it locally". */
export async function buildCompileAction(
  req: CcRequest,
  cfg: CcConfig,
  stats: StatCache,
  api: { low: string; high: string },
  /** Direct mode's memory; used unless SPECBUILD_DIRECT=0. */
  direct?: DirectCache,
): Promise<BuiltAction | { local: string }> {
  const prep = await prepareCommand(req, cfg, stats, api);
  if ('local' in prep) return prep;
  if (!isCompile(prep)) return linkAction(req, cfg, prep, stats);
  const key =
    direct !== undefined && cfg.direct ? await directKeyOf(req, cfg, prep, stats) : undefined;
  const entry = key === undefined ? undefined : direct?.get(key);
  if (entry !== undefined && direct !== undefined) {
    const checked = await checkEntry(entry, stats, cfg);
    if (checked.state === 'fresh') return reuseAction(prep, entry, checked.now, direct);
  }
  return scanAndRemember(req, cfg, prep, stats, direct, key);
}

/** The -M scan's action, remembered by direct mode under `key` when it is on. */
async function scanAndRemember(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  stats: StatCache,
  direct: DirectCache | undefined,
  key: string | undefined,
): Promise<BuiltAction | { local: string }> {
  const scanned = await scanInputs(req, cfg, prep, stats);
  if ('local' in scanned) return scanned;
  const { inputs, startedNs } = scanned;
  const built: BuiltAction = {
    ...finishAction(prep, inputs, 'scan'),
    changedSinceScan: () => changedSince(inputs, startedNs),
  };
  if (key !== undefined && direct !== undefined) {
    const e = await entryOf(prep, req.cwd, inputs, built.action);
    if (e !== undefined) {
      direct.set(key, e);
      return { ...built, remember: rememberIn(direct, e, built.action) };
    }
  }
  return built;
}

function isCompile(prep: PreparedCommand): prep is PreparedCommand & { parsed: CompileInfo } {
  return prep.parsed.kind === 'compile';
}

async function linkAction(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand,
  stats: StatCache,
): Promise<BuiltAction | { local: string }> {
  const trace = await run(
    [prep.compiler, ...prep.parsed.expandedArgs, '-Wl,--trace', '-o', '/dev/null'],
    req.cwd,
    req.env,
  );
  if (trace.code !== 0) return { local: 'the linker trace failed' };
  const inputs = prep.parsed.kind === 'link' ? prep.parsed.inputs : [];
  const files = await digestAll(
    [...inputs, ...linkerInputs(trace.stdout.toString('utf8'))],
    req.cwd,
    cfg,
    stats,
  );
  return finishAction(prep, files, 'trace');
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
  /** ccConfig(req.env), when the caller has read it already. */
  cfg: CcConfig = ccConfig(req.env),
): Promise<CcReply> {
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
    const prep = await prepareCommand(req, cfg, ctx.statCache, ep.apiVersion);
    if ('local' in prep) return { kind: 'local', reason: prep.local };
    // Results made here: SPECBUILD_CACHE_ONLY, or a server on this machine (unless SPECBUILD_COMPILE_HERE=0).
    const here = cfg.cacheOnly || (cfg.compileHere && ep.executesHere);
    const found: { direct?: DirectState } = {};
    const built = isCompile(prep)
      ? await decideCompile(req, cfg, prep, ctx, ep, here, clock, signal, found)
      : await linkAction(req, cfg, prep, ctx.statCache);
    if ('local' in built) return { kind: 'local', reason: built.local };
    if ('kind' in built) return built.kind === 'done' ? { ...built, direct: found.direct } : built;
    clock.end(built.deps === 'direct' ? 'action-direct' : 'action');
    /** Why a result run here was not stored. */
    let unstored: string | undefined;
    const { result, remembered, ...ran } = await runAction(ep, built.action, () => built.uploads, {
      cwd: req.cwd,
      outputs: built.outputs,
      umask: req.umask,
      signal,
      clock,
      runHere: here
        ? () =>
            runAndUpload(req, prep, built, ep, ctx.statCache, signal, (why) => {
              unstored = why;
            })
        : undefined,
      known: built.known,
    });
    if (!remembered && unstored === undefined) built.remember?.(result);
    const answer =
      remembered &&
      found.direct === 'fresh' &&
      cfg.nativeHits &&
      !cfg.verbose &&
      ep.localObjects !== undefined &&
      isCompile(prep)
        ? await clientAnswer(req, cfg, prep, built, result, ran, ep.localObjects, ctx.statCache)
        : undefined;
    return {
      kind: 'done',
      action: unstored === undefined ? built.action : undefined,
      deps: built.deps,
      phases: clock.phases,
      remembered,
      direct: found.direct,
      unstored,
      answer,
      ...ran,
    };
  } catch (e) {
    // Whatever failed (a header gone mid-build, the server), the compile runs here.
    return { kind: 'fallback', error: SpecbuildError.from(e) };
  }
}

/**
 * How a compile's inputs are known: direct mode's memory when nothing it
 * lists changed; else, when results are made here, the compile itself
 * (with -MD) unless a stored result may exist; else the -M scan.
 */
async function decideCompile(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  ctx: CcContext,
  ep: RemoteEndpoint,
  here: boolean,
  clock: PhaseClock,
  signal: AbortSignal | undefined,
  /** Set to what direct mode found (for the log line). */
  found: { direct?: DirectState },
): Promise<BuiltAction | { local: string } | CcReply> {
  const stats = ctx.statCache;
  const direct = cfg.direct ? ctx.directCache : undefined;
  const key = direct === undefined ? undefined : await directKeyOf(req, cfg, prep, stats);
  const entry = key === undefined ? undefined : direct?.get(key);
  const checked = entry === undefined ? undefined : await checkEntry(entry, stats, cfg);
  if (direct !== undefined)
    found.direct = checked === undefined ? 'none' : checked.state === 'gone' ? 'gone' : checked.why;
  if (checked?.state === 'fresh' && entry !== undefined && direct !== undefined)
    return reuseAction(prep, entry, checked.now, direct);
  if (here && canCompileOnce(prep.parsed)) {
    let once: boolean;
    if (checked?.state === 'stale') {
      // Headers changed: a result for their new contents (primed ahead of
      // this build, or another build's) is worth the scan that confirms it.
      const candidate = finishAction(prep, checked.now, 'direct');
      once = (await ep.actionCache.getActionResult(candidate.action, { signal })) === undefined;
    } else if (checked === undefined) {
      // Not in direct mode's memory (without it, nothing is known and the
      // scan finds any stored result): scanned first if a result may be
      // stored, compiled once only for a command never stored. A command is
      // stored with every action, so its presence in the server's CAS says
      // so (one FindMissingBlobs); an element build lists its recorded ones
      // (SPECBUILD_KNOWN_COMMANDS), which saves that call. Without this check
      // a daemon whose memory was lost or did not match (another PATH, a new
      // daemon against a full shared cache) compiled every command again:
      // libpng through bench:realworld, 51 of 51.
      once =
        direct !== undefined &&
        !(await isKnownCommand(cfg.knownCommands, prep.command)) &&
        !(await commandStored(ep, prep.command, signal));
    } else {
      once = true; // a listed file is gone: the old result cannot be it
    }
    if (once) return compileOnce(req, cfg, prep, ctx, ep, key, clock, signal);
  }
  return scanAndRemember(req, cfg, prep, stats, direct, key);
}

/** A compile whose dependency list the compile itself can write (not -MMD's, which leaves out system headers). */
function canCompileOnce(parsed: CompileInfo): boolean {
  return parsed.language !== undefined && parsed.depMode !== 'MMD';
}

function preprocesses(language: string | undefined): boolean {
  return language !== 'assembler' && language?.endsWith('cpp-output') !== true;
}

/**
 * Runs the action's command here, once, with the dependency list written by
 * the same compiler run (the command's own -MD file, else -MD -MF to a
 * private file); builds the action from that list, which is the list the -M
 * scan would have given; stores the action, outputs and result.
 */
async function compileOnce(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  ctx: CcContext,
  ep: RemoteEndpoint,
  key: string | undefined,
  clock: PhaseClock,
  signal: AbortSignal | undefined,
): Promise<CcReply> {
  const { parsed } = prep;
  const argv = [...prep.spec.argv];
  let depFile: string | undefined;
  let own: string | undefined;
  if (preprocesses(parsed.language)) {
    if (parsed.depMode === 'MD' && parsed.depFile !== undefined)
      depFile = resolve(req.cwd, parsed.depFile);
    else {
      // Beside the object: it is also the start's stamp (below).
      own = besideObject(req.cwd, parsed, '.d');
      argv.push('-MD', '-MF', own);
      depFile = own;
    }
  }
  let marker: string | undefined;
  try {
    clock.end('prepare');
    // The file system's clock as the compile starts: our own dependency
    // file (which the compiler then rewrites), else a file made for it.
    let startNs: bigint;
    if (own !== undefined) {
      marker = own;
      startNs = stampFile(own);
    } else {
      const stamp = startStamp(req.cwd, parsed);
      marker = stamp.path;
      startNs = stamp.ns;
    }
    const started = timestampNow();
    const ran = await run(argv, req.cwd, new Map(prep.spec.env), req.umask ?? 0o022);
    const ended = timestampNow();
    const made = ran.code === 0 ? modesAsAsked(prep.spec.outputs, req) : undefined;
    clock.end('local-run');
    const reply = (
      action: Digest | undefined,
      unstored?: string,
      answer?: ClientAnswer,
    ): CcReply => ({
      kind: 'done',
      outcome: 'miss',
      action,
      deps: 'compile',
      exitCode: ran.code,
      stdout: ran.stdout,
      stderr: ran.stderr,
      phases: clock.phases,
      unstored,
      answer,
    });
    // A failed compile is the user's to see, as it is; nothing is stored.
    if (ran.code !== 0) return reply(undefined);
    const listed = depFile === undefined ? '' : await readText(depFile);
    const found: { why?: string } = {};
    const inputs = await digestAll(
      [parsed.source, ...depsOf(listed)],
      req.cwd,
      cfg,
      ctx.statCache,
      found,
    );
    if (found.why !== undefined) return reply(undefined, found.why);
    // Hashed after the compile: an input changed since it started may hold
    // other bytes than the compiler read, and the result must not be stored
    // under them (ccache's "too new" rule).
    const late = changedSince(inputs, startNs, true);
    if (late !== undefined) return reply(undefined, `${late} changed during the compile`);
    const built = finishAction(prep, inputs, 'compile');
    clock.end('action');
    const result = await storeResult(
      ep,
      built,
      req.cwd,
      ran,
      signal,
      { started, ended, executable: made },
      clock,
    );
    let answer: ClientAnswer | undefined;
    if (key !== undefined) {
      const e = await entryOf(prep, req.cwd, inputs, built.action);
      const text = encodeResult(result);
      if (e !== undefined)
        ctx.directCache?.set(key, text === undefined ? e : { ...e, result: text });
      // The next run of this command is a hit from that memory: the client may answer it.
      if (e !== undefined && text !== undefined && cfg.nativeHits && !cfg.verbose) {
        const objects = ep.localObjects;
        answer =
          objects === undefined
            ? undefined
            : await clientAnswer(
                req,
                cfg,
                prep,
                { ...built, absent: e.absent },
                result,
                { stdout: ran.stdout, stderr: ran.stderr, exitCode: ran.code },
                objects,
                ctx.statCache,
              );
      }
    }
    return reply(built.action, undefined, answer);
  } finally {
    if (marker !== undefined) removeFile(marker);
  }
}

/**
 * Creates a file at `path` and returns its mtime: the file system's clock
 * now. Its times are read before it is written: on a kernel with multigrain
 * timestamps (6.13 and later) the write then gets a fine-grained time, and
 * every later change one at or after it. Without that step a file written
 * just before shared the stamp's clock tick 1,953 times in 2,000 (4 ms
 * ticks), and counted as changed during the run; with it, none did, and no
 * file written after was older. On older kernels the tick is the stamp:
 * ties then count as changed.
 */
function stampFile(path: string): bigint {
  const fd = openSync(path, 'wx', 0o600);
  try {
    fstatSync(fd);
    writeSync(fd, '.');
    return fstatSync(fd, { bigint: true }).mtimeNs;
  } finally {
    closeSync(fd);
  }
}

/**
 * A new file's path beside the compile's object file: its clock is the one
 * of the build tree's file system, which the sources most likely share (on
 * another, say tmpfs against a file system with 1 s timestamps, a change
 * could read as older than the start).
 */
function besideObject(cwd: string, parsed: CompileInfo, suffix: string): string {
  const name = `.specbuild-cc-${String(process.pid)}-${randomUUID()}${suffix}`;
  const object = resolve(cwd, parsed.objectPath);
  // Not beside /dev/null (or another device or directory named as output).
  const st = statSync(object, { throwIfNoEntry: false });
  return st === undefined || st.isFile() ? join(dirname(object), name) : join(tmpdir(), name);
}

/**
 * Marks the start of a run with a new file beside the object file (else in
 * the temporary directory): its path, to remove, and the clock's reading.
 */
function startStamp(cwd: string, parsed: CompileInfo): { path: string; ns: bigint } {
  const path = besideObject(cwd, parsed, '.start');
  try {
    return { path, ns: stampFile(path) };
  } catch {
    const tmp = join(tmpdir(), basename(path));
    return { path: tmp, ns: stampFile(tmp) };
  }
}

/**
 * The first of `inputs` changed at or after `sinceNs` (or gone): changed
 * since a run started, so its bytes now may not be what the run read.
 * Timestamps equal to the start count as changed: the clock's tick may hold
 * both. The mtime says so; the ctime too (a file rewritten with its mtime
 * put back), but only for a file with one link: a hard link made or removed
 * moves the ctime of every name of the inode, and the sandboxes of an
 * element build and of its priming stage the same read-only blobs by hard
 * links all the time (seen: heavy.c's 1 s compile went unstored, and so
 * unrecorded, while priming staged base.h).
 */
function changedSince(
  inputs: readonly DirectFile[],
  sinceNs: bigint,
  /** Whether a stat taken when a file was hashed will do: when it was hashed after the run ended. */
  hashedAfter = false,
): string | undefined {
  for (const f of inputs) {
    const st =
      (hashedAfter ? statTaken.get(f) : undefined) ??
      statSync(f.path, { bigint: true, throwIfNoEntry: false });
    if (st === undefined || st.mtimeNs >= sinceNs || (st.ctimeNs >= sinceNs && st.nlink === 1n))
      return f.path;
  }
  return undefined;
}

/**
 * The first of an action's inputs whose digest now differs from the one in
 * the action (changed after it was hashed, before or while the command ran),
 * or that is gone.
 */
async function changedInputs(
  inputs: readonly DirectFile[],
  stats: StatCache,
): Promise<string | undefined> {
  for (const f of inputs) {
    const now = await stats.digest(f.path).catch(() => undefined);
    if (now?.digest.hash !== f.hash || now.digest.size !== f.size) return f.path;
  }
  return undefined;
}

/**
 * A dependency list (a few kilobytes), read with synchronous calls: see
 * readSmallFile. fs.promises' four thread-pool round trips, each a wake-up
 * of the worker's loop, cost more than the read on a loaded machine.
 */
async function readText(path: string): Promise<string> {
  return (readSmallFile(path) ?? (await readFile(path))).toString('utf8');
}

/** An output of a run here (an object file: small mostly), or undefined when it was not made. */
async function readOutput(path: string): Promise<Uint8Array | undefined> {
  try {
    return readSmallFile(path) ?? (await readFile(path));
  } catch {
    return undefined;
  }
}

/** Whether the server holds the Command message: some action with this command was stored. */
async function commandStored(
  ep: RemoteEndpoint,
  command: Digest,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return (await storeCas(ep).findMissingBlobs([command], { signal })).length === 0;
}

/** The command digests listed in SPECBUILD_KNOWN_COMMANDS's file (read again when it changes). */
const knownFiles = new Map<string, { stamp: string; digests: Set<string> }>();

/**
 * True when a result for this command may be stored: its Command digest is
 * in the file SPECBUILD_KNOWN_COMMANDS names (an element build lists the
 * commands its previous builds recorded). An unreadable file says "maybe".
 */
async function isKnownCommand(file: string | undefined, command: Digest): Promise<boolean> {
  if (file === undefined) return false;
  try {
    const st = statSync(file);
    const stamp = `${String(st.size)}:${String(st.mtimeMs)}:${String(st.ino)}`;
    let known = knownFiles.get(file);
    if (known?.stamp !== stamp) {
      const text = await readFile(file, 'utf8');
      known = { stamp, digests: new Set(text.split('\n').filter((l) => l !== '')) };
      knownFiles.set(file, known);
    }
    return known.digests.has(digestKey(command));
  } catch {
    return true;
  }
}

/**
 * Runs the action's command here (its argv and environment, in the
 * command's directory) and stores the result, unless an input changed
 * since it was hashed: then the outputs are in place and the result, with
 * its stdout and stderr inline, is returned unstored (`unstored` says why).
 */
async function runAndUpload(
  req: CcRequest,
  prep: PreparedCommand,
  built: BuiltAction,
  ep: RemoteEndpoint,
  stats: StatCache,
  signal: AbortSignal | undefined,
  unstored: (why: string) => void,
): Promise<ActionResult> {
  const started = timestampNow();
  const ran = await run([...prep.spec.argv], req.cwd, new Map(prep.spec.env), req.umask ?? 0o022);
  const ended = timestampNow();
  const made = ran.code === 0 ? modesAsAsked(prep.spec.outputs, req) : undefined;
  // Changed since the scan started (by time), else since they were hashed (by content).
  const late =
    built.inputs === undefined
      ? undefined
      : built.changedSinceScan !== undefined
        ? built.changedSinceScan()
        : await changedInputs(built.inputs, stats);
  if (late !== undefined) {
    unstored(`${late} changed after it was hashed`);
    return create(ActionResultSchema, {
      exitCode: ran.code,
      stdoutRaw: ran.stdout,
      stderrRaw: ran.stderr,
    });
  }
  return storeResult(ep, built, req.cwd, ran, signal, { started, ended, executable: made });
}

/**
 * Gives the outputs of a command the daemon ran, after it succeeded, the
 * modes the command would have given them: the compiler ran under the
 * command's umask less the owner's bits (outputsUmask; under the daemon's
 * own 022 when spawned without the spawner), not the command's.
 * Each keeps whether it is executable; only the permission bits change.
 * Returns the outputs that were executable as the compiler made them: what
 * the result records, whatever this command's umask leaves of the bits (a
 * umask of 0177 must not cache a program as not executable for everyone).
 * Symbolic links are left alone (chmod would change what they point to).
 */
function modesAsAsked(outputs: readonly string[], req: CcRequest): Set<string> {
  const umask = req.umask ?? 0o022;
  const executable = new Set<string>();
  for (const o of outputs) {
    const path = join(req.cwd, o);
    try {
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (st?.isSymbolicLink() === true) {
        // Written through (GNU ld does): the result records its target's bit.
        if (((statSync(path, { throwIfNoEntry: false })?.mode ?? 0) & 0o111) !== 0)
          executable.add(o);
        continue;
      }
      if (st === undefined || !st.isFile()) continue;
      if ((st.mode & 0o111) !== 0) executable.add(o);
      const mode = ((st.mode & 0o111) !== 0 ? 0o777 : 0o666) & ~umask;
      if ((st.mode & 0o777) !== mode) chmodSync(path, mode);
    } catch {
      // not this command's to change (another user's file): left as the compiler made it
    }
  }
  return executable;
}

/** The worker named in the results of runs here. */
const LOCAL_WORKER = `specbuild-cc@${hostname()}`;

/**
 * Stores what a run here made: the action, its command and inputs (see
 * storedMessages), its outputs, and, when it exited 0, its result in the
 * action cache. All the blobs go in one
 * FindMissingBlobs and one batch write (three calls in all with the result,
 * where inputs and outputs used to be written separately: four), since each
 * call costs the server more than the bytes of a compile's blobs do.
 */
async function storeResult(
  ep: RemoteEndpoint,
  built: BuiltAction,
  cwd: string,
  ran: Captured,
  signal: AbortSignal | undefined,
  /**
   * When the run here started and ended, and which outputs it made
   * executable (as made, before the command's umask; else their mode now).
   */
  timing: { started: Timestamp; ended: Timestamp; executable?: ReadonlySet<string> },
  /** Times the blobs' store and the result's ('store-blobs', 'store-result'). */
  clock?: PhaseClock,
): Promise<ActionResult> {
  const result = create(ActionResultSchema, { exitCode: ran.code });
  // Its timing, as an executor records it (priming can then start the
  // longest recorded actions first).
  result.executionMetadata = create(ExecutedActionMetadataSchema, {
    worker: LOCAL_WORKER,
    workerStartTimestamp: timing.started,
    executionStartTimestamp: timing.started,
    executionCompletedTimestamp: timing.ended,
    workerCompletedTimestamp: timing.ended,
  });
  // A failed run stores its stdout and stderr only (the caller shows them; nothing is cached).
  const blobs = ran.code === 0 ? storedMessages(ep, built) : new Map<string, UploadItem>();
  const add = (bytes: Uint8Array): Digest => {
    const digest = digestOf(bytes);
    blobs.set(digestKey(digest), { digest, bytes });
    return digest;
  };
  result.stdoutDigest = toPb(add(ran.stdout));
  result.stderrDigest = toPb(add(ran.stderr));
  for (const o of built.outputs) {
    const path = join(cwd, o);
    const data = await readOutput(path);
    if (data === undefined) continue;
    // A linked program keeps its executable bit when it comes back from the cache.
    const executable = timing.executable?.has(o) ?? (statSync(path).mode & 0o111) !== 0;
    result.outputFiles.push({
      $typeName: 'build.bazel.remote.execution.v2.OutputFile',
      path: o,
      digest: toPb(add(data)),
      isExecutable: executable,
      contents: new Uint8Array(0),
    });
  }
  await uploadMissing(storeCas(ep), blobs, { signal });
  clock?.end('store-blobs');
  if (ran.code === 0)
    await storeActionCache(ep).updateActionResult(built.action, result, { signal });
  clock?.end('store-result');
  return result;
}

/**
 * What a successful run here stores besides its outputs and messages: its
 * action, command, input files and input directories, so that it can be
 * recorded and primed like an executed one, or executed elsewhere.
 *
 * Written straight into the files of a server on this machine
 * (`localActionCache`), only the action and its command are. A session's
 * action cache has no directory, so an element build's compiles are never
 * stored so; nothing that reads a cached action's result reads its inputs
 * (not a hit, not the server, which checks a result's outputs). Only a
 * session that met such an action in the same store (`specbuild server`'s
 * default directory is the builds' own) would record it without its input
 * tree, and generate() then leaves it out: fewer speculative actions,
 * never a wrong one, and only for a host compile with an element build's
 * exact paths. The inputs were 7 of the 10 files a zlib miss created, each
 * costly on this VM's ext4 (docs/performance.md). ccache and Bazel's disk
 * cache keep no inputs either.
 */
function storedMessages(ep: RemoteEndpoint, built: BuiltAction): Uploads {
  if (ep.localActionCache === undefined) return new Map(built.uploads);
  const uploads = built.uploads;
  const kept = new Map<string, UploadItem>();
  for (const d of [built.action, built.command]) {
    const key = digestKey(d);
    const item = uploads.get(key);
    if (item !== undefined) kept.set(key, item);
  }
  return kept;
}

/** The largest input the native client hashes itself (larger ones must be vouched for by their stat). */
const CLIENT_HASH_MAX = 4 << 20;

/**
 * How the native client may answer this command next time without the
 * daemon (native-answers.ts): every check this hit rested on, as file
 * system calls, and the outputs and messages it gave. Undefined when one of
 * them cannot be put so (a response file, a relative path, an output blob
 * not in the blob directory, a compiler whose stat the stat cache does not
 * vouch for).
 */
async function clientAnswer(
  req: CcRequest,
  cfg: CcConfig,
  prep: PreparedCommand & { parsed: CompileInfo },
  built: BuiltAction,
  result: ActionResult,
  ran: { stdout: Uint8Array; stderr: Uint8Array; exitCode: number },
  objects: string,
  stats: StatCache,
): Promise<ClientAnswer | undefined> {
  const args = req.argv.slice(1);
  // Arguments read from files (@file) are not in the request's bytes.
  if (
    ran.exitCode !== 0 ||
    prep.parsed.expandedArgs.length !== args.length ||
    prep.parsed.expandedArgs.some((a, i) => a !== args[i])
  )
    return undefined;
  const checks = await recentChecks(compilerKey(prep.compiler, req.env, req.cwd, prep.tool), () =>
    Promise.resolve(compilerChecks(prep.compiler, req.env, req.cwd, prep.tool, stats)),
  );
  if (checks === undefined || built.inputs === undefined || built.absent === undefined)
    return undefined;
  // The server still has the action (not emptied, not evicted since), and
  // the blobs of what it printed, as a remembered hit requires (allLocal).
  const printed = [result.stdoutDigest, result.stderrDigest].flatMap((pb) =>
    pb === undefined ? [] : [fromPb(pb)],
  );
  for (const d of [built.action, ...printed]) {
    if (d.size === 0) continue;
    const path = localBlobPath(objects, d);
    if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) return undefined;
    checks.unshift({ kind: 'present', path });
  }
  // The host platform's toolchain property (unless the platform is given):
  // hashed once per daemon, so an upgraded assembler or OS must not be
  // answered for with objects of the old one.
  if (!Array.isArray(cfg.platform)) {
    const host = await recentChecks('host', () => toolchainChecks(stats));
    if (host === undefined) return undefined;
    checks.push(...host);
  }
  const source = resolve(req.cwd, prep.parsed.source);
  // The source, unless the list has it (its digest is in the key; hashed once by the client).
  const src = await stats.digest(source);
  const files = [
    ...(built.inputs.some((f) => f.path === source)
      ? []
      : [
          {
            path: source,
            hash: src.digest.hash,
            size: src.digest.size,
            executable: src.executable,
          },
        ]),
    ...built.inputs,
  ];
  for (const f of files) {
    const c = fileCheck(f.path, f.hash, f.size, f.executable, stats, statTaken.get(f));
    if (c === undefined) return undefined;
    checks.push(c);
  }
  for (const p of built.absent) {
    if (!isAbsolute(p)) return undefined;
    checks.push({ kind: 'absent', path: p });
  }
  const outputs: AnswerOutput[] = [];
  for (const f of result.outputFiles) {
    const d = fromPb(f.digest, `output ${f.path}`);
    const norm = posix.normalize(f.path);
    if (norm !== f.path || isAbsolute(f.path) || f.path === '..' || f.path.startsWith('../'))
      return undefined;
    outputs.push({
      path: f.path,
      blob: localBlobPath(objects, d),
      size: d.size,
      executable: f.isExecutable,
    });
  }
  // The compiler is often a toolchain file too (/usr/bin/gcc): each check once.
  const seen = new Set<string>();
  const once = checks.filter((c) => {
    const k = `${c.kind}\0${c.path}\0${c.kind === 'file' ? c.hash : c.kind === 'real' ? c.real : ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return { checks: once, outputs, stdout: ran.stdout, stderr: ran.stderr };
}

/**
 * The check that a file holds `hash`: with the stat the stat cache vouches
 * for, else for the client to hash (up to CLIENT_HASH_MAX). Undefined when
 * neither will do.
 */
function fileCheck(
  path: string,
  hash: string,
  size: number,
  executable: boolean | undefined,
  stats: StatCache,
  /** The stat the file was hashed under in this request, if it was. */
  taken?: BigIntStats,
): AnswerCheck | undefined {
  if (!isAbsolute(path)) return undefined;
  const v = stats.vouch(path, hash, taken);
  if (v === undefined && size > CLIENT_HASH_MAX) return undefined;
  const exec = executable ?? v?.executable;
  if (exec === undefined) return undefined;
  return {
    kind: 'file',
    path,
    hash,
    size,
    executable: exec,
    ...(v === undefined ? {} : { sig: v.sig }),
  };
}

/** libc's realpath: Node's own walks the path in JavaScript, a stat per component. */
function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync.native(p);
  } catch {
    return undefined;
  }
}

/**
 * The checks of the host's toolchain binaries (hostPlatform's property): the
 * same for every answer. Undefined when this daemon's platform is stale (a
 * binary changed since it started), or a binary's stat is not vouched for.
 */
async function toolchainChecks(stats: StatCache): Promise<AnswerCheck[] | undefined> {
  const checks: AnswerCheck[] = [];
  for (const t of await hostToolchainFiles()) {
    if (t.digest === undefined) {
      checks.push({ kind: 'absent', path: t.path });
      continue;
    }
    const path = t.real ?? t.path;
    if (t.real !== undefined) {
      if (realpathOrUndefined(t.path) !== t.real) return undefined;
      checks.push({ kind: 'real', path: t.path, real: t.real });
    }
    const now = await stats.digest(path, { marks: false }).catch(() => undefined);
    if (now?.digest.hash !== t.digest.hash) return undefined; // this daemon's platform is stale
    const c = fileCheck(path, now.digest.hash, now.digest.size, now.executable, stats);
    if (c === undefined) return undefined;
    checks.push(c);
  }
  return checks;
}

/**
 * Checks that every answer of a compiler (or of this host) carries, made at
 * most once a second: the same PATH lookups, realpaths and toolchain stats
 * for every compile of a build, ~0.6 ms of the daemon's CPU per miss (an
 * accessSync that fails throws). A check is a claim the client verifies when
 * it uses the answer (answer_here), so one made a second ago costs at most
 * an answer the client declines; and the compiler it names is the one
 * resolveCompiler found, itself looked up at most once a second. Each caller
 * gets a copy: it adds its own checks.
 */
const recent = new RecentMap<string, Promise<AnswerCheck[] | undefined>>(1000, 1000);

async function recentChecks(
  key: string,
  make: () => Promise<AnswerCheck[] | undefined>,
): Promise<AnswerCheck[] | undefined> {
  let made = recent.get(key)?.value;
  if (made === undefined) {
    made = make();
    recent.set(key, made);
  }
  let checks: AnswerCheck[] | undefined;
  try {
    checks = await made;
  } catch (e) {
    recent.delete(key); // a failure is not remembered
    throw e;
  }
  return checks === undefined ? undefined : [...checks];
}

/** What compilerChecks depends on: the name, the PATH (and cwd, for a relative one), the binary. */
function compilerKey(
  name: string,
  env: ReadonlyMap<string, string>,
  cwd: string,
  tool: ResolvedCompiler,
): string {
  const path = env.get('PATH') ?? '/usr/bin:/bin';
  const relative = name.includes('/') || path.split(delimiter).some((d) => !d.startsWith('/'));
  return `cc\0${name}\0${path}\0${relative ? cwd : ''}\0${tool.real}\0${tool.digest.hash}`;
}

/**
 * The checks that the compiler is still what resolveCompiler found: through
 * the caller's PATH (each entry before it not executable, then it), its real
 * path, the action PATH's compiler the same, and the binary's stat the one
 * the stat cache hashed. Undefined when they do not hold now.
 */
function compilerChecks(
  name: string,
  env: ReadonlyMap<string, string>,
  cwd: string,
  tool: ResolvedCompiler,
  stats: StatCache,
): AnswerCheck[] | undefined {
  const checks: AnswerCheck[] = [];
  const lookup = (path: string, from: string): string | undefined => {
    for (const dir of path.split(delimiter)) {
      const candidate = resolve(from, dir === '' ? '.' : dir, name);
      try {
        accessSync(candidate, fsConstants.X_OK);
        checks.push({ kind: 'exec', path: candidate });
        return candidate;
      } catch {
        checks.push({ kind: 'noexec', path: candidate });
      }
    }
    return undefined;
  };
  const realOf = realpathOrUndefined;
  const here = name.includes('/')
    ? resolve(cwd, name)
    : lookup(env.get('PATH') ?? '/usr/bin:/bin', cwd);
  if (here === undefined || realOf(here) !== tool.real) return undefined;
  checks.push({ kind: 'real', path: here, real: tool.real });
  if (!name.includes('/')) {
    const there = lookup(ACTION_PATH, '/');
    if (there === undefined || realOf(there) !== tool.real) return undefined;
    checks.push({ kind: 'real', path: there, real: tool.real });
  }
  const c = fileCheck(tool.real, tool.digest.hash, tool.digest.size, undefined, stats);
  if (c === undefined) return undefined;
  checks.push(c);
  return checks;
}
