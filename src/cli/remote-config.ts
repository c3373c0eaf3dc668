// The remotes of the user configuration, in BuildStream's shape:
// `artifacts: servers:` (used by `artifact push | pull`) and
// `remote-execution:` (where builds' actions and priming run), and the artifact
// servers of project.conf. Certificate and token paths are relative to the
// configuration file's directory, or project.conf's.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { SpecbuildError, type Diagnostics, type Location } from '../core/index.js';
import { parseTarget } from '../remote/index.js';
import {
  asBool,
  asMap,
  asSeq,
  asString,
  checkKeys,
  type MapNode,
  type SeqNode,
  type YNode,
} from '../project/index.js';

/** `auth:` of a remote: absolute paths of files that exist. */
export interface RemoteAuth {
  /** PEM CA certificates the server's certificate is checked against. */
  serverCert?: string;
  clientCert?: string;
  clientKey?: string;
  /** A file holding a bearer token. */
  accessToken?: string;
}

/** One remote service: where it is, which instance, how to authenticate. */
export interface RemoteService {
  url: string;
  instanceName?: string;
  auth: RemoteAuth;
}

/** An `artifacts: servers:` entry. */
export interface ArtifactServer extends RemoteService {
  /** False (the default, as BuildStream's): only pulled from, never written. */
  push: boolean;
  /** Which entry of which file, for messages: `artifacts.servers[0] in /path/specbuild.yaml`. */
  origin: string;
}

export interface RemoteExecution {
  /** Actions the cluster runs at once: how many primed actions are kept in flight there. */
  jobs?: number;
  /** Platform properties of the cluster's workers, put on every recorded action instead of this host's. */
  platform?: [string, string][];
  executionService?: RemoteService;
  storageService?: RemoteService;
  actionCacheService?: RemoteService;
}

const SCHEMES = ['grpc://', 'grpcs://', 'http://', 'https://', 'unix:'];
const AUTH_KEYS = ['server-cert', 'client-cert', 'client-key', 'access-token'];
const SERVICE_KEYS = ['url', 'instance-name', 'auth'];
const SERVER_KEYS = ['url', 'push', 'instance-name', 'auth'];
const ARTIFACTS_KEYS = ['servers'];
const EXECUTION_KEYS = ['execution-service', 'storage-service', 'action-cache-service'];

function parseAuth(n: MapNode, what: string, base: string, d: Diagnostics): RemoteAuth {
  checkKeys(n, AUTH_KEYS, what, d);
  const auth: RemoteAuth = {};
  const field = {
    'server-cert': 'serverCert',
    'client-cert': 'clientCert',
    'client-key': 'clientKey',
    'access-token': 'accessToken',
  } as const;
  for (const key of AUTH_KEYS as (keyof typeof field)[]) {
    const node = n.entries.get(key);
    const p = asString(node, `${what}.${key}`, d);
    if (p === undefined) continue;
    const file = resolve(base, p.replace(/^~(?=\/|$)/, homedir()));
    if (!existsSync(file))
      d.add(
        new SpecbuildError('load/missing-file', `${what}.${key}: no file ${file}`, {
          location: node?.at,
          hint: `write the path of an existing file (relative to ${base})`,
        }),
      );
    else auth[field[key]] = file;
  }
  if (n.entries.has('client-cert') !== n.entries.has('client-key'))
    d.add(
      new SpecbuildError('load/invalid-value', `${what}: client-cert and client-key go together`, {
        location: n.at,
      }),
    );
  return auth;
}

function parseService(
  n: MapNode,
  what: string,
  keys: readonly string[],
  base: string,
  d: Diagnostics,
): RemoteService | undefined {
  checkKeys(n, keys, what, d);
  const urlNode = n.entries.get('url');
  const url = asString(urlNode, `${what}.url`, d);
  const instanceName = asString(n.entries.get('instance-name'), `${what}.instance-name`, d);
  const authNode = asMap(n.entries.get('auth'), `${what}.auth`, d);
  const auth = authNode === undefined ? {} : parseAuth(authNode, `${what}.auth`, base, d);
  if (url === undefined) {
    if (urlNode === undefined)
      d.add(
        new SpecbuildError('load/missing-key', `${what}: url is missing`, {
          location: n.at,
          hint: 'e.g. url: grpcs://cache.example.com:11002',
        }),
      );
    return undefined;
  }
  if (!SCHEMES.some((s) => url.startsWith(s))) {
    d.add(
      new SpecbuildError('load/invalid-value', `${what}.url "${url}" has no known scheme`, {
        location: urlNode?.at,
        hint: `start it with ${SCHEMES.join(', ')}`,
      }),
    );
    return undefined;
  }
  try {
    parseTarget(url);
  } catch (e) {
    d.add(
      new SpecbuildError('load/invalid-value', `${what}.url: ${SpecbuildError.from(e).message}`, {
        location: urlNode?.at,
        hint: SpecbuildError.from(e).hint,
      }),
    );
    return undefined;
  }
  return instanceName === undefined ? { url, auth } : { url, instanceName, auth };
}

/** `artifacts:` of the configuration file `file`. */
export function parseArtifacts(n: MapNode, file: string, d: Diagnostics): ArtifactServer[] {
  checkKeys(n, ARTIFACTS_KEYS, 'artifacts', d);
  const servers = asSeq(n.entries.get('servers'), 'artifacts.servers', d);
  if (servers === undefined) return [];
  return parseServers(servers, 'artifacts.servers', dirname(file), () => file, d);
}

/**
 * `artifacts:` of project.conf, the servers the project recommends: a list
 * of servers, as BuildStream 2 projects write it, or `servers:` holding one,
 * as the user configuration does. Each entry reads as a user configuration's
 * entry, its relative paths against the project directory `projectDir`.
 */
export function parseProjectArtifacts(
  n: YNode,
  projectDir: string,
  d: Diagnostics,
): ArtifactServer[] {
  const fileOf = (at: Location): string => resolve(projectDir, at.file);
  if (n.kind === 'seq') return parseServers(n, 'artifacts', projectDir, fileOf, d);
  if (n.kind === 'scalar' && n.value === null) return [];
  // A mapping with url: is one server written as BuildStream 1 projects did.
  if (n.kind !== 'map' || n.entries.has('url')) {
    d.add(
      new SpecbuildError('load/wrong-type', 'artifacts must be a list of artifact servers', {
        location: n.at,
        hint: 'write each server as an entry: - url: grpcs://cache.example.com:11002',
      }),
    );
    return [];
  }
  checkKeys(n, ARTIFACTS_KEYS, 'artifacts', d);
  const servers = asSeq(n.entries.get('servers'), 'artifacts.servers', d);
  if (servers === undefined) return [];
  return parseServers(servers, 'artifacts.servers', projectDir, fileOf, d);
}

/** A list of artifact servers named `what`; `fileOf` says which file an entry is in. */
function parseServers(
  servers: SeqNode,
  what: string,
  base: string,
  fileOf: (at: Location) => string,
  d: Diagnostics,
): ArtifactServer[] {
  const out: ArtifactServer[] = [];
  servers.items.forEach((item, i) => {
    const entry = `${what}[${i}]`;
    const m = asMap(item, entry, d);
    if (m === undefined) return;
    const s = parseService(m, entry, SERVER_KEYS, base, d);
    const push = asBool(m.entries.get('push'), `${entry}.push`, d) ?? false;
    if (s !== undefined) out.push({ ...s, push, origin: `${entry} in ${fileOf(m.at)}` });
  });
  return out;
}

/** `remote-execution:` of the configuration file `file`. */
export function parseRemoteExecution(n: MapNode, file: string, d: Diagnostics): RemoteExecution {
  checkKeys(n, [...EXECUTION_KEYS, 'jobs', 'platform'], 'remote-execution', d);
  const out: RemoteExecution = {};
  const platform = asMap(n.entries.get('platform'), 'remote-execution.platform', d);
  if (platform !== undefined) {
    const props: [string, string][] = [];
    for (const [name, node] of platform.entries) {
      const value = asString(node, `remote-execution.platform.${name}`, d);
      if (value === undefined) continue;
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || value.includes(','))
        d.add(
          new SpecbuildError(
            'load/invalid-value',
            `remote-execution.platform.${name}: a property is NAME: VALUE, the name of letters, digits, _ . -, the value without a comma`,
            { location: node.at, hint: 'e.g. platform: {OSFamily: linux, ISA: x86-64}' },
          ),
        );
      else props.push([name, value]);
    }
    out.platform = props;
  }
  const jobsNode = n.entries.get('jobs');
  const jobs = asString(jobsNode, 'remote-execution.jobs', d);
  if (jobs !== undefined) {
    const v = Number(jobs);
    if (!Number.isInteger(v) || v < 1 || v > 100_000)
      d.add(
        new SpecbuildError(
          'load/invalid-value',
          `remote-execution.jobs: "${jobs}" is not a whole number from 1 to 100000`,
          {
            location: jobsNode?.at,
            hint: "the number of actions the cluster's workers run at once, e.g. jobs: 64",
          },
        ),
      );
    else out.jobs = v;
  }
  const field = {
    'execution-service': 'executionService',
    'storage-service': 'storageService',
    'action-cache-service': 'actionCacheService',
  } as const;
  for (const key of EXECUTION_KEYS as (keyof typeof field)[]) {
    const m = asMap(n.entries.get(key), `remote-execution.${key}`, d);
    if (m === undefined) continue;
    const s = parseService(m, `remote-execution.${key}`, SERVICE_KEYS, dirname(file), d);
    if (s !== undefined) out[field[key]] = s;
  }
  return out;
}
