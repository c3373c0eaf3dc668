// Names of artifact records in Remote Asset: `urn:specbuild:v1:artifact:` and
// the local ref `PROJECT/ELEMENT/KEY` (docs/assets.md). As BuildStream does
// with its `urn:fdc:buildstream.build:2020:artifact:` names, one record is
// pushed under its strong key and under its weak key, in one namespace (keys
// are SHA-256s: they never collide). Our own prefix keeps a BuildStream client
// sharing the server from taking a specbuild.v1.Artifact for its own record;
// `v1` is that message's version, so a record format that changes
// incompatibly gets new names instead of confusing older clients.
import { SpecbuildError } from '../core/index.js';

export const ARTIFACT_URN_PREFIX = 'urn:specbuild:v1:artifact:';

export interface ArtifactName {
  /** The project's name (`name:` of project.conf). */
  project: string;
  /** The element's normal name, as in refs (`libs/base.bst` → `libs-base`). */
  element: string;
  /** A strong or weak cache key: 64 lowercase hex digits. */
  key: string;
}

const PROJECT_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const ELEMENT_RE = /^[0-9A-Za-z._-]+$/;
const KEY_RE = /^[0-9a-f]{64}$/;

function problem(n: ArtifactName): string | undefined {
  if (!PROJECT_RE.test(n.project)) return `project "${n.project.slice(0, 100)}"`;
  if (!ELEMENT_RE.test(n.element) || n.element === '.' || n.element === '..')
    return `element "${n.element.slice(0, 100)}"`;
  if (!KEY_RE.test(n.key)) return `key "${n.key.slice(0, 100)}"`;
  return undefined;
}

/** The URN an artifact record is pushed and fetched under. */
export function artifactUrn(project: string, element: string, key: string): string {
  const bad = problem({ project, element, key });
  if (bad !== undefined) {
    throw new SpecbuildError('reapi/invalid-name', `no artifact URN for ${bad}`, {
      hint: 'the element must be its normal name (normalName) and the key a full cache key',
    });
  }
  return `${ARTIFACT_URN_PREFIX}${project}/${element}/${key}`;
}

/** The project, element and key an artifact URN names, or undefined if it is not one. */
export function parseArtifactUrn(urn: string): ArtifactName | undefined {
  if (!urn.startsWith(ARTIFACT_URN_PREFIX)) return undefined;
  const parts = urn.slice(ARTIFACT_URN_PREFIX.length).split('/');
  if (parts.length !== 3) return undefined;
  const [project = '', element = '', key = ''] = parts;
  const name = { project, element, key };
  return problem(name) === undefined ? name : undefined;
}
