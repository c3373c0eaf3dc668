// Reading recorded actions and their results, and the SpeculativeActions
// blob: stored with a deterministic encoding (the same build gives the same
// bytes, hence the same digest), read back as untrusted data.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import type { ActionCache, Cas } from '../cas/index.js';
import {
  ActionSchema,
  CommandSchema,
  digestKey,
  digestMessage,
  DirectorySchema,
  fromPb,
  speculativePb,
  toPb,
  TreeSchema,
  type Action,
  type ActionResult,
  type Command,
  type Digest,
  type Directory,
} from '../reapi/index.js';

export type SpeculativeActions = speculativePb.SpeculativeActions;
export type SpeculativeAction = speculativePb.SpeculativeAction;
export type Overlay = speculativePb.Overlay;
export const OverlayType = speculativePb.Overlay_Type;

export interface ReadAction {
  digest: Digest;
  action: Action;
  /** Its Command (argv, environment, outputs), decoded. */
  command: Command;
  inputRoot: Digest;
  /** The command's working directory, relative to the input root ('' for the root). */
  workingDirectory: string;
}

/** An action and its command's working directory, read from `cas`. */
export async function readAction(cas: Cas, d: Digest): Promise<ReadAction> {
  const action = fromBinary(ActionSchema, await cas.readBlob(d));
  const command = fromBinary(CommandSchema, await cas.readBlob(fromPb(action.commandDigest)));
  return {
    digest: d,
    action,
    command,
    inputRoot: fromPb(action.inputRootDigest, 'Action.input_root_digest'),
    workingDirectory: command.workingDirectory,
  };
}

/** An output file of an action result: its path relative to the working directory and digest. */
export interface OutputFile {
  path: string;
  digest: Digest;
}

/**
 * Every file an ActionResult holds: output files, the files inside output
 * directories (through their Tree), and output symlinks that point at one of
 * those files (as that file).
 */
export async function outputFilesOf(cas: Cas, result: ActionResult): Promise<OutputFile[]> {
  const out: OutputFile[] = result.outputFiles.map((f) => ({
    path: f.path,
    digest: fromPb(f.digest),
  }));
  for (const dir of result.outputDirectories) {
    const tree = fromBinary(TreeSchema, await cas.readBlob(fromPb(dir.treeDigest)));
    const byDigest = new Map(tree.children.map((c) => [digestKey(digestOfDirectory(c)), c]));
    const walk = (d: typeof tree.root, prefix: string): void => {
      if (d === undefined) return;
      for (const f of d.files) out.push({ path: `${prefix}${f.name}`, digest: fromPb(f.digest) });
      for (const sub of d.directories)
        walk(byDigest.get(digestKey(fromPb(sub.digest))), `${prefix}${sub.name}/`);
    };
    walk(tree.root, `${dir.path}/`);
  }
  const files = new Map(out.map((f) => [f.path, f.digest]));
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- output_file_symlinks is how REAPI < 2.1 servers report them
  for (const l of [...result.outputSymlinks, ...result.outputFileSymlinks]) {
    const parent = l.path.includes('/') ? l.path.slice(0, l.path.lastIndexOf('/') + 1) : '';
    const target = l.target.startsWith('/') ? undefined : normalise(parent + l.target);
    const d = target === undefined ? undefined : files.get(target);
    if (d !== undefined) out.push({ path: l.path, digest: d });
  }
  return out;
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

function digestOfDirectory(d: Directory): Digest {
  return digestMessage(DirectorySchema, d).digest;
}

/** The result of `d` in the action cache, if any. */
export function resultOf(ac: ActionCache, d: Digest): Promise<ActionResult | undefined> {
  return ac.getActionResult(d);
}

export async function storeSpeculativeActions(cas: Cas, sa: SpeculativeActions): Promise<Digest> {
  return cas.writeBlob(toBinary(speculativePb.SpeculativeActionsSchema, sa));
}

export async function loadSpeculativeActions(cas: Cas, d: Digest): Promise<SpeculativeActions> {
  try {
    return fromBinary(speculativePb.SpeculativeActionsSchema, await cas.readBlob(d));
  } catch (e) {
    throw SpecbuildError.from(e, 'reapi/invalid-message');
  }
}

/**
 * An Overlay: what create(OverlaySchema, ...) makes (no key for an absent
 * digest), without its reflection: generation makes one per recorded input.
 */
export function newOverlay(o: {
  type: speculativePb.Overlay_Type;
  sourceElement: string;
  sourcePath: string;
  targetDigest: Digest;
  sourceActionDigest?: Digest;
  targetPaths: string[];
  /** BUILD_TREE: the phase its reader ran in. */
  phase?: string;
}): Overlay {
  const overlay: Overlay = {
    $typeName: speculativePb.OverlaySchema.typeName,
    type: o.type,
    sourceElement: o.sourceElement,
    sourcePath: o.sourcePath,
    targetDigest: toPb(o.targetDigest),
    targetPaths: o.targetPaths,
    phase: o.phase ?? '',
  };
  if (o.sourceActionDigest !== undefined) overlay.sourceActionDigest = toPb(o.sourceActionDigest);
  return overlay;
}

export function newSpeculativeActions(): SpeculativeActions {
  return create(speculativePb.SpeculativeActionsSchema, {});
}
