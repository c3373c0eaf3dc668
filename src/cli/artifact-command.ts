// `specbuild artifact checkout | log | list-contents | delete`: the cached
// artifact of an element's current strong key, its files written out or
// listed, its build log (or a failed build's), and forgetting it so that the
// next build makes it again.
import { lstat, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { SpecbuildError } from '../core/index.js';
import { fetchTree, stageTree } from '../cas/index.js';
import { normalName } from '../project/index.js';
import { digestKey, fromPb, type Digest } from '../reapi/index.js';
import { findArtifact, notCached, openElement, requireArtifact } from './element-artifact.js';
import { EXIT } from './exit-codes.js';
import type { GlobalOptions } from './options.js';
import { info, note, reportError, writeRaw } from './render/output.js';
import { openCache, openGraph, openProject } from './workspace.js';

export interface CheckoutOptions {
  /** Default: the element's normal name in the current directory, as BuildStream. */
  directory?: string;
  force?: boolean;
}

/** Entries of `dir`, or undefined when it does not exist. */
async function entries(dir: string): Promise<string[] | undefined> {
  const st = await lstat(dir).catch(() => undefined);
  if (st === undefined) return undefined;
  if (!st.isDirectory())
    throw new SpecbuildError('cli/usage', `${dir} exists and is not a directory`, {
      hint: 'choose another --directory',
    });
  return readdir(dir);
}

/** Moves everything under `from` into `to`, replacing what is in the way (not merging files). */
async function moveOver(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const a = join(from, name);
    const b = join(to, name);
    const there = await lstat(b).catch(() => undefined);
    if (there?.isDirectory() === true && (await lstat(a)).isDirectory()) {
      await moveOver(a, b);
      continue;
    }
    if (there !== undefined) await rm(b, { recursive: true, force: true });
    await rename(a, b);
  }
}

export async function artifactCheckoutCommand(
  name: string,
  opts: CheckoutOptions,
  g: GlobalOptions,
): Promise<number> {
  const stores = await openCache(g.config);
  const t = await openElement(g, name, stores);
  const { artifact, keys } = await requireArtifact(t);
  const files = artifact.files === undefined ? undefined : fromPb(artifact.files);
  if (files === undefined) throw new Error(`bug: the artifact of ${name} has no files tree`);
  const dir = resolve(opts.directory ?? normalName(t.node.name));
  const existing = await entries(dir);
  if (existing !== undefined && existing.length > 0 && opts.force !== true)
    throw new SpecbuildError('cli/usage', `${dir} is not empty`, {
      hint: 'use --force to write over the files in it, or choose another --directory',
    });
  if (existing === undefined || existing.length === 0) {
    await mkdir(dir, { recursive: true });
    await stageTree(stores.cas, files, dir);
  } else {
    // Staged beside it (the same file system), then moved over what is there.
    const tmp = await mkdtemp(join(dirname(dir), '.specbuild-checkout-'));
    try {
      await stageTree(stores.cas, files, tmp);
      await moveOver(tmp, dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  info(`${t.node.name} (${keys.strong.slice(0, 8)}) checked out into ${dir}`);
  return EXIT.ok;
}

export async function artifactLogCommand(name: string, g: GlobalOptions): Promise<number> {
  const stores = await openCache(g.config);
  const t = await openElement(g, name, stores);
  const found = await findArtifact(t);
  let log: Digest | undefined;
  if (found.artifact !== undefined) {
    const b = found.artifact.buildLog;
    if (b === undefined) {
      note(`${name} runs no commands: its artifact has no build log`);
      return EXIT.ok;
    }
    log = fromPb(b);
  } else if (found.failedLog !== undefined) {
    note(`${name}: the log of its failed build under key ${found.keys.strong}`);
    log = found.failedLog;
  } else {
    throw notCached(t.node, found.keys.strong, false);
  }
  if ((await stores.cas.findMissingBlobs([log])).length > 0)
    throw notCached(t.node, found.keys.strong, false);
  await writeRaw(stores.cas.readStream(log));
  return EXIT.ok;
}

export async function artifactListContentsCommand(name: string, g: GlobalOptions): Promise<number> {
  const stores = await openCache(g.config);
  const t = await openElement(g, name, stores);
  const { artifact } = await requireArtifact(t);
  if (artifact.files === undefined) return EXIT.ok;
  const tree = await fetchTree(stores.cas, fromPb(artifact.files));
  const paths: string[] = [];
  const walk = (d: Digest, prefix: string): void => {
    const dir = tree.directories.get(digestKey(d));
    if (dir === undefined) throw new Error(`bug: ${name}'s complete artifact lacks a directory`);
    for (const f of dir.files) paths.push(prefix + f.name);
    for (const l of dir.symlinks) paths.push(prefix + l.name);
    for (const sub of dir.directories) {
      paths.push(prefix + sub.name);
      walk(fromPb(sub.digest), `${prefix}${sub.name}/`);
    }
  };
  walk(tree.root, '');
  // Byte order, as `LC_ALL=C sort` would have it.
  paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const p of paths) info(p);
  return EXIT.ok;
}

export async function artifactDeleteCommand(names: string[], g: GlobalOptions): Promise<number> {
  const project = await openProject(g.directory, g.config);
  const graph = await openGraph(project, names);
  const stores = await openCache(g.config);
  let code: number = EXIT.ok;
  for (const node of graph.targets) {
    const n = await stores.artifacts.delete(project.name, normalName(node.name));
    if (n === 0) {
      reportError(
        new SpecbuildError('artifact/not-cached', `nothing of ${node.name} is cached to delete`),
        g.debug,
      );
      code = EXIT.failure;
      continue;
    }
    info(`deleted ${node.name} (${n} ref${n === 1 ? '' : 's'}): its next build makes it again`);
  }
  return code;
}
