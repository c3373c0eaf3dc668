// Element artifacts: a specbuild.v1.Artifact record in CAS, named by refs
// `PROJECT/ELEMENT/KEY` under both its strong and its weak key. An artifact
// whose record or any blob it needs has left the CAS is a miss, never an
// error: the element simply builds again.
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { SpecbuildError } from '../core/index.js';
import { digestKey, fromPb, specbuildPb, type Digest } from '../reapi/index.js';
import { readBlobIfPresent, type Cas } from './cas.js';
import type { RefStore } from './refs.js';
import { fetchTree, filesOf } from './tree.js';

export type Artifact = specbuildPb.Artifact;

/** Where an artifact is named: project, element (normalised for a path) and key. */
export function artifactRef(project: string, element: string, key: string): string {
  return `${project}/${element}/${key}`;
}

export class ArtifactCache {
  constructor(
    readonly cas: Cas,
    readonly refs: RefStore,
    /** Failed builds by key (their log), so that `show` can say "failed". */
    readonly failures?: RefStore,
  ) {}

  /** Remembers that the build under `key` failed, with its log. */
  async recordFailure(project: string, element: string, key: string, log: Digest): Promise<void> {
    await this.failures?.set(artifactRef(project, element, key), log);
  }

  /** The log of a failed build under `key`, if one is remembered. */
  async failed(project: string, element: string, key: string): Promise<Digest | undefined> {
    return this.failures?.get(artifactRef(project, element, key));
  }

  /** The artifact under `key`, if it and everything it needs are present. */
  async lookup(project: string, element: string, key: string): Promise<Artifact | undefined> {
    const ref = await this.refs.get(artifactRef(project, element, key));
    if (ref === undefined) return undefined;
    const bytes = await readBlobIfPresent(this.cas, ref);
    if (bytes === undefined) return undefined;
    let art: Artifact;
    try {
      art = fromBinary(specbuildPb.ArtifactSchema, bytes);
    } catch {
      return undefined;
    }
    return (await this.complete(art)) ? art : undefined;
  }

  /**
   * The record under `key` when it and its SpeculativeActions blob are
   * present, whether or not its trees are: what priming reads by weak key
   * (a record pulled for priming alone has no files here).
   */
  async lookupRecord(project: string, element: string, key: string): Promise<Artifact | undefined> {
    const ref = await this.refs.get(artifactRef(project, element, key));
    if (ref === undefined) return undefined;
    const bytes = await readBlobIfPresent(this.cas, ref);
    if (bytes === undefined) return undefined;
    let art: Artifact;
    try {
      art = fromBinary(specbuildPb.ArtifactSchema, bytes);
    } catch {
      return undefined;
    }
    if (art.speculativeActions === undefined) return art;
    const missing = await this.cas.findMissingBlobs([fromPb(art.speculativeActions)]);
    return missing.length === 0 ? art : undefined;
  }

  /** True when the files tree, the sources tree and the log are all in the CAS. */
  async complete(art: Artifact): Promise<boolean> {
    try {
      const needed: Digest[] = [];
      for (const t of [art.files, art.sources]) {
        if (t === undefined) continue;
        const tree = await fetchTree(this.cas, fromPb(t));
        if (tree.missing.length > 0) return false;
        needed.push(...filesOf(tree.directories.values()));
      }
      if (art.buildLog !== undefined) needed.push(fromPb(art.buildLog));
      if (art.speculativeActions !== undefined) needed.push(fromPb(art.speculativeActions));
      return (await this.cas.findMissingBlobs(needed)).length === 0;
    } catch (e) {
      if (e instanceof SpecbuildError) return false;
      throw e;
    }
  }

  /** Stores the record and names it under its strong and weak keys; returns its digest. */
  async store(project: string, element: string, art: Artifact): Promise<Digest> {
    const d = await this.cas.writeBlob(toBinary(specbuildPb.ArtifactSchema, art));
    // Strong first: a crash in between leaves a findable artifact, never a weak-only one.
    await this.refs.set(artifactRef(project, element, art.strongKey), d);
    await this.refs.set(artifactRef(project, element, art.weakKey), d);
    await this.failures?.delete(artifactRef(project, element, art.strongKey));
    return d;
  }

  /**
   * Stores a record pulled for priming (its trees need not be here) and names
   * it under its weak key only: its strong key stays a miss.
   */
  async storeWeak(project: string, element: string, art: Artifact): Promise<Digest> {
    const d = await this.cas.writeBlob(toBinary(specbuildPb.ArtifactSchema, art));
    await this.refs.set(artifactRef(project, element, art.weakKey), d);
    return d;
  }

  /**
   * Removes every ref of the element, under any key, and the failed builds it
   * remembers; returns how many refs there were. Blobs stay until evicted.
   */
  async delete(project: string, element: string): Promise<number> {
    const prefix = `${project}/${element}`;
    const names = await this.refs.list(prefix);
    for (const n of names) await this.refs.delete(n);
    const failed = (await this.failures?.list(prefix)) ?? [];
    for (const n of failed) await this.failures?.delete(n);
    return names.length + failed.length;
  }

  /** The record digest a ref names (for reports). */
  async refDigest(project: string, element: string, key: string): Promise<string | undefined> {
    const d = await this.refs.get(artifactRef(project, element, key));
    return d === undefined ? undefined : digestKey(d);
  }
}

export function newArtifact(init: MessageInitShape<typeof specbuildPb.ArtifactSchema>): Artifact {
  return create(specbuildPb.ArtifactSchema, init);
}
