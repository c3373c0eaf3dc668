// A project on disk for source tests: project.conf and element files written
// into a temporary directory, loaded with the real loader, and a SourceEnv
// with its own source directory and local CAS; plus the trees tests expect,
// built from contents (not from disk), and a readable listing of a CAS tree.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Diagnostics } from '../../src/core/index.js';
import { DirectoryReader, LocalCas } from '../../src/cas/index.js';
import { buildTree, digestOf, fromPb, type Digest, type TreeEntry } from '../../src/reapi/index.js';
import { loadElement, type ElementDecl } from '../../src/project/element.js';
import { parseElementName } from '../../src/project/names.js';
import type { SourceDecl } from '../../src/project/source-decl.js';
import { loadProject, type Project } from '../../src/project/project.js';
import type { SourceEnv } from '../../src/project/sources/index.js';

/** Writes files (relative path → content) under `dir`. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), content);
  }
}

export interface Rig {
  project: Project;
  env: SourceEnv;
  cas: LocalCas;
  /** Loads elements/<name> (which must load without errors). */
  element(name: string): Promise<ElementDecl>;
  /** The problems loading elements/<name> reports, as `provenance code`. */
  loadErrors(name: string): Promise<string[]>;
}

/**
 * A project in `root/project` with `elements/` as element path, the given
 * aliases, and `files` (relative to the project); sources go to
 * `root/sources`, the CAS to `root/cache`.
 */
export async function makeRig(
  root: string,
  files: Record<string, string>,
  aliases: Record<string, string> = {},
): Promise<Rig> {
  const dir = join(root, 'project');
  const aliasText = Object.entries(aliases)
    .map(([k, v]) => `  ${k}: ${v}\n`)
    .join('');
  await writeFiles(dir, {
    'project.conf': `name: p\nmin-version: 2.0\nelement-path: elements\n${aliasText === '' ? '' : `aliases:\n${aliasText}`}`,
    ...files,
  });
  await mkdir(join(dir, 'elements'), { recursive: true });
  const loaded = await loadProject(dir);
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.errors.map((e) => e.message).join('\n'));
  const project = loaded.value;
  const cas = await LocalCas.open({ dir: join(root, 'cache') });
  const env: SourceEnv = { project, sourceDir: join(root, 'sources'), cas };
  return {
    project,
    env,
    cas,
    async loadErrors(name) {
      const n = parseElementName(name);
      assert.equal(typeof n, 'string');
      const d = new Diagnostics();
      await loadElement(project, n as Exclude<typeof n, { error: string }>, d);
      return d.errors.map((e) => `${e.provenance ?? ''} ${e.code}`);
    },
    async element(name) {
      const n = parseElementName(name);
      assert.equal(typeof n, 'string');
      const d = new Diagnostics();
      const { decl } = await loadElement(project, n as Exclude<typeof n, { error: string }>, d);
      assert.deepEqual(
        d.errors.map((e) => `${e.provenance ?? ''} ${e.message}`),
        [],
      );
      assert.ok(decl !== undefined);
      return decl;
    },
  };
}

/** The one source of an element. */
export function onlySource(el: ElementDecl): SourceDecl {
  const [s, ...rest] = el.sources;
  assert.ok(s !== undefined && rest.length === 0, `${el.name} has ${el.sources.length} sources`);
  return s;
}

/** Expected content: path → file content, `x:` prefix for executables, `-> target` for symlinks. */
export function expectedTree(entries: Record<string, string>): Digest {
  const list: TreeEntry[] = Object.entries(entries).map(([path, v]) => {
    if (v.startsWith('-> ')) return { kind: 'symlink', path, target: v.slice(3) };
    if (v === '/') return { kind: 'dir', path };
    const exec = v.startsWith('x:');
    const content = exec ? v.slice(2) : v;
    return { kind: 'file', path, digest: digestOf(Buffer.from(content)), executable: exec };
  });
  return buildTree(list).root;
}

/** A CAS tree in the notation of expectedTree (empty directories as "/"). */
export async function readTree(cas: LocalCas, root: Digest): Promise<Record<string, string>> {
  const r = new DirectoryReader(cas);
  const out: Record<string, string> = {};
  const walk = async (d: Digest, prefix: string): Promise<void> => {
    const dir = await r.read(d);
    if (prefix !== '' && dir.files.length + dir.directories.length + dir.symlinks.length === 0)
      out[prefix.slice(0, -1)] = '/';
    for (const f of dir.files) {
      const text = Buffer.from(await cas.readBlob(fromPb(f.digest))).toString('utf8');
      out[prefix + f.name] = (f.isExecutable ? 'x:' : '') + text;
    }
    for (const l of dir.symlinks) out[prefix + l.name] = `-> ${l.target}`;
    for (const x of dir.directories) await walk(fromPb(x.digest), `${prefix}${x.name}/`);
  };
  await walk(root, '');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Runs a command; its stdout (it must succeed). */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  return execFileSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** git for making test repositories: no user configuration, fixed identity and dates. */
export function gitIn(repo: string, args: string[], when = '2020-01-01T00:00:00Z'): string {
  return run('git', args, {
    cwd: repo,
    env: {
      PATH: process.env.PATH,
      HOME: repo,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.invalid',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.invalid',
      GIT_AUTHOR_DATE: when,
      GIT_COMMITTER_DATE: when,
    },
  }).trim();
}
