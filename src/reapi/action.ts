// Encoding an Action and its Command from what a tool knows about a command.
// The wrappers, the per-build session and the speculative instantiator all
// build actions here, so that the same command gives the same digest, byte
// for byte, whoever builds it.
import { create } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { digestMessage } from './directory.js';
import { toPb, type Digest } from './digest.js';
import {
  ActionSchema,
  CommandSchema,
} from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

export interface ActionSpec {
  argv: readonly string[];
  /** Environment variables; sorted by name when encoded. */
  env: readonly (readonly [string, string])[];
  /** Relative to the input root ('' for the root itself). */
  workingDirectory: string;
  /** Output paths relative to the working directory; de-duplicated and sorted. */
  outputs: readonly string[];
  /** Platform properties; none → no platform. Sorted by name, then value. */
  platform?: readonly (readonly [string, string])[];
  inputRoot: Digest;
  timeoutSeconds?: number;
  doNotCache?: boolean;
  salt?: Uint8Array;
}

/** A message and its canonical bytes. */
export interface EncodedMessage {
  digest: Digest;
  bytes: Uint8Array;
}

export interface EncodedAction {
  action: EncodedMessage;
  command: EncodedMessage;
}

const byName = (a: readonly [string, string], b: readonly [string, string]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;

/** True when `version` (`major.minor`) is below `major.minor`. */
export function apiBelow(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split('.').map(Number);
  return (a ?? 0) < major || ((a ?? 0) === major && (b ?? 0) < minor);
}

/**
 * The Action and Command for `spec`, shaped for a server whose highest REAPI
 * version is `apiHigh`: below 2.1 outputs go in output_files (a directory
 * output needs 2.1), below 2.2 the platform goes in the Command.
 */
export function encodeAction(spec: ActionSpec, apiHigh = '2.2'): EncodedAction {
  const outputs = [...new Set(spec.outputs)].sort();
  const legacyOutputs = apiBelow(apiHigh, 2, 1);
  const platform =
    spec.platform === undefined || spec.platform.length === 0
      ? undefined
      : { properties: [...spec.platform].sort(byName).map(([name, value]) => ({ name, value })) };
  const platformInCommand = apiBelow(apiHigh, 2, 2);
  const command = digestMessage(
    CommandSchema,
    create(CommandSchema, {
      arguments: [...spec.argv],
      environmentVariables: [...spec.env].sort(byName).map(([name, value]) => ({ name, value })),
      workingDirectory: spec.workingDirectory,
      outputPaths: legacyOutputs ? [] : outputs,
      outputFiles: legacyOutputs ? outputs : [],
      platform: platformInCommand ? platform : undefined,
    }),
  );
  const action = digestMessage(
    ActionSchema,
    create(ActionSchema, {
      commandDigest: toPb(command.digest),
      inputRootDigest: toPb(spec.inputRoot),
      timeout:
        spec.timeoutSeconds === undefined
          ? undefined
          : create(DurationSchema, { seconds: BigInt(spec.timeoutSeconds) }),
      doNotCache: spec.doNotCache ?? false,
      salt: spec.salt ?? new Uint8Array(0),
      platform: platformInCommand ? undefined : platform,
    }),
  );
  return { action, command };
}
