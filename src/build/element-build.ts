// Building one element: its dependencies' artifacts staged as overlay layers
// above the host root, its sources copied (writable) to %{build-root}, its
// commands run with `sh -e` in order in the sandbox, with a per-build REAPI
// session at `remote-apis-socket` recording the subactions, and
// %{install-root} captured into CAS as the artifact. A failed build keeps its
// directory (for `specbuild shell --build`) and stores nothing.
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { hostname } from 'node:os';
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { LentSlot, SpecbuildError, type EventSink, type SlotPool } from '../core/index.js';
import {
  emptyTree,
  ExtractCache,
  layerTrees,
  newArtifact,
  readBlobIfPresent,
  stageTree,
  subtree,
  uploadMissing,
  type ActionCache,
  type Artifact,
  type ArtifactCache,
  type Executor,
  type LocalCas,
  type Uploads,
} from '../cas/index.js';
import {
  canonicalJson,
  normalName,
  runtimeClosure,
  type ElementKeys,
  type GraphNode,
  type Project,
} from '../project/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import {
  ActionSchema,
  digestKey,
  fromPb,
  toPb,
  treeFromDirectory,
  type Digest,
} from '../reapi/index.js';
import { prepareWorkDir } from '../exec/index.js';
import { runInSandbox, type Bind, type SandboxLimits } from '../sandbox/index.js';
import type { RecordingSession, RunningServer } from '../server/index.js';
import type { BuildEvent, BuildPhase } from './events.js';

import { makeSocketDir } from './socket-dir.js';
import { wrapperBinds } from './tools.js';

export interface BuilderOptions {
  cas: LocalCas;
  ac: ActionCache;
  /** Where subactions run (in-process, or a remote cluster). */
  executor: Executor;
  artifacts: ArtifactCache;
  /** CPU slots shared with every other build and action of the invocation. */
  slots: SlotPool;
  /** The cache directory: build/, extract/ and logs/ live under it. */
  cacheDir: string;
  /** The host toolchain identity (goes on the artifact). */
  toolchain: string;
  limits?: SandboxLimits;
  /** Variables every build's commands get unless the element sets them (the cluster's platform). */
  env?: Readonly<Record<string, string>>;
}

export interface DependencyArtifact {
  name: string;
  strongKey: string;
  /** Its files tree. */
  files: Digest;
}

export interface BuildRequest {
  project: Project;
  node: GraphNode;
  keys: ElementKeys;
  /** The element's staged sources (a tree in CAS). */
  sources: Digest;
  /** Its build scope's artifacts, in staging order (lowest layer first). */
  deps: readonly DependencyArtifact[];
  signal?: AbortSignal;
  events?: EventSink<BuildEvent>;
}

/**
 * The variables of `config: digest-environment:` dependencies: each the
 * digest (HASH/SIZE) of that dependency staged with its runtime closure,
 * in staging order (what a chrootRootDigest names).
 */
async function digestEnvironmentOf(
  cas: LocalCas,
  req: BuildRequest,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const dep of req.node.decl.deps) {
    if (dep.digestEnvironment === undefined) continue;
    const node = req.node.buildDeps.find((b) => b.name === dep.name);
    if (node === undefined) throw new Error(`bug: ${dep.name} is not a build dependency`);
    // In the dependency's own closure order, so that it is one tree whichever element asks.
    const files = new Map(req.deps.map((a) => [a.name, a.files]));
    const trees = runtimeClosure(node).flatMap((n) => {
      const root = files.get(n.name);
      return root === undefined ? [] : [{ path: '', root }];
    });
    const d = await layerTrees(cas, trees, { signal: req.signal });
    out[dep.digestEnvironment] = `${d.hash}/${d.size}`;
  }
  return out;
}

/** The most Command digests remembered per element (the latest build's are always kept). */
const MAX_KNOWN_COMMANDS = 50_000;

/** Lines of the log shown when a build fails. */
const FAILED_LOG_LINES = 20;
/** Where the build's commands are, inside its sandbox (read-only). */
const COMMANDS_DIR = '/.specbuild/commands';
/** Where the build's script notes each phase as it starts (writable, read by the builder). */
const STATUS_DIR = '/.specbuild/status';
/** How often the builder looks for a new phase while the commands run. */
const PHASE_POLL_MS = 25;
/** The Command digests the build's specbuild-cc may find results for, in COMMANDS_DIR. */
const KNOWN_COMMANDS_FILE = 'known-commands';

export class ElementBuilder {
  private readonly extracts: ExtractCache;
  private workDir: Promise<string> | undefined;

  constructor(private readonly opts: BuilderOptions) {
    this.extracts = new ExtractCache(opts.cas, join(opts.cacheDir, 'extract'));
  }

  /** Where the log of a build is streamed to. */
  logPath(project: Project, node: GraphNode, key: string): string {
    return join(this.opts.cacheDir, 'logs', project.name, normalName(node.name), `${key}.log`);
  }

  /** Where the Command digests of the element's recorded actions on this machine are kept. */
  private knownPath(project: Project, node: GraphNode): string {
    return join(this.opts.cacheDir, 'known-commands', project.name, normalName(node.name));
  }

  /** The Command digests of these actions (those whose Action is in the CAS). */
  private async commandsOf(actions: readonly Digest[]): Promise<string[]> {
    const out: string[] = [];
    for (const d of actions) {
      const bytes = await readBlobIfPresent(this.opts.cas, d);
      if (bytes === undefined) continue;
      try {
        const c = fromBinary(ActionSchema, bytes).commandDigest;
        if (c !== undefined) out.push(digestKey(fromPb(c)));
      } catch {
        // not an Action: nothing to list
      }
    }
    return out;
  }

  /**
   * The commands whose results the element's build may find stored: those
   * its builds on this machine recorded, and those of its previous build's
   * record (pulled for priming from a remote, too). specbuild-cc scans such
   * a command's dependencies first; any other compile it runs in place once
   * when the executor is this machine's (SPECBUILD_KNOWN_COMMANDS).
   */
  private async knownCommands(req: BuildRequest): Promise<Set<string>> {
    const text = await readFile(this.knownPath(req.project, req.node), 'utf8').catch(() => '');
    const known = new Set(text.split('\n').filter((l) => /^[0-9a-f]{64}\/\d+$/.test(l)));
    const prev = await this.opts.artifacts.lookupRecord(
      req.project.name,
      normalName(req.node.name),
      req.keys.weak,
    );
    for (const c of await this.commandsOf((prev?.subactions ?? []).map((d) => fromPb(d))))
      known.add(c);
    return known;
  }

  /** Adds the commands of a build's recorded actions to the element's known ones. */
  private async rememberCommands(
    req: BuildRequest,
    known: ReadonlySet<string>,
    recorded: readonly Digest[],
  ): Promise<void> {
    const latest = await this.commandsOf(recorded);
    const all = known.size + latest.length > MAX_KNOWN_COMMANDS ? latest : [...known, ...latest];
    const file = this.knownPath(req.project, req.node);
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, [...new Set(all)].join('\n') + '\n');
    await rename(tmp, file);
  }

  /** Where a failed build's directory is kept (for `specbuild shell --build`). */
  failedDir(project: Project, node: GraphNode): string {
    return join(this.opts.cacheDir, 'failed-builds', project.name, normalName(node.name));
  }

  async build(req: BuildRequest): Promise<Artifact> {
    const decl = req.node.decl;
    const started = Date.now();
    const emit = (e: BuildEvent): void => req.events?.(e);
    emit({ type: 'build-phase', element: decl.name, phase: 'staging' });
    let files: Digest;
    let log: Digest | undefined;
    let subactions: readonly Digest[] = [];
    if (decl.kind === 'import') {
      files = await this.importFiles(req);
    } else if (decl.commands === undefined) {
      files = await emptyTree(this.opts.cas);
    } else {
      const ran = await this.runCommands(req, emit);
      files = ran.files;
      log = ran.log;
      subactions = ran.subactions;
    }
    const art = newArtifact({
      project: req.project.name,
      element: decl.name,
      kind: decl.kind,
      strongKey: req.keys.strong,
      weakKey: req.keys.weak,
      files: toPb(files),
      sources: toPb(req.sources),
      buildLog: log === undefined ? undefined : toPb(log),
      buildDependencies: req.deps.map((d) => ({ element: d.name, strongKey: d.strongKey })),
      subactions: subactions.map(toPb),
      buildStarted: timestampFromMs(started),
      buildCompleted: timestampFromMs(Date.now()),
      host: hostname(),
      toolchain: this.opts.toolchain,
      publicData: canonicalJson(decl.public),
    });
    await this.opts.artifacts.store(req.project.name, normalName(decl.name), art);
    return art;
  }

  /** An import element's artifact: `source` of its sources, at `target`. */
  private async importFiles(req: BuildRequest): Promise<Digest> {
    const cfg = req.node.decl.importConfig ?? { source: '/', target: '/' };
    const from = await subtree(this.opts.cas, req.sources, cfg.source);
    if (from === undefined)
      throw new SpecbuildError(
        'build/failed',
        `${req.node.name}: import source "${cfg.source}" is not a directory of its sources`,
        {
          provenance: req.node.decl.file,
        },
      );
    return layerTrees(this.opts.cas, [{ path: cfg.target, root: from }]);
  }

  private async runCommands(
    req: BuildRequest,
    emit: (e: BuildEvent) => void,
  ): Promise<{ files: Digest; log: Digest; subactions: readonly Digest[] }> {
    const { project, node } = req;
    const decl = node.decl;
    const commands = decl.commands;
    if (commands === undefined) throw new Error('bug: runCommands without commands');
    // This process's own directory: what a killed run left is removed by the next run.
    this.workDir ??= prepareWorkDir(join(this.opts.cacheDir, 'build')).then((w) => w.path);
    const dir = join(
      await this.workDir,
      `${project.name}-${normalName(node.name)}-${randomBytes(6).toString('hex')}`,
    );
    // Private: the directories inside are writable by the sandbox's own uid.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const root = join(dir, 'root');
    const install = join(dir, 'install');
    const cmds = join(dir, 'commands');
    const status = join(dir, 'status');
    for (const d of [root, install, cmds, status, join(dir, 'upper'), join(dir, 'scratch')])
      await mkdir(d);
    for (const d of [root, install, status]) await chmod(d, 0o777);
    const logPath = this.logPath(project, node, req.keys.strong);
    await mkdir(dirname(logPath), { recursive: true });
    emit({ type: 'build-log', element: decl.name, path: logPath });

    let server: RunningServer | undefined;
    let session: RecordingSession | undefined;
    let sockDir: string | undefined;
    let known: Set<string> | undefined;
    let ok = false;
    const release = await this.opts.slots.acquire(0, req.signal);
    try {
      await stageTree(this.opts.cas, req.sources, root, {
        writableDirectories: true,
        writableFiles: true,
        signal: req.signal,
      });
      const layers = await this.extracts.layers(
        req.deps.map((d) => d.files),
        req.signal,
      );
      const binds: Bind[] = [
        { src: root, dst: decl.buildRoot },
        { src: install, dst: decl.installRoot },
        { src: cmds, dst: COMMANDS_DIR, readonly: true },
        { src: status, dst: STATUS_DIR },
        ...wrapperBinds(),
      ];
      // The live build tree, for what reads files commands write there (speculative actions).
      emit({ type: 'build-dir', element: decl.name, path: root });
      if (decl.sandbox.remoteApisSocket !== undefined) {
        // Imported when first needed: the server brings gRPC, ~70 ms to load
        // that a build of elements without a socket (a null build) never needs.
        const { RecordingSession, startServer } = await import('../server/index.js');
        // The build's own slot goes to its first action; more come from the pool.
        const lent = new LentSlot(this.opts.slots);
        session = new RecordingSession({
          cas: this.opts.cas,
          ac: this.opts.ac,
          executor: this.opts.executor,
          acquireSlot: (signal) => lent.acquire(signal),
          events: (e) => {
            emit({ ...e, element: decl.name });
          },
        });
        // Not in `dir`: a unix socket's path has at most 107 bytes, and `dir`
        // grows with the cache directory and the element's name. Private (0700).
        sockDir = await makeSocketDir();
        const sock = join(sockDir, 'reapi.sock');
        server = await startServer({
          listen: `unix:${sock}`,
          instances: new Map([['', session.stores]]),
          // Reached only through the bind into this build's sandbox, by its own uid.
          socketMode: 0o666,
        });
        binds.push({ src: sock, dst: decl.sandbox.remoteApisSocket });
        known = await this.knownCommands(req);
        await writeFile(join(cmds, KNOWN_COMMANDS_FILE), [...known].join('\n') + '\n');
      }
      const script = await this.writeCommands(cmds, commands);
      const cwd = posix.join(decl.buildRoot, decl.commandSubdir);
      await mkdir(join(root, decl.commandSubdir), { recursive: true, mode: 0o777 }).catch(
        () => undefined,
      );
      const phases = watchPhases(join(status, 'phases'), (phase) => {
        emit({ type: 'build-phase', element: decl.name, phase });
      });
      const ran = await runInSandbox({
        argv: ['sh', '-e', script],
        env: {
          ...this.opts.env,
          ...(known === undefined
            ? {}
            : { SPECBUILD_KNOWN_COMMANDS: `${COMMANDS_DIR}/${KNOWN_COMMANDS_FILE}` }),
          ...Object.fromEntries(decl.environment),
          ...(await digestEnvironmentOf(this.opts.cas, req)),
        },
        cwd,
        layers,
        upperDir: join(dir, 'upper'),
        scratchDir: join(dir, 'scratch'),
        binds,
        stdoutFile: logPath,
        stderrFile: join(dir, 'sandbox.stderr'),
        signal: req.signal,
        limits: this.opts.limits,
      }).finally(() => phases.stop());
      if (ran.exitCode !== 0 || ran.signal !== undefined) {
        const failedLog = await this.opts.cas.writeFile(logPath);
        await this.opts.artifacts.recordFailure(
          project.name,
          normalName(node.name),
          req.keys.strong,
          failedLog,
        );
        throw new SpecbuildError(
          'build/failed',
          `${node.name} failed (${ran.signal === undefined ? `exit code ${ran.exitCode}` : `signal ${ran.signal}`})${await logTail(logPath)}`,
          {
            provenance: decl.file,
            hint: `full log: ${logPath}\nrun "specbuild shell --build ${node.name}" to look at the build directory`,
          },
        );
      }
      emit({ type: 'build-phase', element: decl.name, phase: 'capture' });
      const files = await this.capture(install);
      const log = await this.opts.cas.writeFile(logPath);
      ok = true;
      if (session !== undefined && known !== undefined)
        await this.rememberCommands(req, known, session.recorded);
      return { files, log, subactions: session?.recorded ?? [] };
    } finally {
      release();
      await server?.close();
      if (sockDir !== undefined) await rm(sockDir, { recursive: true, force: true });
      if (ok) {
        await rm(dir, { recursive: true, force: true });
      } else {
        // Kept for `specbuild shell --build`, replacing the previous failure's.
        const keep = this.failedDir(project, node);
        await rm(keep, { recursive: true, force: true });
        await mkdir(dirname(keep), { recursive: true });
        await rename(dir, keep).catch(() => rm(dir, { recursive: true, force: true }));
      }
      if (req.signal?.aborted === true)
        // eslint-disable-next-line no-unsafe-finally -- an interrupted build reports the interruption, not what it caused
        throw new SpecbuildError('build/interrupted', `${node.name}: interrupted`);
    }
  }

  /**
   * One script for all commands, each run by `sh -e` in order (BuildStream
   * runs each command as `sh -c -e`), with a marker line per phase in the log.
   */
  private async writeCommands(
    dir: string,
    c: NonNullable<GraphNode['decl']['commands']>,
  ): Promise<string> {
    const lines = ['exec 2>&1'];
    let n = 0;
    for (const [phase, list] of [
      ['configure-commands', c.configure],
      ['build-commands', c.build],
      ['install-commands', c.install],
      ['strip-commands', c.strip],
    ] as const) {
      if (list.length === 0) continue;
      lines.push(`echo '[specbuild] ${phase}'`, `echo ${phase} >> ${STATUS_DIR}/phases`);
      for (const cmd of list) {
        const file = `${String(++n).padStart(3, '0')}.sh`;
        await writeFile(join(dir, file), `${cmd}\n`, { mode: 0o644 });
        lines.push(`sh -e ${COMMANDS_DIR}/${file}`);
      }
    }
    await writeFile(join(dir, 'run.sh'), `${lines.join('\n')}\n`, { mode: 0o644 });
    return `${COMMANDS_DIR}/run.sh`;
  }

  /** The install root into CAS, as a tree. */
  private async capture(install: string): Promise<Digest> {
    const tree = await treeFromDirectory(install);
    const uploads: Uploads = new Map();
    for (const [k, d] of tree.directories) uploads.set(k, { digest: d.digest, bytes: d.bytes });
    for (const [k, f] of tree.files) uploads.set(k, { digest: f.digest, path: f.path });
    await uploadMissing(this.opts.cas, uploads);
    return tree.root;
  }
}

/** The last lines of a log, indented, for an error message. */
async function logTail(path: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) return '';
  const fh = await open(path, 'r');
  try {
    const size = Math.min(st.size, 16 * 1024);
    const buf = Buffer.alloc(size);
    await fh.read(buf, 0, size, st.size - size);
    const lines = buf.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    return `; last lines of its log:\n${lines
      .slice(-FAILED_LOG_LINES)
      .map((l) => `    ${l}`)
      .join('\n')}`;
  } finally {
    await fh.close();
  }
}

const PHASES: ReadonlySet<string> = new Set([
  'configure-commands',
  'build-commands',
  'install-commands',
  'strip-commands',
]);

/** The phases file is tiny; anything larger is not ours. */
const PHASES_FILE_LIMIT = 4096;

/**
 * A file the build's commands can write, read without trusting it: not
 * through a symbolic link, not blocking on a FIFO, only a regular file
 * within `limit` bytes ('' otherwise).
 */
async function readUntrusted(file: string, limit: number): Promise<string> {
  const fh = await open(
    file,
    fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK,
  ).catch(() => undefined);
  if (fh === undefined) return '';
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > limit) return '';
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await fh.read(buf, 0, st.size, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * Reports each phase the build's script notes in `file` (one name per line,
 * appended as each starts) while the commands run; `stop` reads it a last
 * time, so that no phase goes unreported however short. The file is in a
 * directory the build can write: it is read as untrusted, one read at a time.
 */
function watchPhases(file: string, phase: (p: BuildPhase) => void): { stop: () => Promise<void> } {
  let seen = 0;
  let reading: Promise<void> | undefined;
  const once = async (): Promise<void> => {
    const text = await readUntrusted(file, PHASES_FILE_LIMIT).catch(() => '');
    const lines = text.split('\n').slice(0, -1);
    for (; seen < lines.length; seen++) {
      const p = lines[seen] ?? '';
      if (PHASES.has(p)) phase(p as BuildPhase);
    }
  };
  const look = (): void => {
    reading ??= once().finally(() => {
      reading = undefined;
    });
  };
  const timer = setInterval(look, PHASE_POLL_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await reading;
      await once();
    },
  };
}
