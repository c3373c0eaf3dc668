// `specbuild artifact push | pull`: an element's artifact of its current
// strong key sent to artifact remotes (with what priming on another machine
// needs), or fetched from the first remote that has it whole. A remote with
// `push: false` is never written; a remote artifact partly gone is a miss.
import { SpecbuildError } from '../core/index.js';
import {
  artifactRef,
  LocalActionCache,
  pullArtifact,
  pushArtifact,
  type CopyStats,
} from '../cas/index.js';
import { normalName } from '../project/index.js';
import { RemoteEndpoint, TlsError, type TlsFailureKind } from '../remote/index.js';
import { fromPb, type ActionResult, type Digest } from '../reapi/index.js';
import { primingBlobs, primingData } from '../speculative/index.js';
import { currentKeys, findArtifact, notCached, openElement } from './element-artifact.js';
import { EXIT } from './exit-codes.js';
import type { GlobalOptions } from './options.js';
import type { ArtifactRemote } from './artifact-remotes.js';
import { info, note, warn } from './render/output.js';
import { openCache } from './workspace.js';

export interface ShareOptions {
  remotes: readonly ArtifactRemote[];
}

function noRemote(verb: string): SpecbuildError {
  return new SpecbuildError('cli/usage', `no artifact remote to ${verb}`, {
    hint: `name one (specbuild artifact ${verb} --remote HOST:PORT ELEMENT) or list them under artifacts: servers: in the user configuration, or under artifacts: in project.conf`,
  });
}

/** Connects to an artifact remote with its credentials (a TLS failure's hint names the configuration entry). */
export async function connectRemote(r: ArtifactRemote): Promise<RemoteEndpoint> {
  try {
    return await RemoteEndpoint.connect({
      target: r.url,
      instance: r.instanceName,
      tokenFile: r.tokenFile,
      caFile: r.caFile,
      clientCertFile: r.clientCertFile,
      clientKeyFile: r.clientKeyFile,
    });
  } catch (e) {
    throw e instanceof TlsError ? authHint(e, r) : e;
  }
}

/** A refused TLS handshake, its hint in the words of the configuration. */
function authHint(e: TlsError, r: ArtifactRemote): SpecbuildError {
  const hint = tlsHint(e.failure.kind, r);
  return hint === undefined ? e : new SpecbuildError('remote/tls', e.message, { hint, cause: e });
}

/** What to set after a TLS failure (undefined: the remote layer's hint fits already). */
function tlsHint(kind: TlsFailureKind, r: ArtifactRemote): string | undefined {
  const signer = "the CA that signed the server's certificate";
  const listIt = `--remote takes no certificates: list ${r.url} under artifacts: servers: in the user configuration`;
  switch (kind) {
    case 'server-cert':
      if (r.origin === undefined) return `${listIt}, with auth.server-cert`;
      return r.caFile === undefined
        ? `set auth.server-cert of ${r.origin} to the PEM certificate of ${signer}`
        : `auth.server-cert of ${r.origin} (${r.caFile}) does not hold the certificate of ${signer}`;
    case 'client-cert':
      if (r.origin === undefined) return `${listIt}, with auth.client-cert and auth.client-key`;
      return `set auth.client-cert and auth.client-key of ${r.origin} to a certificate and key signed by a CA that the server trusts`;
    case 'host-name':
    case 'not-tls':
      return undefined;
  }
}

function sizeOf(s: CopyStats): string {
  return `${s.copied} of ${s.blobs} blobs sent, ${s.bytes} bytes`;
}

export async function artifactPushCommand(
  names: readonly string[],
  opts: ShareOptions,
  g: GlobalOptions,
): Promise<number> {
  if (opts.remotes.length === 0) throw noRemote('push');
  const writable = opts.remotes.filter((r) => r.push);
  for (const r of opts.remotes)
    if (!r.push) warn(`${r.url} is read-only (push: false): nothing is pushed to it`);
  if (writable.length === 0)
    throw new SpecbuildError(
      'remote/read-only',
      `no remote to push to: ${opts.remotes.map((r) => r.url).join(', ')} ${opts.remotes.length === 1 ? 'is' : 'are'} read-only`,
      { hint: 'set push: true on an artifact server you may write to' },
    );
  const stores = await openCache(g.config);
  const ac = await LocalActionCache.open(stores.cacheDir, stores.cas);
  const endpoints: [ArtifactRemote, RemoteEndpoint][] = [];
  try {
    for (const r of writable) endpoints.push([r, await connectRemote(r)]);
    for (const name of names) {
      const t = await openElement(g, name, stores);
      const found = await findArtifact(t);
      if (found.artifact === undefined)
        throw notCached(t.node, found.keys.strong, found.failedLog !== undefined);
      const element = normalName(t.node.name);
      const record = await stores.artifacts.refs.get(
        artifactRef(t.project.name, element, found.keys.strong),
      );
      if (record === undefined) throw new Error(`bug: ${name} found without a ref`);
      const sa = found.artifact.speculativeActions;
      const priming =
        sa === undefined
          ? { blobs: [] as Digest[], results: [] as { action: Digest; result: ActionResult }[] }
          : await primingData(stores.cas, ac, fromPb(sa)).then((p) => ({
              blobs: primingBlobs(p),
              results: p.results,
            }));
      for (const [r, ep] of endpoints) {
        const stats = await pushArtifact({
          local: stores.cas,
          remote: ep.cas,
          assets: ep.assets,
          project: t.project.name,
          element,
          record,
          artifact: found.artifact,
          extra: priming.blobs,
        });
        for (const { action, result } of priming.results)
          await ep.actionCache.updateActionResult(action, result);
        info(
          `pushed ${t.node.name} (${found.keys.strong.slice(0, 8)}) to ${r.url}: ${sizeOf(stats)}, ${priming.results.length} action results`,
        );
      }
    }
  } finally {
    for (const [, ep] of endpoints) ep.close();
  }
  return EXIT.ok;
}

export async function artifactPullCommand(
  names: readonly string[],
  opts: ShareOptions,
  g: GlobalOptions,
): Promise<number> {
  if (opts.remotes.length === 0) throw noRemote('pull');
  const stores = await openCache(g.config);
  const endpoints = new Map<ArtifactRemote, RemoteEndpoint>();
  let code: number = EXIT.ok;
  try {
    for (const name of names) {
      const t = await openElement(g, name, stores);
      const keys = currentKeys(t);
      if ((await findArtifact(t)).artifact !== undefined) {
        info(`${t.node.name} (${keys.strong.slice(0, 8)}) is cached already`);
        continue;
      }
      const misses: string[] = [];
      let pulled = false;
      for (const r of opts.remotes) {
        let ep = endpoints.get(r);
        if (ep === undefined) {
          ep = await connectRemote(r);
          endpoints.set(r, ep);
        }
        const out = await pullArtifact({
          local: stores.artifacts,
          remote: ep.cas,
          assets: ep.assets,
          project: t.project.name,
          element: normalName(t.node.name),
          key: keys.strong,
        });
        if (out.pulled) {
          info(
            `pulled ${t.node.name} (${keys.strong.slice(0, 8)}) from ${r.url}: ${out.stats.copied} blobs fetched, ${out.stats.bytes} bytes`,
          );
          pulled = true;
          break;
        }
        misses.push(`${r.url}: ${out.why}`);
      }
      if (!pulled) {
        note(`${t.node.name} (${keys.strong.slice(0, 8)}) is not pulled: ${misses.join('; ')}`);
        code = EXIT.failure;
      }
    }
  } finally {
    for (const ep of endpoints.values()) ep.close();
  }
  return code;
}
