// The local executor: runs REAPI Actions from the CAS in the sandbox, with
// the input root laid above the host root, captures outputs into the CAS and
// caches successful results. Identical actions in flight run once.
import { randomBytes } from 'node:crypto';
import { availableParallelism, constants as osConstants, hostname } from 'node:os';
import { join } from 'node:path';
import { create, fromBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import {
  LruMap,
  SlotPool,
  SlotRace,
  SpecbuildError,
  type Release,
  type Slots,
} from '../core/index.js';
import {
  ExtractCache,
  readBlobIfPresent,
  MissingBlobsError,
  type ActionCache,
  type ExecuteOptions,
  type ExecuteOutcome,
  type ExecutionStage,
  type Executor,
  type FsPool,
  type LocalCas,
} from '../cas/index.js';
import {
  ActionResultSchema,
  ActionSchema,
  CommandSchema,
  ExecutedActionMetadataSchema,
  checkRelPath,
  digestKey,
  fromPb,
  toPb,
  type Action,
  type Command,
  type Digest,
  hostPlatform,
  type PlatformProperties,
} from '../reapi/index.js';
import { runInSandbox, type SandboxLimits } from '../sandbox/index.js';
import { checkPlatform, chrootOf } from './platform.js';
import { captureOutputs, outputRequest } from './capture.js';
import { DEFAULT_MAX_INPUT_ENTRIES } from './input-limit.js';
import { stageAction, stagingDirs, type StagingContext } from './staging.js';
import { StagingRemover } from './work-dir.js';

export interface ExecutorOptions {
  cas: LocalCas;
  ac: ActionCache;
  /** Where actions are staged (same file system as the CAS, for hard links). */
  workDir: string;
  /** Entries an input root may expand to (default DEFAULT_MAX_INPUT_ENTRIES). */
  maxInputEntries?: number;
  /** Actions running at once (default: the number of cores), when no `slots` are given. */
  jobs?: number;
  /** A CPU slot pool shared with the rest of the invocation (or with other processes). */
  slots?: Slots;
  /** Name reported in ExecutedActionMetadata (default: the host name). */
  workerName?: string;
  /** Timeout of actions that set none (default 1 hour). */
  defaultTimeoutMs?: number;
  /** Largest timeout an action may ask for (default 4 hours). */
  maxTimeoutMs?: number;
  /** Processes and memory of each action (default: the sandbox's defaults). */
  limits?: SandboxLimits;
  /**
   * Worker threads that stage input roots and remove staging directories
   * (outputs go through the CAS, which may have a pool of its own). Without
   * one, that work is done on the event loop.
   */
  fsPool?: FsPool;
}

/**
 * Actions (with their Commands) kept parsed and checked: a cached Execute
 * spent 9% of the server's CPU reading and parsing both blobs again. At a few
 * KB each (a compile's arguments and environment), a few MB.
 */
const PARSED_ACTIONS = 1024;

/** An Action and its Command, parsed and checked. */
interface ParsedAction {
  action: Action;
  command: Command;
  commandDigest: Digest;
}

/** A run that identical requests share while it is in flight. */
interface InFlight {
  outcome: Promise<ExecuteOutcome>;
  readonly stage: ExecutionStage;
  /** Every sharer's sink, told of each later stage. */
  listeners: Set<(stage: ExecutionStage) => void>;
  /** How the run gets its slot: each caller joining while it is queued offers its own. */
  race: SlotRace;
  /** The outcome for one more sharer, who may leave through its signal. */
  join(
    signal: AbortSignal | undefined,
    sink: (stage: ExecutionStage) => void,
  ): Promise<ExecuteOutcome>;
}

export class LocalExecutor implements Executor {
  /** Actions run on this machine. */
  readonly local = true;
  /** CPU slots: the executor's own, or the pool the whole invocation shares. */
  readonly slots: Slots;
  private readonly inFlight = new Map<string, InFlight>();
  /** Shared runs ended so far; and, per action, the count when its last one ended. */
  private ended = 0;
  private readonly lastEnded = new LruMap<string, number>(PARSED_ACTIONS);
  readonly workerName: string;
  /** Actions actually run in the sandbox (not cache hits, not de-duplicated waits). */
  runs = 0;
  private readonly remover: StagingRemover;
  private readonly parsed = new LruMap<string, ParsedAction>(PARSED_ACTIONS);
  /** What staging needs: the CAS, the pool, chrootRootDigest trees laid out once each. */
  private readonly staging: StagingContext;

  constructor(private readonly opts: ExecutorOptions) {
    this.slots = opts.slots ?? new SlotPool(opts.jobs ?? availableParallelism());
    this.workerName = opts.workerName ?? hostname();
    this.remover = new StagingRemover(opts.workDir, { pool: opts.fsPool });
    this.staging = {
      cas: opts.cas,
      pool: opts.fsPool,
      roots: new ExtractCache(opts.cas, join(opts.workDir, 'roots')),
      maxInputEntries: opts.maxInputEntries ?? DEFAULT_MAX_INPUT_ENTRIES,
    };
  }

  platform(): Promise<PlatformProperties> {
    return hostPlatform();
  }

  async execute(actionDigest: Digest, opts: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    const emit = (stage: ExecutionStage): void =>
      opts.events?.({ type: 'execution', action: actionDigest, stage });
    const { action, command } = await this.actionAndCommand(actionDigest);
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- Command.platform is how REAPI < 2.2 clients say it
    checkPlatform(action.platform ?? command.platform, await this.platform());
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- as above
    chrootOf(action.platform ?? command.platform); // a malformed one is refused before anything runs
    const lookup =
      opts.skipCacheLookup !== true && opts.cacheChecked !== true && !action.doNotCache;
    const key = digestKey(actionDigest);
    const checkedAt = this.ended;
    if (lookup) {
      emit('cache-check');
      const hit = await this.opts.ac.getActionResult(actionDigest);
      if (hit !== undefined) {
        emit('completed');
        return { result: hit, cached: true };
      }
      // A run of this action that ended while the cache was read (after the
      // read began, so its result may be in the cache now, unseen): look
      // again rather than run it a second time (priming would count that
      // second run as its own).
      if (!this.inFlight.has(key) && (this.lastEnded.get(key) ?? -1) >= checkedAt) {
        const now = await this.opts.ac.getActionResult(actionDigest);
        if (now !== undefined) {
          emit('completed');
          return { result: now, cached: true };
        }
      }
    }
    if (action.doNotCache) {
      emit('queued');
      // Never shared: each request runs.
      return this.run(
        actionDigest,
        action,
        command,
        (sig) => this.slotFor(opts, sig),
        opts.signal,
        emit,
      ).finally(() => {
        emit('completed');
      });
    }
    let run = this.inFlight.get(key);
    const joined = run !== undefined;
    if (run === undefined) {
      run = this.startShared(key, actionDigest, action, command, opts);
    }
    // Joins the run: told its stage now and each later one; still queued, it
    // may start with this caller's slot if that comes first.
    emit(run.stage);
    run.listeners.add(emit);
    if (run.stage === 'queued') run.race.offer((sig) => this.slotFor(opts, sig));
    const outcome = run.join(opts.signal, emit);
    return joined ? outcome.then((o) => ({ ...o, joined: true })) : outcome;
  }

  /**
   * Starts a run that identical requests share while it is in flight. It is
   * cancelled only when every sharer has cancelled (a sharer without a
   * signal never does): one client going away never fails another's wait.
   */
  private startShared(
    key: string,
    digest: Digest,
    action: Action,
    command: Command,
    first: ExecuteOptions,
  ): InFlight {
    const abort = new AbortController();
    const listeners = new Set<(stage: ExecutionStage) => void>();
    const state: { stage: ExecutionStage; waiting: number; pinned: boolean } = {
      stage: 'queued',
      waiting: 0,
      pinned: false,
    };
    const tell = (stage: ExecutionStage): void => {
      state.stage = stage;
      for (const l of listeners) l(stage);
    };
    const race = new SlotRace(abort.signal);
    race.offer((sig) => this.slotFor(first, sig));
    const outcome = this.run(digest, action, command, () => race.slot, abort.signal, tell).finally(
      () => {
        this.inFlight.delete(key);
        this.lastEnded.set(key, this.ended++);
        tell('completed');
      },
    );
    // Sharers that left must not see an unhandled rejection.
    outcome.catch(() => undefined);
    const entry: InFlight = {
      outcome,
      listeners,
      race,
      get stage() {
        return state.stage;
      },
      join(signal, sink) {
        if (signal === undefined) {
          state.pinned = true;
          return outcome;
        }
        signal.throwIfAborted();
        state.waiting++;
        return new Promise<ExecuteOutcome>((resolve, reject) => {
          const leave = (): void => {
            listeners.delete(sink);
            state.waiting--;
            const last = state.waiting === 0 && !state.pinned;
            if (last) abort.abort(signal.reason);
            // The last one out of a started run is answered (by the outcome,
            // below) once the run has stopped and removed its staging
            // directory; others at once.
            if (!last || state.stage !== 'executing') reject(signal.reason as Error);
          };
          signal.addEventListener('abort', leave, { once: true });
          outcome.then(resolve, reject).finally(() => {
            signal.removeEventListener('abort', leave);
          });
        });
      },
    };
    this.inFlight.set(key, entry);
    return entry;
  }

  /**
   * The action and its command, parsed and checked once per digest (blobs
   * never change); both blobs must still be in the CAS, as when first read.
   */
  private async actionAndCommand(d: Digest): Promise<ParsedAction> {
    const key = digestKey(d);
    const known = this.parsed.get(key);
    const cas = this.opts.cas;
    if (known !== undefined && cas.has(d) && cas.has(known.commandDigest)) return known;
    const action = await this.readAction(d);
    const command = await this.readCommand(action);
    const parsed = {
      action,
      command,
      commandDigest: fromPb(action.commandDigest, 'Action.command_digest'),
    };
    this.parsed.set(key, parsed);
    return parsed;
  }

  /** A blob the action needs; absent → MissingBlobsError naming it. */
  private async readNeeded(d: Digest): Promise<Uint8Array> {
    const data = await readBlobIfPresent(this.opts.cas, d);
    if (data === undefined) throw new MissingBlobsError([d]);
    return data;
  }

  private async readAction(d: Digest): Promise<Action> {
    const bytes = await this.readNeeded(d);
    try {
      return fromBinary(ActionSchema, bytes);
    } catch (e) {
      throw new SpecbuildError('exec/invalid-action', `Action ${digestKey(d)} does not parse`, {
        cause: e,
      });
    }
  }

  private async readCommand(action: Action): Promise<Command> {
    const d = fromPb(action.commandDigest, 'Action.command_digest');
    const bytes = await this.readNeeded(d);
    let cmd: Command;
    try {
      cmd = fromBinary(CommandSchema, bytes);
    } catch (e) {
      throw new SpecbuildError('exec/invalid-action', `Command ${digestKey(d)} does not parse`, {
        cause: e,
      });
    }
    if (cmd.arguments.length === 0 || cmd.arguments[0] === '') {
      throw new SpecbuildError('exec/invalid-action', 'Command.arguments is empty');
    }
    for (const v of cmd.environmentVariables) {
      if (
        v.name === '' ||
        v.name.includes('=') ||
        v.name.includes('\0') ||
        v.value.includes('\0')
      ) {
        throw new SpecbuildError(
          'exec/invalid-action',
          `invalid environment variable "${v.name.slice(0, 80)}"`,
        );
      }
    }
    checkRelPath(cmd.workingDirectory, 'Command.working_directory');
    /* eslint-disable @typescript-eslint/no-deprecated -- legacy output lists are still valid input */
    for (const p of [...cmd.outputPaths, ...cmd.outputFiles, ...cmd.outputDirectories]) {
      checkRelPath(p, 'Command output path');
    }
    /* eslint-enable @typescript-eslint/no-deprecated */
    return cmd;
  }

  private timeoutMs(action: Action): number {
    const max = this.opts.maxTimeoutMs ?? 4 * 3600_000;
    const t = action.timeout;
    if (t === undefined) return Math.min(this.opts.defaultTimeoutMs ?? 3600_000, max);
    const ms = Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
    if (ms <= 0 || ms > max) {
      throw new SpecbuildError(
        'exec/invalid-action',
        `Action.timeout ${ms} ms is not within (0, ${max}] ms`,
      );
    }
    return ms;
  }

  /** A slot for a run: the caller's way (a build's lent slot), else the pool at its priority. */
  private slotFor(opts: ExecuteOptions, signal: AbortSignal | undefined): Promise<Release> {
    return opts.acquireSlot !== undefined
      ? opts.acquireSlot(signal)
      : this.slots.acquire(opts.priority ?? 0, signal);
  }

  private async run(
    actionDigest: Digest,
    action: Action,
    command: Command,
    slot: (signal: AbortSignal | undefined) => Promise<Release>,
    signal: AbortSignal | undefined,
    stage: (s: ExecutionStage) => void,
  ): Promise<ExecuteOutcome> {
    const queued = timestampNow();
    const timeout = this.timeoutMs(action);
    const inputRoot = fromPb(action.inputRootDigest, 'Action.input_root_digest');
    const release = await slot(signal);
    try {
      return await this.runWithSlot(
        actionDigest,
        action,
        command,
        signal,
        stage,
        queued,
        timeout,
        inputRoot,
      );
    } finally {
      release();
    }
  }

  private async runWithSlot(
    actionDigest: Digest,
    action: Action,
    command: Command,
    signal: AbortSignal | undefined,
    stage: (s: ExecutionStage) => void,
    queued: ReturnType<typeof timestampNow>,
    timeout: number,
    inputRoot: Digest,
  ): Promise<ExecuteOutcome> {
    signal?.throwIfAborted();
    stage('executing');
    this.runs++;
    const meta = create(ExecutedActionMetadataSchema, {
      worker: this.workerName,
      queuedTimestamp: queued,
    });
    meta.workerStartTimestamp = timestampNow();
    const dirs = stagingDirs(
      join(this.opts.workDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`),
    );
    const { dir, layer, upper, scratch } = dirs;
    const cas = this.opts.cas;
    const { request, parents } = outputRequest(command);
    const wd = command.workingDirectory;
    let failed = false;
    try {
      meta.inputFetchStartTimestamp = timestampNow();
      const rootDir = await stageAction(this.staging, dirs, {
        inputRoot,
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- Command.platform (REAPI < 2.2)
        chroot: chrootOf(action.platform ?? command.platform),
        writableParents: parents,
        signal,
      });
      meta.inputFetchCompletedTimestamp = timestampNow();
      const result = create(ActionResultSchema, {});
      const stdoutFile = join(dir, 'stdout');
      const stderrFile = join(dir, 'stderr');
      meta.executionStartTimestamp = timestampNow();
      const ran = await runInSandbox({
        argv: command.arguments,
        env: Object.fromEntries(command.environmentVariables.map((v) => [v.name, v.value])),
        cwd: `/${wd}`,
        // With a chrootRootDigest, its tree is the root: nothing of the host's.
        layers: rootDir === undefined ? [layer] : [rootDir, layer],
        noHost: rootDir !== undefined,
        upperDir: upper,
        scratchDir: scratch,
        timeoutMs: timeout,
        limits: this.opts.limits,
        stdoutFile,
        stderrFile,
        signal,
        capture: async (root) => {
          meta.executionCompletedTimestamp = timestampNow();
          meta.outputUploadStartTimestamp = timestampNow();
          await captureOutputs(cas, join(root, wd), request, result);
        },
      });
      meta.executionCompletedTimestamp ??= timestampNow();
      meta.outputUploadStartTimestamp ??= timestampNow();
      result.stdoutDigest = toPb(await cas.writeFile(stdoutFile));
      result.stderrDigest = toPb(await cas.writeFile(stderrFile));
      result.exitCode = ran.signal === undefined ? ran.exitCode : 128 + signalNumber(ran.signal);
      meta.outputUploadCompletedTimestamp = timestampNow();
      meta.workerCompletedTimestamp = timestampNow();
      result.executionMetadata = meta;
      if (ran.timedOut) {
        return {
          result,
          cached: false,
          error: new SpecbuildError(
            'exec/timeout',
            `action ${digestKey(actionDigest)} timed out after ${timeout} ms`,
          ),
        };
      }
      if (result.exitCode === 0 && !action.doNotCache) {
        await this.opts.ac.updateActionResult(actionDigest, result);
      }
      return { result, cached: false };
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // A failed or cancelled run's caller is answered once its staging is gone.
      if (failed) await this.remover.removeNow(dir);
      else await this.remover.remove(dir);
    }
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  const n = (osConstants.signals as Record<string, number | undefined>)[sig];
  return n ?? 0;
}
