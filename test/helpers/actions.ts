// Builds real REAPI Actions for tests: input files written to disk, hashed
// into a Merkle tree, uploaded with the Command and Action to a Cas.
import { mkdir, mkdtemp, rm, writeFile, chmod, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { uploadMissing, type Cas, type Uploads } from '../../src/cas/index.js';
import {
  ActionSchema,
  CommandSchema,
  digestMessage,
  toPb,
  treeFromDirectory,
  type Digest,
} from '../../src/reapi/index.js';

export interface ActionSpec {
  argv: string[];
  env?: Record<string, string>;
  /** Input files by path relative to the input root; `x:` prefix marks executables. */
  inputs?: Record<string, string>;
  /** Input symlinks by path relative to the input root, to their targets. */
  symlinks?: Record<string, string>;
  /** An input root already in the CAS, instead of `inputs`. */
  inputRoot?: Digest;
  workingDirectory?: string;
  outputPaths?: string[];
  /** Legacy output lists (REAPI 2.0). */
  outputFiles?: string[];
  outputDirectories?: string[];
  timeoutSeconds?: number;
  doNotCache?: boolean;
  platform?: Record<string, string>;
  salt?: string;
}

export async function uploadAction(cas: Cas, spec: ActionSpec): Promise<Digest> {
  const dir = await mkdtemp(join(tmpdir(), 'specbuild-action-'));
  try {
    for (const [path, content] of Object.entries(spec.inputs ?? {})) {
      const exec = content.startsWith('x:');
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), exec ? content.slice(2) : content);
      if (exec) await chmod(join(dir, path), 0o755);
    }
    for (const [path, target] of Object.entries(spec.symlinks ?? {})) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await symlink(target, join(dir, path));
    }
    const tree = await treeFromDirectory(dir);
    if (spec.inputRoot === undefined) await uploadTree(cas, tree);
    const env = Object.entries(spec.env ?? { PATH: '/usr/bin:/bin' })
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => ({ name, value }));
    const platformProps = Object.entries(spec.platform ?? {})
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, value]) => ({ name, value }));
    const command = digestMessage(
      CommandSchema,
      create(CommandSchema, {
        arguments: spec.argv,
        environmentVariables: env,
        workingDirectory: spec.workingDirectory ?? '',
        outputPaths: [...(spec.outputPaths ?? [])].sort(),
        outputFiles: spec.outputFiles ?? [],
        outputDirectories: spec.outputDirectories ?? [],
      }),
    );
    const action = digestMessage(
      ActionSchema,
      create(ActionSchema, {
        commandDigest: toPb(command.digest),
        inputRootDigest: toPb(spec.inputRoot ?? tree.root),
        timeout:
          spec.timeoutSeconds === undefined
            ? undefined
            : create(DurationSchema, { seconds: BigInt(spec.timeoutSeconds) }),
        doNotCache: spec.doNotCache ?? false,
        salt: spec.salt === undefined ? new Uint8Array(0) : Buffer.from(spec.salt),
        platform: platformProps.length > 0 ? { properties: platformProps } : undefined,
      }),
    );
    await cas.writeBlobs([command.bytes, action.bytes]);
    return action.digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Uploads a tree built from disk: its Directory messages and its files. */
export async function uploadTree(
  cas: Cas,
  tree: Awaited<ReturnType<typeof treeFromDirectory>>,
): Promise<void> {
  const items: Uploads = new Map();
  for (const [k, d] of tree.directories) items.set(k, { digest: d.digest, bytes: d.bytes });
  for (const [k, f] of tree.files) items.set(k, { digest: f.digest, path: f.path });
  await uploadMissing(cas, items);
}
