// Which artifact servers a command uses when no --remote is given, in the
// order they are tried: the user configuration's, then those project.conf
// recommends, as BuildStream gives the user's configuration priority.
import { Diagnostics } from '../core/index.js';
import type { Project } from '../project/index.js';
import { parseProjectArtifacts, type ArtifactServer } from './remote-config.js';
import { formatDiagnostics } from './render/diagnostic.js';
import type { UserConfig } from './user-config.js';
import { LoadFailed } from './workspace.js';

/** An artifact server, as a configuration entry names one (or `--remote URL`). */
export interface ArtifactRemote {
  url: string;
  /** False: only pulled from, never written. */
  push: boolean;
  instanceName?: string;
  /** Bearer token file (auth.access-token). */
  tokenFile?: string;
  /** CA certificate (auth.server-cert). */
  caFile?: string;
  /** Client certificate and key (auth.client-cert, auth.client-key). */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** The configuration entry it comes from, for hints (none: `--remote`). */
  origin?: string;
}

/** An artifact server of the user configuration or of project.conf as a remote. */
export function configuredRemote(s: ArtifactServer): ArtifactRemote {
  return {
    url: s.url,
    origin: s.origin,
    push: s.push,
    instanceName: s.instanceName,
    tokenFile: s.auth.accessToken,
    caFile: s.auth.serverCert,
    clientCertFile: s.auth.clientCert,
    clientKeyFile: s.auth.clientKey,
  };
}

/**
 * The artifact servers of the user configuration (`artifacts.servers`), then
 * those of the project (`artifacts` in project.conf), in the order `artifact
 * pull` tries them; `artifact push` writes to each with `push: true`. A
 * server in both lists (the same URL and instance name) is kept once, as the
 * user configuration has it. The project's entries are read with the user
 * configuration's rules (paths relative to the project directory, files that
 * must exist); their mistakes are thrown as one LoadFailed, each at
 * file:line:col. For every command that talks to artifact servers.
 */
export function artifactRemotes(cfg: UserConfig, project: Project): ArtifactRemote[] {
  const d = new Diagnostics();
  const fromProject =
    project.artifacts === undefined ? [] : parseProjectArtifacts(project.artifacts, project.dir, d);
  if (!d.empty) throw new LoadFailed(formatDiagnostics(d.errors, project.dir));
  const out: ArtifactRemote[] = [];
  const seen = new Set<string>();
  for (const s of [...cfg.artifactServers, ...fromProject]) {
    const id = JSON.stringify([s.url, s.instanceName ?? '']);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(configuredRemote(s));
  }
  return out;
}
