// `specbuild explain`: why the actions of an element's last build missed the
// cache. From the build's trace (trace.ts), each action that missed is
// matched to the recorded action of the previous build it most resembles
// (same command and outputs, else same outputs, else same argv), and the two
// are compared: command fields and input files, each file labeled with where
// it came from. When priming had a stored action for it, the primed action is
// compared with the build's the same way, which says why it did not match.
import { fromBinary } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import {
  readBlobIfPresent,
  type ActionCache,
  type Artifact,
  type ArtifactCache,
  type Cas,
} from '../cas/index.js';
import { normalName, type ElementName } from '../project/index.js';
import { digestKey, fromPb, parseDigestString, specbuildPb, type Digest } from '../reapi/index.js';
import { loadSpeculativeActions, readAction, type ReadAction } from './actions.js';
import {
  commandDifference,
  fileChanges,
  outputsOf,
  sameFiles,
  type CommandDifference,
  type FileChange,
} from './explain-diff.js';
import { Labeler, type BuildContext, type InputOrigin } from './explain-label.js';
import type { PrimeOutcome } from './events.js';
import { primes, type Mode } from './mode.js';
import { TreeFiles } from './tree-files.js';
import type { BuildTrace, TracedPrime } from './trace.js';

export type { InputOrigin } from './explain-label.js';
export type { CommandDifference, ArgvDifference } from './explain-diff.js';

export interface ExplainEnv {
  cas: Cas;
  ac: ActionCache;
  artifacts: ArtifactCache;
}

export interface FileVersion {
  digest: string;
  origin: InputOrigin;
}

/** An input file that differs: null on the side where it is not an input. */
export interface InputDifference {
  path: string;
  old: FileVersion | null;
  new: FileVersion | null;
}

/** How the previous action was chosen, best first. */
export type MatchKind =
  'same-command' | 'same-command-except-inputs' | 'same-outputs' | 'same-argv';

export interface PreviousMatch {
  by: MatchKind;
  action: string;
  /** Its place among the previous build's recorded actions (from 0). */
  index: number;
  command: CommandDifference;
  inputs: InputDifference[];
  /** When the inputs differ in something other than files. */
  note?: string;
}

export type PrimingStatus =
  /** The build's mode does not prime. */
  | 'off'
  /** No speculative actions were stored under the element's weak key. */
  | 'nothing-stored'
  /** None of the stored ones is this action's. */
  | 'not-stored'
  /** Stored, but no priming outcome was reported for it. */
  | 'not-primed'
  | PrimeOutcome;

export interface PrimingMismatch {
  /** One short phrase per difference, e.g. "new input usr/include/x.h". */
  reasons: string[];
  command: CommandDifference;
  /** Old: the primed action's input; new: the build's. */
  inputs: InputDifference[];
  note?: string;
}

export interface PrimingExplanation {
  status: PrimingStatus;
  /** The stored action priming started from, and what it made of it. */
  base?: string;
  adapted?: string;
  /** Why, in words. */
  reason: string;
  /** The primed action against the build's, when priming made one. */
  mismatch?: PrimingMismatch;
}

export interface MissExplanation {
  action: string;
  /** Its place among the build's recorded actions (from 0). */
  index: number;
  argv: string[];
  working_directory: string;
  outputs: string[];
  previous: PreviousMatch | null;
  /** Why there is no previous action, or why the action cannot be read. */
  note?: string;
  priming: PrimingExplanation;
}

export interface Explanation {
  version: 1;
  project: string;
  element: string;
  strong_key: string;
  weak_key: string;
  mode: Mode;
  finished: string;
  previous: {
    strong_key: string;
    record: string;
    via: 'weak-key' | 'latest';
    /** Its record is still in the cache. */
    found: boolean;
  } | null;
  actions: { total: number; hits_primed: number; hits_cached: number; misses: number };
  misses: MissExplanation[];
}

interface Candidate {
  index: number;
  read: ReadAction;
  key: string;
  argv: string;
  used: boolean;
}

const ONLY_METADATA = 'the input trees differ only in symlinks, directories or executable bits';

/** The explanation of the traced build's cache misses. */
export async function explainBuild(env: ExplainEnv, trace: BuildTrace): Promise<Explanation> {
  const trees = new TreeFiles(env.cas);
  const current = await readRecord(env.cas, trace.record);
  if (current === undefined)
    throw new SpecbuildError(
      'artifact/not-cached',
      `the record of ${trace.element}'s build under key ${trace.strong_key} is no longer in the cache`,
      { hint: `build it again: specbuild build ${trace.element}` },
    );
  const previous =
    trace.previous === null ? undefined : await readRecord(env.cas, trace.previous.record);
  const now = new Labeler(env.cas, env.ac, trees, await contextOf(env, trace, current));
  const before =
    previous === undefined
      ? undefined
      : new Labeler(env.cas, env.ac, trees, await contextOf(env, trace, previous));

  const count = (o: string): number => trace.actions.filter((a) => a.outcome === o).length;
  const explanation: Explanation = {
    version: 1,
    project: trace.project,
    element: trace.element,
    strong_key: trace.strong_key,
    weak_key: trace.weak_key,
    mode: trace.mode,
    finished: trace.finished,
    previous: trace.previous === null ? null : { ...trace.previous, found: previous !== undefined },
    actions: {
      total: trace.actions.length,
      hits_primed: count('hit-primed'),
      hits_cached: count('hit-cached'),
      misses: count('miss'),
    },
    misses: [],
  };
  const misses = trace.actions.filter((a) => a.outcome === 'miss');
  if (misses.length === 0) return explanation;

  // The previous build's actions this one did not hit: the candidates.
  const recorded = current.subactions.map((d) => digestKey(fromPb(d)));
  const hit = new Set(recorded);
  const candidates: Candidate[] = [];
  let unreadable = 0;
  for (const [index, pb] of (previous?.subactions ?? []).entries()) {
    const d = fromPb(pb);
    if (hit.has(digestKey(d))) continue;
    const read = await readAction(env.cas, d).catch(() => undefined);
    if (read === undefined) {
      unreadable++;
      continue;
    }
    candidates.push({
      index,
      read,
      key: shapeKey(read),
      argv: read.command.arguments.join('\0'),
      used: false,
    });
  }
  const stored = await storedBases(env.cas, trace);

  for (const miss of misses) {
    const index = recorded.indexOf(miss.action);
    const base: MissExplanation = {
      action: miss.action,
      index,
      argv: [],
      working_directory: '',
      outputs: [],
      previous: null,
      priming: { status: 'off', reason: '' },
    };
    const m = await readAction(env.cas, parseDigestString(miss.action)).catch(() => undefined);
    if (m === undefined) {
      base.note = 'its Action is no longer in the cache';
      base.priming = {
        status: 'not-primed',
        reason: 'unknown: its Action is no longer in the cache',
      };
      explanation.misses.push(base);
      continue;
    }
    base.argv = m.command.arguments;
    base.working_directory = m.workingDirectory;
    base.outputs = outputsOf(m);
    const found = await bestMatch(trees, m, index, candidates);
    let p: ReadAction | undefined;
    // Without a match, every previous action counts as earlier.
    let pIndex = Number.MAX_SAFE_INTEGER;
    if (found !== undefined) {
      found.candidate.used = true;
      p = found.candidate.read;
      pIndex = found.candidate.index;
      const { inputs, note } = await compareInputs(trees, p, m, (c) =>
        label(c, now, index, before, pIndex),
      );
      base.previous = {
        by: found.by,
        action: digestKey(p.digest),
        index: pIndex,
        command: commandDifference(p, m),
        inputs,
      };
      if (note !== undefined) base.previous.note = note;
    } else {
      base.note =
        trace.previous === null
          ? 'no previous build of the element is recorded'
          : previous === undefined
            ? "the previous build's record is no longer in the cache"
            : `no action of the previous build resembles it (same outputs or same command)${unreadable === 0 ? '' : `; ${unreadable} of its actions are no longer in the cache`}`;
    }
    base.priming = await explainPriming(env, trees, trace, stored, m, p, async (c) => {
      // What priming used was meant to be current: the current build first.
      const o = await now.label(c.path, c.digest, index);
      // Not placed by this build (unknown, or only "somewhere in its build tree"): the previous build's.
      const placed = o.type !== 'unknown' && o.type !== 'build-tree';
      if (c.side === 'new' || placed || before === undefined) return o;
      return before.label(c.path, c.digest, pIndex);
    });
    explanation.misses.push(base);
  }
  return explanation;
}

/** Working directory and outputs: what makes two actions the "same step". */
function shapeKey(a: ReadAction): string {
  return `${a.workingDirectory}\0${outputsOf(a).join('\0')}`;
}

async function bestMatch(
  trees: TreeFiles,
  m: ReadAction,
  index: number,
  candidates: Candidate[],
): Promise<{ candidate: Candidate; by: MatchKind } | undefined> {
  const open = candidates.filter((c) => !c.used);
  const shape = shapeKey(m);
  const argv = m.command.arguments.join('\0');
  const sameShape = open.filter((c) => c.key === shape);
  const tiers: [MatchKind, () => Promise<Candidate[]>][] = [
    ['same-command', () => Promise.resolve(sameShape.filter((c) => c.argv === argv))],
    [
      'same-command-except-inputs',
      async () => {
        const mine = await inputArgv(trees, m);
        const out: Candidate[] = [];
        for (const c of sameShape) if ((await inputArgv(trees, c.read)) === mine) out.push(c);
        return out;
      },
    ],
    ['same-outputs', () => Promise.resolve(sameShape)],
    ['same-argv', () => Promise.resolve(open.filter((c) => c.argv === argv))],
  ];
  for (const [by, find] of tiers) {
    const found = await find();
    if (found.length === 0) continue;
    if (found.length === 1 && found[0] !== undefined) return { candidate: found[0], by };
    // Ties (a configure probe writing conftest.o again and again): the most
    // inputs in common, then the nearest place in the build.
    const mine = await trees.paths(m.inputRoot).catch(() => new Map<string, Digest>());
    const scored = await Promise.all(
      found.map(async (c) => ({
        c,
        same: sameFiles(mine, await trees.paths(c.read.inputRoot).catch(() => new Map())),
      })),
    );
    scored.sort(
      (a, b) =>
        b.same - a.same ||
        Math.abs(a.c.index - index) - Math.abs(b.c.index - index) ||
        a.c.index - b.c.index,
    );
    const best = scored[0];
    if (best !== undefined) return { candidate: best.c, by };
  }
  return undefined;
}

/**
 * The argv with each argument that names an input file of the action
 * (relative to its working directory, or absolute) as <input>: `ar rcs
 * liba.a a.o b.o` and `ar rcs liba.a a.o c.o` are the same step.
 */
export async function inputArgv(trees: TreeFiles, a: ReadAction): Promise<string> {
  const files = await trees.paths(a.inputRoot).catch(() => new Map<string, Digest>());
  return a.command.arguments
    .map((t, i) => {
      if (i === 0 || t.startsWith('-')) return t;
      const p = normalise(t.startsWith('/') ? t : `${a.workingDirectory}/${t}`);
      return files.has(p) ? '<input>' : t;
    })
    .join('\0');
}

function normalise(p: string): string {
  const parts: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return parts.join('/');
}

type LabelOf = (c: { path: string; digest: Digest; side: 'old' | 'new' }) => Promise<InputOrigin>;

/** The input files of `old` and `now` that differ, each side labeled. */
async function compareInputs(
  trees: TreeFiles,
  old: ReadAction,
  now: ReadAction,
  labelOf: LabelOf,
): Promise<{ inputs: InputDifference[]; note?: string }> {
  if (old.inputRoot.hash === now.inputRoot.hash) return { inputs: [] };
  let changes: FileChange[];
  try {
    changes = fileChanges(await trees.paths(old.inputRoot), await trees.paths(now.inputRoot));
  } catch {
    return { inputs: [], note: 'an input tree is no longer in the cache' };
  }
  if (changes.length === 0) return { inputs: [], note: ONLY_METADATA };
  const side = async (
    path: string,
    d: Digest | null,
    which: 'old' | 'new',
  ): Promise<FileVersion | null> =>
    d === null
      ? null
      : { digest: digestKey(d), origin: await labelOf({ path, digest: d, side: which }) };
  const inputs: InputDifference[] = [];
  for (const c of changes)
    inputs.push({
      path: c.path,
      old: await side(c.path, c.old, 'old'),
      new: await side(c.path, c.new, 'new'),
    });
  return { inputs };
}

/**
 * A file's origin: the new side in the current build; the old side in the
 * previous build, unless the current one explains it (a primed input).
 */
function label(
  c: { path: string; digest: Digest; side: 'old' | 'new' },
  now: Labeler,
  index: number,
  before: Labeler | undefined,
  beforeIndex: number,
): Promise<InputOrigin> {
  if (c.side === 'new' || before === undefined) return now.label(c.path, c.digest, index);
  return before.label(c.path, c.digest, beforeIndex);
}

/** Why the primed action (if any) was not the build's. */
async function explainPriming(
  env: ExplainEnv,
  trees: TreeFiles,
  trace: BuildTrace,
  stored: Set<string> | undefined,
  m: ReadAction,
  p: ReadAction | undefined,
  labelOf: LabelOf,
): Promise<PrimingExplanation> {
  if (!primes(trace.mode)) return { status: 'off', reason: `off in mode ${trace.mode}` };
  if (trace.primed_from === null)
    return {
      status: 'nothing-stored',
      reason: 'no speculative actions were stored under the weak key to prime from',
    };
  const pKey = p === undefined ? undefined : digestKey(p.digest);
  let entry: TracedPrime | undefined = trace.primes.find((e) => e.base === pKey);
  if (entry === undefined) {
    // A stored action for the same step, when the previous one matched none.
    const shape = shapeKey(m);
    for (const e of trace.primes) {
      const b = await readAction(env.cas, parseDigestString(e.base)).catch(() => undefined);
      if (b !== undefined && shapeKey(b) === shape) {
        entry = e;
        break;
      }
    }
  }
  if (entry === undefined) {
    if (pKey !== undefined && stored?.has(pKey) === true)
      return {
        status: 'not-primed',
        base: pKey,
        reason: 'stored, but priming reported nothing for it',
      };
    return {
      status: 'not-stored',
      reason:
        pKey === undefined
          ? 'no stored speculative action makes its outputs'
          : 'no speculative action was stored for it (none of its inputs is tracked)',
    };
  }
  const out: PrimingExplanation = { status: entry.outcome, base: entry.base, reason: '' };
  if (entry.adapted !== undefined) out.adapted = entry.adapted;
  let primed: string;
  switch (entry.outcome) {
    case 'deferred':
    case 'unresolved':
    case 'failed':
    case 'skipped':
      out.reason = `${entry.outcome}: ${entry.reason ?? 'no reason given'}`;
      return out;
    case 'unchanged':
      primed = entry.base;
      out.reason = 'primed as recorded (nothing it tracks had changed)';
      break;
    case 'instantiated':
    case 'submitted':
    case 'completed':
      primed = entry.adapted ?? entry.base;
      out.reason = `primed with adapted inputs (${entry.outcome})`;
      break;
  }
  if (primed === digestKey(m.digest)) {
    out.reason = `${out.reason}; it was this very action, not finished when the build needed it`;
    return out;
  }
  const a = await readAction(env.cas, parseDigestString(primed)).catch(() => undefined);
  if (a === undefined) {
    out.reason = `${out.reason}; the primed action is not stored (never submitted)`;
    return out;
  }
  const command = commandDifference(a, m);
  const { inputs, note } = await compareInputs(trees, a, m, labelOf);
  const reasons: string[] = [];
  for (const d of inputs) {
    if (d.old === null) reasons.push(`new input ${d.path}`);
    else if (d.new === null) reasons.push(`${d.path} no longer read`);
    else reasons.push(`${d.path} differs`);
  }
  if (command.argv !== undefined) reasons.push('changed command line');
  if (command.environment !== undefined) reasons.push('changed environment');
  for (const k of ['working_directory', 'outputs', 'platform', 'timeout', 'salt'] as const)
    if (command[k] !== undefined) reasons.push(`changed ${k.replace('_', ' ')}`);
  if (note !== undefined) reasons.push(note);
  out.mismatch = { reasons, command, inputs };
  if (note !== undefined) out.mismatch.note = note;
  return out;
}

/** The base actions of the speculative actions priming loaded (undefined: none, or unreadable). */
async function storedBases(cas: Cas, trace: BuildTrace): Promise<Set<string> | undefined> {
  if (trace.primed_from === null) return undefined;
  try {
    const sa = await loadSpeculativeActions(cas, parseDigestString(trace.primed_from));
    return new Set(sa.actions.map((a) => digestKey(fromPb(a.baseActionDigest))));
  } catch {
    return undefined;
  }
}

async function readRecord(cas: Cas, record: string): Promise<Artifact | undefined> {
  const bytes = await readBlobIfPresent(cas, parseDigestString(record));
  if (bytes === undefined) return undefined;
  try {
    return fromBinary(specbuildPb.ArtifactSchema, bytes);
  } catch {
    return undefined;
  }
}

/** The build a record describes: its sources, its dependencies' artifacts, its actions. */
async function contextOf(env: ExplainEnv, trace: BuildTrace, art: Artifact): Promise<BuildContext> {
  const deps: BuildContext['deps'] = [];
  for (const d of art.buildDependencies) {
    const rec = await env.artifacts
      .lookupRecord(trace.project, normalName(d.element as ElementName), d.strongKey)
      .catch(() => undefined);
    if (rec?.files !== undefined) deps.push({ element: d.element, files: fromPb(rec.files) });
  }
  return {
    element: trace.element,
    buildRoot: trace.build_root.replace(/^\/+/, '').replace(/\/+$/, ''),
    sources: art.sources === undefined ? undefined : fromPb(art.sources),
    deps,
    actions: art.subactions.map((d) => fromPb(d)),
  };
}
