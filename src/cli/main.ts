#!/usr/bin/env node
// specbuild's command line: BuildStream's verbs (build, show, source,
// artifact, shell) plus `server`, parsed with commander (subcommands, help
// with examples, usage errors as exit 2); errors map to exit codes through
// cli/exit-codes.ts.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  artifactCheckoutCommand,
  artifactDeleteCommand,
  artifactListContentsCommand,
  artifactLogCommand,
} from './artifact-command.js';
import { artifactRemotes, type ArtifactRemote } from './artifact-remotes.js';
import { artifactPullCommand, artifactPushCommand } from './artifact-share.js';
import { buildCommand } from './build-command.js';
import { EXIT, runEntryPoint } from './exit-codes.js';
import { explainCommand } from './explain-command.js';
import type { GlobalOptions } from './options.js';
import { serverCommand, serverHelp } from './server-command.js';
import {
  DEFAULT_SHOW_FORMAT,
  parseDeps,
  showCommand,
  showSpeculative,
  type DepsChoice,
} from './show-command.js';
import { shellCommand } from './shell-command.js';
import { sourceFetchCommand, sourceTrackCommand } from './source-command.js';
import { loadUserConfig } from './user-config.js';
import { MODES, parseMode, type Mode } from '../speculative/index.js';
import { LoadFailed, openProject } from './workspace.js';
import { formatDiagnostics } from './render/diagnostic.js';

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError('must be a whole number above 0');
  return n;
}

interface RawGlobals {
  directory: string;
  config?: string;
  builders?: number;
  onError?: 'quit' | 'continue';
  debug?: boolean;
}

async function globals(program: Command): Promise<GlobalOptions> {
  const raw = program.opts<RawGlobals>();
  const cfg = await loadUserConfig(raw.config);
  if (!cfg.ok) throw new LoadFailed(formatDiagnostics(cfg.errors, process.cwd()));
  return {
    directory: raw.directory,
    config: cfg.value,
    builders: raw.builders,
    onError: raw.onError,
    debug: raw.debug === true,
  };
}

function program(): { cli: Command; result: { code: number } } {
  const result: { code: number } = { code: EXIT.ok };
  const cli = new Command('specbuild')
    .description(
      'An element-based build tool for BuildStream projects, whose compiles and links are REAPI actions primed ahead of rebuilds (speculative actions).',
    )
    .option(
      '-C, --directory <dir>',
      'the project directory (project.conf is looked for upward)',
      '.',
    )
    .option(
      '--config <file>',
      'user configuration (default $XDG_CONFIG_HOME/specbuild/specbuild.yaml)',
    )
    .option(
      '--builders <n>',
      'elements built at once (default: scheduler.builders, else the core count)',
      positiveInt,
    )
    .addOption(
      new Option(
        '--on-error <what>',
        'after a failed element: stop starting new builds, or go on',
      ).choices(['quit', 'continue']),
    )
    .option('--debug', 'show stack traces on errors')
    // Global options come before the verb, as in BuildStream: after it, a
    // verb's own option of the same name (artifact checkout --directory) wins.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();

  // --remote for one-off use; else the user configuration's servers, then the project's.
  const remotesOf = async (
    opts: { remote?: string[] },
    g: GlobalOptions,
  ): Promise<ArtifactRemote[]> =>
    opts.remote === undefined
      ? artifactRemotes(g.config, await openProject(g.directory, g.config))
      : opts.remote.map((url) => ({ url, push: true }));
  cli
    .command('build')
    .description('build the elements and everything they need that is not cached')
    .argument('<elements...>', 'element names, e.g. app.bst')
    .option(
      '--report <file>',
      'write what happened to each element as JSON (docs/report.schema.json)',
    )
    .option(
      '--timeline <file>',
      'write the build as one self-contained HTML page: element builds and primed actions over time, per lane, with the figures of --report',
    )
    .option(
      '--trace <file>',
      'write the same timeline as Chrome trace JSON (open it in chrome://tracing or ui.perfetto.dev)',
    )
    .option(
      '--speculative-actions <mode>',
      `generate and prime speculative actions: ${MODES.join(', ')} (true = full, false = none; default: scheduler.speculative-actions, else none)`,
      (v: string) => {
        try {
          return parseMode(v, '--speculative-actions');
        } catch (e) {
          throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
        }
      },
    )
    .option(
      '--remote <url>',
      'an artifact server to pull from and push to (HOST:PORT, grpc://, grpcs://, unix:PATH); default: artifacts.servers of the configuration',
      collect,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  specbuild build app.bst\n  specbuild -C examples/hello build hello.bst --report /tmp/report.json\n  specbuild build --speculative-actions full --remote cache.example.com:50051 app.bst\n  specbuild build --timeline build.html --trace build.trace.json app.bst\n',
    )
    .action(
      async (
        elements: string[],
        opts: {
          report?: string;
          timeline?: string;
          trace?: string;
          speculativeActions?: Mode;
          remote?: string[];
        },
      ) => {
        const g = await globals(cli);
        result.code = await buildCommand(elements, opts, g);
      },
    );

  cli
    .command('show')
    .description("show elements' states and cache keys, without building")
    .argument('<elements...>', 'element names')
    .option(
      '-d, --deps <deps>',
      'which dependencies to show: none, build, run or all',
      parseDeps,
      'all' as DepsChoice,
    )
    .option(
      '-f, --format <format>',
      'per element: %{name} %{state} %{key} %{full-key} %{weak-key} %{kind} %{description}, with optional alignment as in %{state: >12}',
      DEFAULT_SHOW_FORMAT,
    )
    .addHelpText(
      'after',
      "\nStates: cached, buildable, waiting, fetch needed, no reference, failed.\n\nExamples:\n  specbuild show app.bst\n  specbuild show --deps none --format '%{name} %{weak-key}' app.bst\n",
    )
    .option('--speculative', "print the elements' stored speculative actions and their overlays")
    .action(
      async (
        elements: string[],
        opts: { deps: DepsChoice; format: string; speculative?: boolean },
      ) => {
        result.code =
          opts.speculative === true
            ? await showSpeculative(elements, await globals(cli))
            : await showCommand(elements, opts, await globals(cli));
      },
    );

  cli
    .command('explain')
    .description(
      "why the actions of the element's last build missed the cache: the previous build's matching action, the input files that differ and where each came from, and why priming did not match",
    )
    .argument('<element>', 'element name')
    .option('--json', 'print the explanation as JSON (docs/explain.schema.json)')
    .addHelpText(
      'after',
      "\nReads the trace each build leaves in the cache (docs/explain.md); exits 1 when the element has no recorded build.\n\nExamples:\n  specbuild explain app.bst\n  specbuild explain --json app.bst | jq '.misses[].previous.inputs'\n",
    )
    .action(async (element: string, opts: { json?: boolean }) => {
      result.code = await explainCommand(element, opts, await globals(cli));
    });

  const source = cli
    .command('source')
    .description("fetch elements' sources, or track them to new refs");
  const depsOption = (): Option =>
    new Option('-d, --deps <deps>', 'also the dependencies: none, build, run or all')
      .argParser(parseDeps)
      .default('none');
  source
    .command('fetch')
    .description(
      'fetch the sources of the elements into the source cache, checked against their refs',
    )
    .argument('<elements...>', 'element names')
    .addOption(depsOption())
    .addHelpText(
      'after',
      '\nExamples:\n  specbuild source fetch app.bst\n  specbuild source fetch --deps all app.bst\n',
    )
    .action(async (elements: string[], opts: { deps: DepsChoice }) => {
      result.code = await sourceFetchCommand(elements, opts, await globals(cli));
    });
  source
    .command('track')
    .description(
      'move the refs of tar and git sources to what they track now, rewriting ref: in the element files',
    )
    .argument('<elements...>', 'element names')
    .addOption(depsOption())
    .addHelpText(
      'after',
      '\nPrints each changed ref as old → new.\n\nExamples:\n  specbuild source track app.bst\n  specbuild source track --deps all app.bst\n',
    )
    .action(async (elements: string[], opts: { deps: DepsChoice }) => {
      result.code = await sourceTrackCommand(elements, opts, await globals(cli));
    });

  const artifact = cli
    .command('artifact')
    .description(
      "the cached artifact of an element's current key: its files, its log, or forget it",
    );
  artifact
    .command('checkout')
    .description("write the files of the element's cached artifact into a directory")
    .argument('<element>', 'element name')
    .option(
      '--directory <dir>',
      'where to write them (default: the element name without .bst, in the current directory)',
    )
    .option('-f, --force', 'write into a directory that is not empty, replacing files in the way')
    .addHelpText(
      'after',
      '\nExamples:\n  specbuild artifact checkout app.bst --directory /tmp/app\n  specbuild artifact checkout --force app.bst --directory out\n',
    )
    .action(async (element: string, opts: { directory?: string; force?: boolean }) => {
      result.code = await artifactCheckoutCommand(element, opts, await globals(cli));
    });
  artifact
    .command('log')
    .description(
      "print the element's build log (or its failed build's, when that is what is remembered)",
    )
    .argument('<element>', 'element name')
    .addHelpText('after', '\nExample:\n  specbuild artifact log app.bst | less\n')
    .action(async (element: string) => {
      result.code = await artifactLogCommand(element, await globals(cli));
    });
  artifact
    .command('list-contents')
    .description("list the paths in the element's artifact, one per line, sorted")
    .argument('<element>', 'element name')
    .addHelpText('after', '\nExample:\n  specbuild artifact list-contents app.bst\n')
    .action(async (element: string) => {
      result.code = await artifactListContentsCommand(element, await globals(cli));
    });
  artifact
    .command('push')
    .description(
      "send the elements' cached artifacts, and what priming on another machine needs, to an artifact remote",
    )
    .argument('<elements...>', 'element names')
    .option(
      '--remote <url>',
      'an artifact server (HOST:PORT, grpc://, grpcs://, unix:PATH); default: artifacts.servers of the user configuration, then artifacts of project.conf',
      collect,
    )
    .addHelpText(
      'after',
      '\nExample:\n  specbuild artifact push --remote cache.example.com:50051 app.bst\n',
    )
    .action(async (elements: string[], opts: { remote?: string[] }) => {
      const g = await globals(cli);
      result.code = await artifactPushCommand(elements, { remotes: await remotesOf(opts, g) }, g);
    });
  artifact
    .command('pull')
    .description("fetch the elements' artifacts of their current keys from an artifact remote")
    .argument('<elements...>', 'element names')
    .option(
      '--remote <url>',
      'an artifact server (HOST:PORT, grpc://, grpcs://, unix:PATH); default: artifacts.servers of the user configuration, then artifacts of project.conf',
      collect,
    )
    .addHelpText(
      'after',
      '\nExample:\n  specbuild artifact pull --remote cache.example.com:50051 app.bst\n',
    )
    .action(async (elements: string[], opts: { remote?: string[] }) => {
      const g = await globals(cli);
      result.code = await artifactPullCommand(elements, { remotes: await remotesOf(opts, g) }, g);
    });
  artifact
    .command('delete')
    .description(
      'forget the artifacts of the elements (every key): their next build makes them again',
    )
    .argument('<elements...>', 'element names')
    .addHelpText('after', '\nExample:\n  specbuild artifact delete app.bst\n')
    .action(async (elements: string[]) => {
      result.code = await artifactDeleteCommand(elements, await globals(cli));
    });

  cli
    .command('shell')
    .description(
      "a shell (or COMMAND) in the element's staged runtime, or with --build in its build environment",
    )
    .argument('<element>', 'element name')
    .argument('[command...]', 'what to run instead of sh -i (after --)')
    .option(
      '-b, --build',
      'its build environment: build dependencies staged, sources at %{build-root}, its environment (the directory of a failed build, when its last build failed)',
    )
    .addHelpText(
      'after',
      '\nExits with the status of the shell or COMMAND.\n\nExamples:\n  specbuild shell app.bst\n  specbuild shell --build app.bst\n  specbuild shell app.bst -- app --version\n',
    )
    .action(async (element: string, command: string[], opts: { build?: boolean }) => {
      result.code = await shellCommand(element, command, opts, await globals(cli));
    });

  cli
    .command('server')
    .description('serve the local CAS, action cache and execution over REAPI gRPC')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .addHelpText('after', `\n${serverHelp}`)
    .action(async (args: string[]) => {
      result.code = await serverCommand(args);
    });
  return { cli, result };
}

async function main(argv: string[]): Promise<number> {
  const { cli, result } = program();
  if (argv.length === 0) {
    process.stdout.write(cli.helpInformation());
    return EXIT.usage;
  }
  try {
    await cli.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has already printed the message (and the help for a usage error).
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version'
        ? EXIT.ok
        : EXIT.usage;
    }
    if (e instanceof LoadFailed) {
      process.stderr.write(e.rendered);
      return EXIT.usage;
    }
    throw e;
  }
  return result.code;
}

runEntryPoint(() => main(process.argv.slice(2)), process.argv.includes('--debug'));
