// The sandbox on its caller's terminal (inheritStdio, for `specbuild shell`):
// the command reads the caller's stdin and writes its stdout and stderr, a
// job-control shell on a real terminal (a pty from script(1)) gets the
// foreground and gives it back, and a sandbox never outlives the process that
// started it, even one killed with SIGKILL.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers/paths.js';
import { requireCommand } from '../helpers/prereq.js';
import { runProcess, startService } from '../helpers/process.js';
import { tempDir, type TempDir } from '../helpers/tmp.js';

const sandboxModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'sandbox', 'index.js')).href;

/** A Node script that runs `argv` in a sandbox on its own stdio; exits with the command's status. */
async function callerScript(tmp: TempDir): Promise<string> {
  const scratch = join(tmp.path, 'scratch');
  await mkdir(scratch, { recursive: true });
  const script = join(tmp.path, 'caller.mjs');
  await writeFile(
    script,
    [
      `const { runInSandbox } = await import(${JSON.stringify(sandboxModule)});`,
      'const r = await runInSandbox({',
      '  argv: process.argv.slice(2),',
      "  env: { PATH: '/usr/bin:/bin', PS1: '$ ' },",
      `  scratchDir: ${JSON.stringify(scratch)},`,
      '  inheritStdio: true,',
      '});',
      'process.exitCode = r.exitCode;',
      '',
    ].join('\n'),
  );
  return script;
}

function processesWith(marker: string): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

describe("sandbox on the caller's terminal", () => {
  it("gives the command the caller's stdin, stdout and stderr, and its exit status", async () => {
    await using tmp = await tempDir();
    const script = await callerScript(tmp);
    const r = await runProcess(
      process.execPath,
      [script, 'sh', '-c', 'read line; echo "read: $line"; echo to-stderr >&2; exit 9'],
      { timeoutMs: 30_000, input: 'from the caller\n' },
    );
    assert.equal(r.code, 9, r.output);
    assert.equal(r.stdout, 'read: from the caller\n');
    assert.equal(r.stderr, 'to-stderr\n');
  });

  it('lets a job-control shell on a terminal take the foreground and give it back', async () => {
    requireCommand('script', 'apt-get install bsdutils');
    await using tmp = await tempDir();
    const script = await callerScript(tmp);
    // script(1) runs the caller on a pty; what we type goes to the shell.
    const r = await runProcess(
      'script',
      ['-qec', `${process.execPath} ${script} sh -i`, '/dev/null'],
      {
        timeoutMs: 30_000,
        input: 'test -t 0 && echo "a terminal"; exit 6\n',
      },
    );
    assert.equal(r.code, 6, r.output);
    assert.match(r.stdout, /(?:^|\$ )a terminal\r?$/m);
    // No complaint about the terminal's process group when the shell leaves.
    assert.doesNotMatch(r.stdout, /process group|job control/i);
  });

  it('ends with the process that started it, even one killed by SIGKILL', async () => {
    await using tmp = await tempDir();
    const script = await callerScript(tmp);
    const marker = `sandbox-caller-${process.pid}-${Date.now()}`;
    const caller = await startService(
      process.execPath,
      // The marker is the shell's $0: on its command line and its sandbox's.
      [script, 'sh', '-c', 'echo started; sleep 300; :', marker],
      { ready: (out) => (out.includes('started') ? true : undefined) },
    );
    assert.ok(processesWith(marker) > 0, 'the sandboxed command runs');
    await caller.kill();
    for (let i = 0; i < 500 && processesWith(marker) > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(processesWith(marker), 0, 'nothing of the sandbox is left');
  });
});
