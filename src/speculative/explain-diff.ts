// How two actions differ, as `explain` reports it: their commands field by
// field (argv, environment by name, working directory, outputs, platform,
// timeout, salt) and their input files path by path. Symlinks, empty
// directories and the executable bit are not among the files compared;
// when only those differ, the caller says so.
import type { ReadAction } from './actions.js';
import type { Digest } from '../reapi/index.js';

export interface ArgvDifference {
  old: string[];
  new: string[];
  /** The first index where they differ (from 0). */
  first_difference: number;
  /** Arguments only in the old one, and only in the new one (counted, in order). */
  removed: string[];
  added: string[];
}

export interface CommandDifference {
  argv?: ArgvDifference;
  /** Variables that differ, by name (null: not set). */
  environment?: { name: string; old: string | null; new: string | null }[];
  working_directory?: { old: string; new: string };
  outputs?: { old: string[]; new: string[] };
  /** Platform properties as NAME=VALUE, the Action's and the Command's. */
  platform?: { old: string[]; new: string[] };
  /** Seconds (null: none). */
  timeout?: { old: number | null; new: number | null };
  /** Hex. */
  salt?: { old: string; new: string };
}

/** The command's outputs, relative to its working directory, sorted (REAPI 2.1 and earlier fields). */
export function outputsOf(a: ReadAction): string[] {
  const c = a.command;
  /* eslint-disable @typescript-eslint/no-deprecated -- clients before REAPI 2.1 fill these instead */
  return [...new Set([...c.outputPaths, ...c.outputFiles, ...c.outputDirectories])].sort();
  /* eslint-enable @typescript-eslint/no-deprecated */
}

function platformOf(a: ReadAction): string[] {
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- Command.platform predates Action.platform
  const old = a.command.platform?.properties ?? [];
  const props = [...(a.action.platform?.properties ?? []), ...old];
  return [...new Set(props.map((p) => `${p.name}=${p.value}`))].sort();
}

const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Elements of `a` not matched one for one in `b`, in `a`'s order. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(x, (left.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const n = left.get(x) ?? 0;
    if (n > 0) left.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

export function argvDifference(old: string[], now: string[]): ArgvDifference | undefined {
  if (sameList(old, now)) return undefined;
  let i = 0;
  while (i < old.length && i < now.length && old[i] === now[i]) i++;
  return { old, new: now, first_difference: i, removed: minus(old, now), added: minus(now, old) };
}

/** What differs between the old action's command and the new one's (empty: nothing). */
export function commandDifference(old: ReadAction, now: ReadAction): CommandDifference {
  const d: CommandDifference = {};
  const argv = argvDifference(old.command.arguments, now.command.arguments);
  if (argv !== undefined) d.argv = argv;
  const envOld = new Map(old.command.environmentVariables.map((v) => [v.name, v.value]));
  const envNew = new Map(now.command.environmentVariables.map((v) => [v.name, v.value]));
  const names = [...new Set([...envOld.keys(), ...envNew.keys()])].sort();
  const env = names.flatMap((name) => {
    const o = envOld.get(name) ?? null;
    const n = envNew.get(name) ?? null;
    return o === n ? [] : [{ name, old: o, new: n }];
  });
  if (env.length > 0) d.environment = env;
  if (old.workingDirectory !== now.workingDirectory)
    d.working_directory = { old: old.workingDirectory, new: now.workingDirectory };
  const [oo, no] = [outputsOf(old), outputsOf(now)];
  if (!sameList(oo, no)) d.outputs = { old: oo, new: no };
  const [op, np] = [platformOf(old), platformOf(now)];
  if (!sameList(op, np)) d.platform = { old: op, new: np };
  const seconds = (a: ReadAction): number | null =>
    a.action.timeout === undefined ? null : Number(a.action.timeout.seconds);
  if (seconds(old) !== seconds(now)) d.timeout = { old: seconds(old), new: seconds(now) };
  const hex = (a: ReadAction): string => Buffer.from(a.action.salt).toString('hex');
  if (hex(old) !== hex(now)) d.salt = { old: hex(old), new: hex(now) };
  return d;
}

export interface FileChange {
  path: string;
  /** null: not an input of that action. */
  old: Digest | null;
  new: Digest | null;
}

/** Input files that differ, by path (sorted). */
export function fileChanges(
  old: ReadonlyMap<string, Digest>,
  now: ReadonlyMap<string, Digest>,
): FileChange[] {
  const out: FileChange[] = [];
  for (const [path, n] of now) {
    const o = old.get(path);
    if (o === undefined) out.push({ path, old: null, new: n });
    else if (o.hash !== n.hash || o.size !== n.size) out.push({ path, old: o, new: n });
  }
  for (const [path, o] of old) if (!now.has(path)) out.push({ path, old: o, new: null });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Input files present in both with the same digest (the tie-break between candidates). */
export function sameFiles(a: ReadonlyMap<string, Digest>, b: ReadonlyMap<string, Digest>): number {
  let n = 0;
  for (const [path, d] of a) if (b.get(path)?.hash === d.hash) n++;
  return n;
}
