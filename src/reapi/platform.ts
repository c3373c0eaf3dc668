// The platform of this host: OS family, ISA, and a property that identifies
// the host toolchain, so caches never mix results from different toolchains.
// The executor offers exactly these (exec/platform.ts checks actions against
// them) and the wrappers put them in their actions; hence it lives this low.
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { arch } from 'node:os';

import { SpecbuildError } from '../core/index.js';
import { digestOf, digestOfFile, parseDigest, parseDigestString, type Digest } from './digest.js';
import { changedLately, fileStatOf, sameFileStat, type FileStat } from './file-stat.js';
import type { Platform } from './gen/build/bazel/remote/execution/v2/remote_execution_pb.js';

/** Property naming the host toolchain (hash of os-release and compiler binaries). */
export const TOOLCHAIN_PROPERTY = 'specbuild-toolchain';

/** Binaries whose contents define "the toolchain"; absent ones are skipped. */
export const TOOLCHAIN_BINARIES: readonly string[] = [
  '/usr/bin/cc',
  '/usr/bin/c++',
  '/usr/bin/gcc',
  '/usr/bin/g++',
  '/usr/bin/clang',
  '/usr/bin/as',
  '/usr/bin/ld',
];

export type PlatformProperties = ReadonlyMap<string, string>;

function isa(): string {
  const a = arch();
  return a === 'x64' ? 'x86-64' : a === 'arm64' ? 'aarch64' : a;
}

let hostPromise: Promise<PlatformProperties> | undefined;

/**
 * A file the toolchain property was computed from: its path, the real path
 * it resolved to (undefined for os-release, read through its path), and its
 * digest (undefined when it was absent).
 */
export interface ToolchainFile {
  path: string;
  real: string | undefined;
  digest: Digest | undefined;
  /**
   * The stat of the file hashed, the same before and after its bytes were
   * read (so the digest is of the file with this stat); undefined when it
   * moved meanwhile. A stat cache may take the digest on its word for it.
   */
  stat?: FileStat;
}

async function fileStat(path: string): Promise<FileStat | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  return st === undefined ? undefined : fileStatOf(st);
}

/** Whether a file with this stat last changed long enough ago for a stat cache to believe it. */
function settled(st: FileStat | undefined): boolean {
  return (
    st !== undefined && !changedLately(BigInt(st.mtimeNs), BigInt(st.ctimeNs), st.nlink, Date.now())
  );
}

/** What hostPlatform computed, as plain data: another thread of this process takes it (seedHostPlatform). */
export interface HostSnapshot {
  properties: [string, string][];
  files: ToolchainFile[];
}

let toolchainFiles: ToolchainFile[] = [];

/** The files hostPlatform() hashed (empty before it ran). */
export async function hostToolchainFiles(): Promise<readonly ToolchainFile[]> {
  await hostPlatform();
  return toolchainFiles;
}

/** The host's properties, computed once per process. */
export function hostPlatform(): Promise<PlatformProperties> {
  hostPromise ??= (async () => {
    const h = createHash('sha256');
    const files: ToolchainFile[] = [];
    const release = await readFile('/etc/os-release').catch(() => undefined);
    h.update(release ?? Buffer.from('no os-release'));
    files.push({
      path: '/etc/os-release',
      real: undefined,
      digest: release === undefined ? undefined : digestOf(release),
    });
    // cc and gcc are one binary (c++ and g++ too): each real file hashed once.
    const hashed = new Map<string, { digest: Digest; stat?: FileStat }>();
    for (const bin of TOOLCHAIN_BINARIES) {
      try {
        const real = await realpath(bin);
        let got = hashed.get(real);
        if (got === undefined) {
          const before = await fileStat(real);
          const digest = await digestOfFile(real);
          const after = await fileStat(real);
          // Kept only as a stat cache would take it: unchanged while read,
          // and not changed within the second before (it may change again
          // within the same timestamp tick; stat-cache.ts).
          got =
            sameFileStat(before, after) && settled(after) ? { digest, stat: after } : { digest };
          hashed.set(real, got);
        }
        h.update(`\n${bin} ${got.digest.hash}`);
        files.push({ path: bin, real, ...got });
      } catch {
        h.update(`\n${bin} absent`);
        files.push({ path: bin, real: undefined, digest: undefined });
      }
    }
    toolchainFiles = files;
    return new Map([
      ['OSFamily', 'linux'],
      ['ISA', isa()],
      [TOOLCHAIN_PROPERTY, h.digest('hex').slice(0, 16)],
    ]);
  })();
  return hostPromise;
}

/** hostPlatform's result and files, for seedHostPlatform in another thread. */
export async function hostSnapshot(): Promise<HostSnapshot> {
  const properties = [...(await hostPlatform())];
  return { properties, files: toolchainFiles.map((f) => ({ ...f })) };
}

/**
 * Takes what another thread of this process computed (hostSnapshot) as this
 * thread's host platform: the same machine, the same files, hashed once
 * (a wrapper daemon's workers each hashed ~6 MB of binaries, 75 ms of CPU,
 * at their first compile). Ignored once this thread computed its own.
 */
export function seedHostPlatform(snapshot: HostSnapshot): void {
  if (hostPromise !== undefined) return;
  toolchainFiles = snapshot.files.map((f) => ({
    ...f,
    digest: f.digest === undefined ? undefined : parseDigest(f.digest.hash, f.digest.size),
  }));
  hostPromise = Promise.resolve(new Map(snapshot.properties));
}

/**
 * The property that gives an action's root file system: the digest of a tree
 * (HASH/SIZE) to run it in instead of this host's (as BuildStream's and
 * buildbox's `chrootRootDigest`, which recc sets from
 * RECC_REMOTE_PLATFORM_chrootRootDigest). Any value is offered: the tree is
 * the action's to bring.
 */
export const CHROOT_PROPERTY = 'chrootRootDigest';

/** The action's chroot tree, if its platform names one (a malformed value is INVALID_ARGUMENT). */
export function chrootOf(platform: Platform | undefined): Digest | undefined {
  const values = (platform?.properties ?? []).filter((p) => p.name === CHROOT_PROPERTY);
  if (values.length === 0) return undefined;
  if (values.length > 1)
    throw new SpecbuildError('exec/invalid-action', `${CHROOT_PROPERTY} is given more than once`);
  try {
    return parseDigestString(values[0]?.value ?? '', CHROOT_PROPERTY);
  } catch (e) {
    throw new SpecbuildError(
      'exec/invalid-action',
      `${CHROOT_PROPERTY} "${values[0]?.value ?? ''}" is not a digest HASH/SIZE`,
      { cause: e },
    );
  }
}

/**
 * Response header of GetCapabilities when the instance executes actions on
 * this machine (our embedded executor): a specbuild-cc reaching it through a
 * unix socket runs a compile in place and stores the result, instead of
 * scanning its dependencies first and sending it here (docs/wrap.md).
 */
export const EXECUTES_HERE_HEADER = 'x-specbuild-executes-here';

/**
 * Response header of GetCapabilities naming the directory of the instance's
 * blob files on this machine (`DIR/<2 hex>/<hash>`): a client reaching the
 * server through a unix socket copies hit outputs from there instead of
 * reading them over gRPC (a copy, never a link: the blob stays read-only).
 */
export const CAS_OBJECTS_HEADER = 'x-specbuild-cas-objects';

/**
 * Response header of GetCapabilities, beside CAS_OBJECTS_HEADER, naming the
 * directory of the instance's action cache entries on this machine, when
 * its store has no quota: a client of the same user reaching the server
 * through a unix socket may store blobs and action results by writing those
 * files itself, as the store writes them (cas/direct-store.ts). The version
 * is the layout's: a server that lays them out otherwise sends another name.
 */
export const DIRECT_STORE_HEADER = 'x-specbuild-direct-store-v1';
