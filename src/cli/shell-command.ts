// `specbuild shell [--build] ELEMENT [-- COMMAND...]`: an interactive shell
// (or COMMAND) on the terminal, in the sandbox builds use. Without --build,
// in the element's staged runtime: its runtime closure's artifacts as layers
// over the host root. With --build, in its build environment: the build
// scope staged, its sources at %{build-root} (writable), %{install-root},
// its environment, its REAPI socket, cwd where its commands run; or, when
// the element's last build under its current key failed, the directory that
// build left. Exits with the shell's status.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join, posix } from 'node:path';
import { stageTree, ExtractCache } from '../cas/index.js';
import { wrapperBinds } from '../build/index.js';
import { prepareWorkDir } from '../exec/index.js';
import {
  buildScope,
  makeSource,
  normalName,
  runtimeClosure,
  stageElementSources,
  type GraphNode,
} from '../project/index.js';
import { fromPb } from '../reapi/index.js';
import { runInSandbox, type Bind } from '../sandbox/index.js';
import type { RunningServer } from '../server/index.js';
import {
  findArtifact,
  openElement,
  requireArtifact,
  type ElementTarget,
} from './element-artifact.js';
import type { GlobalOptions } from './options.js';
import { note } from './render/output.js';
import { openStores, sourceEnv, type Stores } from './workspace.js';

export interface ShellOptions {
  build?: boolean;
}

/** BuildStream's default shell command (project.conf `shell: command`). */
const DEFAULT_COMMAND = ['sh', '-i'];

/** The files trees of `nodes`' artifacts, in order, extracted as layers. */
async function layersOf(t: ElementTarget, stores: Stores, nodes: GraphNode[]): Promise<string[]> {
  const extracts = new ExtractCache(stores.cas, join(stores.cacheDir, 'extract'));
  const layers: string[] = [];
  for (const n of nodes) {
    const { artifact } = await requireArtifact(t, n);
    if (artifact.files !== undefined) layers.push(await extracts.extract(fromPb(artifact.files)));
  }
  return layers;
}

/**
 * Makes a kept build directory writable by whoever the next sandbox's root
 * is (a uid of its own), like the fresh ones stageTree's writable options
 * make: the failed build's files belong to its sandbox's uid. Only inside
 * the private (0700) directory the build kept.
 */
async function openUp(dir: string): Promise<void> {
  const st = await lstat(dir);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    await chmod(dir, 0o777);
    for (const name of await readdir(dir)) await openUp(join(dir, name));
  } else {
    await chmod(dir, (st.mode & 0o111) !== 0 ? 0o777 : 0o666);
  }
}

export async function shellCommand(
  name: string,
  command: string[],
  opts: ShellOptions,
  g: GlobalOptions,
): Promise<number> {
  const stores = await openStores(g.config);
  const t = await openElement(g, name, stores);
  const { node, project } = t;
  const decl = node.decl;
  const work = await prepareWorkDir(join(stores.cacheDir, 'build'));
  const dir = join(work.path, `shell-${normalName(node.name)}-${randomBytes(6).toString('hex')}`);
  // Private: what is inside may be opened to the sandbox's own uid.
  await mkdir(dir, { mode: 0o700 });
  await mkdir(join(dir, 'upper'));
  await mkdir(join(dir, 'scratch'));
  let server: RunningServer | undefined;
  const ignore = (): void => {
    // Ctrl-C and Ctrl-\ belong to the shell while it runs.
  };
  try {
    const binds: Bind[] = [];
    let layers: string[];
    let cwd = '/';
    let env: Record<string, string> = Object.fromEntries(decl.environment);
    let key: string;
    if (opts.build !== true) {
      key = (await requireArtifact(t)).keys.strong;
      layers = await layersOf(t, stores, runtimeClosure(node));
    } else {
      const found = await findArtifact(t);
      key = found.keys.strong;
      layers = await layersOf(t, stores, buildScope(node));
      const kept = stores.builder.failedDir(project, node);
      let root = join(kept, 'root');
      let install = join(kept, 'install');
      if (found.failedLog !== undefined && existsSync(root) && existsSync(install)) {
        // Its build root and install root as the build left them (what it
        // wrote elsewhere, into the overlay, is not kept).
        note(`${node.name}: the directory of its failed build under key ${key}`);
        await openUp(root);
        await openUp(install);
      } else {
        root = join(dir, 'root');
        install = join(dir, 'install');
        await mkdir(root);
        await mkdir(install);
        await chmod(install, 0o777);
        const senv = sourceEnv(project, stores);
        for (const s of decl.sources.map((d) => makeSource(d)))
          if (!(await s.isCached(senv))) await s.fetch(senv);
        const sources = await stageElementSources(decl, senv);
        await stageTree(stores.cas, sources, root, {
          writableDirectories: true,
          writableFiles: true,
        });
      }
      binds.push({ src: root, dst: decl.buildRoot }, { src: install, dst: decl.installRoot });
      binds.push(...wrapperBinds());
      if (decl.sandbox.remoteApisSocket !== undefined) {
        // The same services the build reaches there (not recorded: nothing is stored).
        const { startServer } = await import('../server/index.js');
        const sock = join(dir, 'reapi.sock');
        server = await startServer({
          listen: `unix:${sock}`,
          instances: new Map([['', { cas: stores.cas, ac: stores.ac, executor: stores.executor }]]),
          socketMode: 0o666,
        });
        binds.push({ src: sock, dst: decl.sandbox.remoteApisSocket });
      }
      cwd = posix.join(decl.buildRoot, decl.commandSubdir);
      await mkdir(join(root, decl.commandSubdir), { recursive: true });
    }
    env = {
      ...env,
      PS1: `[${node.name}:${key.slice(0, 8)}${opts.build === true ? ' build' : ''}] $ `,
    };
    process.on('SIGINT', ignore);
    process.on('SIGQUIT', ignore);
    const r = await runInSandbox({
      argv: command.length > 0 ? command : DEFAULT_COMMAND,
      env,
      cwd,
      layers,
      upperDir: join(dir, 'upper'),
      scratchDir: join(dir, 'scratch'),
      binds,
      inheritStdio: true,
    });
    if (r.signal !== undefined) return 128 + constants.signals[r.signal];
    return r.exitCode;
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
