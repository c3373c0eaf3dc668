// Where an input file of a recorded action came from, in the context of the
// build that recorded it: a source of the element, a file of a dependency's
// artifact, the output of an earlier action of the same build, a file its
// build tree got from a command that is not a recorded action (configure's
// config.h), or none of those (host headers, the toolchain). `explain` labels only the few files
// that differ between two actions, so it looks each one up by path instead
// of indexing every input as generation does; the precedence is generation's
// (generate.ts): what is staged at that exact path, then the latest earlier
// action that wrote that path, then the same content found elsewhere.
import type { ActionCache, Cas } from '../cas/index.js';
import { digestKey, type Digest } from '../reapi/index.js';
import { outputFilesOf, readAction } from './actions.js';
import type { TreeFiles } from './tree-files.js';

export interface InputOrigin {
  type: 'source' | 'artifact' | 'action' | 'build-tree' | 'unknown';
  /** The element whose source, artifact or action it is. */
  element?: string;
  /** Its path in that element's sources or artifact, or relative to the action's working directory. */
  path?: string;
  /** The producing action, HASH/SIZE, and its place among the build's recorded actions (from 0). */
  action?: string;
  index?: number;
  /** The same content, but not where that origin puts it (copied by a command no action records). */
  copy?: boolean;
}

/** One build as its recorded actions saw it. */
export interface BuildContext {
  element: string;
  /** %{build-root}, relative to the input root ('buildstream/test/app.bst'). */
  buildRoot: string;
  sources: Digest | undefined;
  /** Dependency artifacts in staging order (the last is the topmost layer). */
  deps: { element: string; files: Digest }[];
  /** The build's recorded actions, in completion order. */
  actions: readonly Digest[];
}

interface Produced {
  index: number;
  action: Digest;
  /** Relative to its working directory, and to the input root. */
  path: string;
  location: string;
  digest: Digest;
}

const joinPath = (a: string, b: string): string => (a === '' ? b : `${a}/${b}`);

export class Labeler {
  private produced: Promise<Produced[]> | undefined;

  constructor(
    private readonly cas: Cas,
    private readonly ac: ActionCache,
    private readonly trees: TreeFiles,
    readonly ctx: BuildContext,
  ) {}

  /** Where the file at `path` with `digest` came from, for the action at `before` in the build. */
  async label(path: string, digest: Digest, before: number): Promise<InputOrigin> {
    const { ctx } = this;
    const same = (d: Digest | undefined): boolean => d !== undefined && d.hash === digest.hash;
    // 1. A source of the element, at its place under the build root.
    const prefix = `${ctx.buildRoot}/`;
    if (ctx.sources !== undefined && path.startsWith(prefix)) {
      const rel = path.slice(prefix.length);
      if (same(await this.fileAt(ctx.sources, rel)))
        return { type: 'source', element: ctx.element, path: rel };
    }
    // 2. A dependency's artifact at that path, the topmost layer first.
    for (let i = ctx.deps.length - 1; i >= 0; i--) {
      const dep = ctx.deps[i];
      if (dep !== undefined && same(await this.fileAt(dep.files, path)))
        return { type: 'artifact', element: dep.element, path };
    }
    // 3. The latest earlier action of the build that wrote it there.
    const produced = await this.outputs();
    for (let i = produced.length - 1; i >= 0; i--) {
      const p = produced[i];
      if (p !== undefined && p.index < before && p.location === path && same(p.digest))
        return this.actionOrigin(p);
    }
    // 4. The same content elsewhere: a copy.
    if (ctx.sources !== undefined) {
      const at = (await this.index(ctx.sources))?.get(digest.hash)?.[0];
      if (at !== undefined) return { type: 'source', element: ctx.element, path: at, copy: true };
    }
    for (let i = ctx.deps.length - 1; i >= 0; i--) {
      const dep = ctx.deps[i];
      const at =
        dep === undefined ? undefined : (await this.index(dep.files))?.get(digest.hash)?.[0];
      if (dep !== undefined && at !== undefined)
        return { type: 'artifact', element: dep.element, path: at, copy: true };
    }
    const made = produced.find((p) => p.index < before && same(p.digest));
    if (made !== undefined) return { ...this.actionOrigin(made), copy: true };
    // 5. In the build tree, from none of those: a command that is not a recorded action wrote it.
    if (path.startsWith(prefix))
      return { type: 'build-tree', element: ctx.element, path: path.slice(prefix.length) };
    return { type: 'unknown' };
  }

  private actionOrigin(p: Produced): InputOrigin {
    return {
      type: 'action',
      element: this.ctx.element,
      path: p.path,
      action: digestKey(p.action),
      index: p.index,
    };
  }

  /** A tree whose blobs have left the CAS labels nothing (never an error). */
  private fileAt(tree: Digest, path: string): Promise<Digest | undefined> {
    return this.trees.fileAt(tree, path).catch(() => undefined);
  }

  private index(tree: Digest): Promise<Map<string, string[]> | undefined> {
    return this.trees.index(tree).catch(() => undefined);
  }

  /** Every output file of the build's actions (from their results in the action cache), once. */
  private outputs(): Promise<Produced[]> {
    this.produced ??= (async () => {
      const out: Produced[] = [];
      for (const [index, action] of this.ctx.actions.entries()) {
        try {
          const result = await this.ac.getActionResult(action);
          if (result === undefined) continue;
          const { workingDirectory } = await readAction(this.cas, action);
          for (const o of await outputFilesOf(this.cas, result))
            out.push({
              index,
              action,
              path: o.path,
              location: joinPath(workingDirectory, o.path),
              digest: o.digest,
            });
        } catch {
          // Its Action or output tree has left the CAS: it labels nothing.
        }
      }
      return out;
    })();
    return this.produced;
  }
}
