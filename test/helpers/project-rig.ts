// A project written from an object literal into a temporary directory, for
// loader, key and build tests: `await using rig = await ProjectRig.create({
// 'project.conf': ..., 'elements/a.bst': ... })`. Committed fixtures are
// never modified by tests; rigs are.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tempDir, type TempDir } from './tmp.js';

export class ProjectRig implements AsyncDisposable {
  private constructor(
    private readonly tmp: TempDir,
    /** The project directory. */
    readonly dir: string,
  ) {}

  /** Writes `files` (path → content) under a fresh project directory. */
  static async create(files: Record<string, string>): Promise<ProjectRig> {
    const tmp = await tempDir('specbuild-project-');
    const rig = new ProjectRig(tmp, join(tmp.path, 'project'));
    await mkdir(rig.dir, { recursive: true });
    await rig.write(files);
    return rig;
  }

  /** The rig's scratch space outside the project (caches, sources). */
  get scratch(): string {
    return this.tmp.path;
  }

  async write(files: Record<string, string>): Promise<void> {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(this.dir, path)), { recursive: true });
      await writeFile(join(this.dir, path), content);
    }
  }

  /** Removes a file (or directory) of the project. */
  async remove(path: string): Promise<void> {
    await rm(join(this.dir, path), { recursive: true });
  }

  read(path: string): Promise<string> {
    return readFile(join(this.dir, path), 'utf8');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.tmp[Symbol.asyncDispose]();
  }
}

/** A minimal project.conf. */
export const PROJECT_CONF = 'name: test\nmin-version: 2.0\nelement-path: elements\n';
