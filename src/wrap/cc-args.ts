// Reads a gcc/clang command line so specbuild-cc caches only the compiles it fully understands.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** A single-source compile (-c or -S) whose inputs -M can discover and whose outputs are known. */
export interface CompileInfo {
  kind: 'compile';
  source: string;
  /** The gcc language the source is compiled as (from -x, else from its suffix). */
  language: string | undefined;
  /** Every file the compile writes: the object (or .s), the .d file, the .dwo file. */
  outputs: string[];
  objectPath: string;
  depFile: string | undefined;
  /** Whether the command asked for its .d file with -MD (every header) or -MMD (no system headers). */
  depMode: 'MD' | 'MMD' | undefined;
  /** Arguments that make the same compiler print make rules for every input to stdout. */
  depsArgs: string[];
  /**
   * Indices in expandedArgs of the source, -c/-S, -o and the dependency
   * options with their values: what is left are the flags (for a query such
   * as the include search path).
   */
  dropForQuery: ReadonlySet<number>;
  /**
   * The files of -include and -imacros (also through -Wp, and
   * -Xpreprocessor), as given: looked for first in the working directory.
   */
  forcedIncludes: string[];
  expandedArgs: string[];
}

/** A pure link: operands are objects, archives and the like, never sources. */
export interface LinkInfo {
  kind: 'link';
  inputs: string[];
  output: string;
  expandedArgs: string[];
}

/** Anything else: run the command locally, unchanged. */
export interface LocalInfo {
  kind: 'local';
  reason: string;
}

export type CompileParse = CompileInfo | LinkInfo | LocalInfo;

export interface ParseOptions {
  readResponseFile?: (path: string) => string;
  /** The command's working directory: relative @files are read from there. */
  cwd?: string;
}

function words(text: string): string[] {
  return text.trim().split(/\s+/);
}

const SUFFIX_LANGUAGE = new Map<string, string>([
  ['c', 'c'],
  ['i', 'cpp-output'],
  ['ii', 'c++-cpp-output'],
  ['m', 'objective-c'],
  ['mi', 'objc-cpp-output'],
  ['mm', 'objective-c++'],
  ['M', 'objective-c++'],
  ['mii', 'objc++-cpp-output'],
  ['h', 'c-header'],
  ...['cc', 'cp', 'cxx', 'cpp', 'CPP', 'c++', 'C'].map((s): [string, string] => [s, 'c++']),
  ...['hh', 'H', 'hp', 'hxx', 'hpp', 'HPP', 'h++', 'tcc'].map((s): [string, string] => [
    s,
    'c++-header',
  ]),
  ['s', 'assembler'],
  ['S', 'assembler-with-cpp'],
  ['sx', 'assembler-with-cpp'],
]);

const X_LANGUAGES = new Set([
  ...SUFFIX_LANGUAGE.values(),
  'objective-c-header',
  'objective-c++-header',
  'c++-system-header',
  'c++-user-header',
  'objective-c-cpp-output',
  'objective-c++-cpp-output',
]);

/** Flags without a value that change neither what a compile reads nor what it writes. */
const PLAIN = new Set(
  words(`
  -w -pipe -pthread -pthreads -shared -static -static-pie -shared-libgcc -rdynamic -s -ansi
  -pedantic -pedantic-errors -nostdinc -nostdinc++ -nostdlib -nostdlib++ -nodefaultlibs
  -nostartfiles -nolibc -pie -no-pie -symbolic -undef -trigraphs -traditional -traditional-cpp
  -P -C -CC -H -p -pg -r -no-canonical-prefixes -pass-exit-codes -time -emit-llvm -integrated-as
  -no-integrated-as -Qunused-arguments -Qn -Qy -nostdlibinc -nobuiltininc
`),
);

/** Prefixes of options whose value is always joined (-O2, -std=c11); checked last. */
const PLAIN_PREFIXES = words(`
  -f -W -m -O -g -std= --std= --sysroot= --param= --target= --gcc-toolchain= -stdlib= -rtlib=
  -unwindlib= -static-lib
`);

/** Options whose value is the next argument. */
const SEPARATE = new Set(
  words(`
  -Xpreprocessor -Xassembler -Xlinker -Xclang -mllvm --param --sysroot -target -arch
  -gcc-toolchain -isystem-after -Tbss -Tdata -Ttext -V -b -framework -install_name
  -exported_symbols_list
`),
);

/** Options whose value is joined (-Ifoo) or the next argument (-I foo); longest first. */
const JOINED_OR_SEPARATE = words(`
  -o -x -I -D -U -L -l -A -T -u -z -e -G -F -MF -MT -MQ -iquote -isystem -idirafter -include
  -imacros -iprefix -iwithprefix -iwithprefixbefore -isysroot -imultilib -imultiarch -iframework
  -iframeworkwithsysroot
`).sort((a, b) => b.length - a.length);

/** Options meaning "not a plain compile", or writing or reading files -M does not report. */
const LOCAL_EXACT = new Map([
  ['-v', 'verbose mode (-v)'],
  ['-###', 'dry run (-###)'],
  ['--version', 'version query'],
  ['--help', 'help query'],
  ['--target-help', 'help query'],
  ['-E', 'preprocess only (-E)'],
  ['-M', 'dependency listing only (-M)'],
  ['-MM', 'dependency listing only (-MM)'],
  ['-save-temps', '-save-temps writes intermediate files'],
  ['--save-temps', '-save-temps writes intermediate files'],
  ['--coverage', '--coverage writes coverage notes'],
  ['-ftest-coverage', '-ftest-coverage writes coverage notes'],
  ['-fbranch-probabilities', 'reads profile data'],
  ['-fstack-usage', '-fstack-usage writes .su files'],
  ['-fsyntax-only', '-fsyntax-only writes no output'],
  ['-aux-info', '-aux-info writes an extra file'],
  ['-wrapper', '-wrapper runs other programs'],
  ['-include-pch', 'precompiled header input'],
  ['-ivfsoverlay', 'VFS overlay input'],
  ['--serialize-diagnostics', 'writes a diagnostics file'],
]);

const LOCAL_PREFIXES: [string, string][] = [
  ['-save-temps=', '-save-temps writes intermediate files'],
  ['-fdump-', '-fdump-* writes dump files'],
  ['-fprofile', 'profile instrumentation or profile data'],
  ['-fcs-profile', 'profile instrumentation'],
  ['-fauto-profile', 'reads profile data'],
  ['-fcallgraph-info', '-fcallgraph-info writes .ci files'],
  ['-fplugin', 'compiler plugin'],
  ['-fmodules', 'C++/clang modules'],
  ['-fmodule-', 'C++/clang modules'],
  ['-fsave-optimization-record', 'writes optimization records'],
  ['-ftime-trace', 'writes a time trace'],
  ['-fdeps-', 'writes module dependency information'],
  ['-fcompare-debug', '-fcompare-debug runs the compiler twice'],
  ['-specs=', 'specs file'],
  ['--specs=', 'specs file'],
  ['-B', '-B changes which compiler programs run'],
  ['-dump', 'compiler query or dump naming (-dump*)'],
  ['-print-', 'compiler query (-print-*)'],
  ['--print-', 'compiler query (--print-*)'],
  ['--help=', 'help query'],
  ['-MJ', 'writes a compilation database entry'],
];

function localReason(a: string): string | undefined {
  const exact = LOCAL_EXACT.get(a);
  if (exact !== undefined) return exact;
  // The CPU of whichever machine compiles, which the action does not name.
  if (/^-m(arch|cpu|tune)=native$/.test(a)) return `${a} compiles for this machine's CPU`;
  if (a.startsWith('-fno-')) return undefined;
  if (a.startsWith('-fdiagnostics-format=') && a.endsWith('-file'))
    return 'writes a diagnostics file';
  if (a.startsWith('-fopt-info') && a.includes('=')) return '-fopt-info writes a file';
  return LOCAL_PREFIXES.find(([p]) => a.startsWith(p))?.[1];
}

/** Preprocessor or assembler pass-through arguments that write extra files. */
function passThroughReason(
  tool: 'preprocessor' | 'assembler',
  values: string[],
): string | undefined {
  const bad =
    tool === 'preprocessor'
      ? values.find((v) => v.startsWith('-M') || v === '-o')
      : values.find((v) => v.startsWith('-a') || v === '--MD' || v === '-MD' || v === '-o');
  return bad === undefined ? undefined : `${tool} option ${bad} writes an extra file`;
}

const LINKER_WRITES = ['-Map', '--Map', '--out-implib', '--dependency-file', '-o', '--output'];

/** Splits a response file the way libiberty's buildargv does (gcc's @file). */
export function splitResponseFile(text: string): string[] {
  const out: string[] = [];
  const space = /[ \t\n\v\f\r]/;
  let i = 0;
  for (;;) {
    while (i < text.length && space.test(text.charAt(i))) i++;
    if (i >= text.length) return out;
    let arg = '';
    let quote = '';
    for (; i < text.length; i++) {
      const c = text.charAt(i);
      if (quote === '' && space.test(c)) break;
      if (c === '\\') arg += text.charAt(++i);
      else if (quote !== '') {
        if (c === quote) quote = '';
        else arg += c;
      } else if (c === "'" || c === '"') quote = c;
      else arg += c;
    }
    out.push(arg);
  }
}

const MAX_RESPONSE_DEPTH = 10;

function expandResponseFiles(
  args: readonly string[],
  read: (path: string) => string,
  depth: number,
): string[] | LocalInfo {
  const out: string[] = [];
  for (const a of args) {
    if (!a.startsWith('@')) {
      out.push(a);
      continue;
    }
    if (depth >= MAX_RESPONSE_DEPTH)
      return { kind: 'local', reason: `response files nested deeper than ${MAX_RESPONSE_DEPTH}` };
    let text: string;
    try {
      text = read(a.slice(1));
    } catch {
      return { kind: 'local', reason: `cannot read response file ${a.slice(1)}` };
    }
    const inner = expandResponseFiles(splitResponseFile(text), read, depth + 1);
    if (!Array.isArray(inner)) return inner;
    out.push(...inner);
  }
  return out;
}

/** The files named by -include and -imacros (joined or separate) in preprocessor options. */
function forcedIn(options: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const o = options[i] ?? '';
    const opt = ['-include', '-imacros'].find((p) => o.startsWith(p));
    if (opt === undefined || o.startsWith('-include-')) continue;
    const v = o === opt ? options[++i] : o.slice(opt.length);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** Replaces the extension of the last path component, or appends one (as gcc does). */
function replaceExt(path: string, ext: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return (dot > slash + 1 ? path.slice(0, dot) : path) + ext;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function suffixLanguage(path: string): string | undefined {
  const base = baseName(path);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? SUFFIX_LANGUAGE.get(base.slice(dot + 1)) : undefined;
}

/** Parses the arguments after the compiler name. */
export function parseCompilerArgs(args: readonly string[], opts: ParseOptions = {}): CompileParse {
  const read =
    opts.readResponseFile ??
    ((p: string) => readFileSync(resolve(opts.cwd ?? process.cwd(), p), 'utf8'));
  const expanded = expandResponseFiles(args, read, 0);
  if (!Array.isArray(expanded)) return expanded;
  const local = (reason: string): LocalInfo => ({ kind: 'local', reason });

  const operands: { path: string; language: string | undefined; index: number }[] = [];
  const drop = new Set<number>(); // indices left out of depsArgs
  const outs: string[] = [];
  const depFiles: string[] = [];
  let xLang: string | undefined;
  let compile = false;
  let assemble = false;
  let md = false;
  let mmd = false;
  let depOption = '';
  let splitDwarf = false;
  let linkerWrites: string | undefined;
  const forced: string[] = [];
  const xPreprocessor: string[] = []; // -Xpreprocessor values, in order

  for (let i = 0; i < expanded.length; i++) {
    const a = expanded[i] ?? '';
    if (a === '-' || a === '') return local(a === '' ? 'empty argument' : 'reads stdin (-)');
    if (!a.startsWith('-')) {
      operands.push({ path: a, language: xLang ?? suffixLanguage(a), index: i });
      continue;
    }
    if (a === '-c' || a === '-S') {
      if (a === '-c') compile = true;
      else assemble = true;
      drop.add(i);
      continue;
    }
    if (a === '-MD' || a === '-MMD' || a === '-MP' || a === '-MG') {
      if (a === '-MD' || a === '-MMD') md = true;
      if (a === '-MMD') mmd = true;
      else depOption = a;
      drop.add(i);
      continue;
    }
    const reason = localReason(a);
    if (reason !== undefined) return local(reason);
    if (PLAIN.has(a)) continue;
    if (SEPARATE.has(a)) {
      const v = expanded[i + 1];
      if (v === undefined) return local(`missing argument to ${a}`);
      i++;
      const bad =
        a === '-Xpreprocessor'
          ? passThroughReason('preprocessor', [v])
          : a === '-Xassembler'
            ? passThroughReason('assembler', [v])
            : a === '-Xclang' &&
                /^-(emit-|dependency-|M|include-pch|load|plugin|add-plugin|ast-)/.test(v)
              ? `-Xclang ${v}`
              : undefined;
      if (bad !== undefined) return local(bad);
      if (a === '-Xlinker' && LINKER_WRITES.some((w) => v.startsWith(w))) linkerWrites = v;
      if (a === '-Xpreprocessor') xPreprocessor.push(v);
      continue;
    }
    const opt = JOINED_OR_SEPARATE.find((p) => a.startsWith(p));
    if (opt !== undefined) {
      const start = i;
      let v = a.slice(opt.length);
      if (v === '') {
        const next = expanded[i + 1];
        if (next === undefined) return local(`missing argument to ${a}`);
        v = next;
        i++;
      }
      if (opt === '-o' || opt === '-MF' || opt === '-MT' || opt === '-MQ') drop.add(start).add(i);
      if (opt === '-o') outs.push(v);
      else if (opt === '-MF') depFiles.push(v);
      else if (opt === '-MT' || opt === '-MQ') depOption = opt;
      else if (opt === '-include' || opt === '-imacros') forced.push(v);
      else if (opt === '-x') {
        if (v !== 'none' && !X_LANGUAGES.has(v)) return local(`unsupported language -x ${v}`);
        xLang = v === 'none' ? undefined : v;
      }
      continue;
    }
    if (a.startsWith('-Wp,')) {
      const bad = passThroughReason('preprocessor', a.slice(4).split(','));
      if (bad !== undefined) return local(bad);
      forced.push(...forcedIn(a.slice(4).split(',')));
      continue;
    }
    if (a.startsWith('-Wa,')) {
      const bad = passThroughReason('assembler', a.slice(4).split(','));
      if (bad !== undefined) return local(bad);
      continue;
    }
    if (a.startsWith('-Wl,')) {
      const w = a
        .slice(4)
        .split(',')
        .find((p) => LINKER_WRITES.some((x) => p.startsWith(x)));
      if (w !== undefined) linkerWrites = w;
      continue;
    }
    if (a === '-gsplit-dwarf' || a === '-gsplit-dwarf=split') splitDwarf = true;
    else if (a === '-gsplit-dwarf=single' || a === '-gno-split-dwarf') splitDwarf = false;
    if (PLAIN_PREFIXES.some((p) => a.startsWith(p))) continue;
    return local(`unknown option ${a}`);
  }

  if (outs.length > 1) return local('several -o options');
  if (outs[0] === '-') return local('writes to stdout (-o -)');
  if (depFiles.length > 1) return local('several -MF options');
  if (operands.length === 0) return local('no input files');

  if (!compile && !assemble) {
    if (md || depFiles.length > 0 || depOption !== '') return local('dependency options in a link');
    const src = operands.find((o) => o.language !== undefined);
    if (src !== undefined) return local(`compiles and links (${src.path})`);
    if (linkerWrites !== undefined) return local(`linker option ${linkerWrites} writes a file`);
    return {
      kind: 'link',
      inputs: operands.map((o) => o.path),
      output: outs[0] ?? 'a.out',
      expandedArgs: expanded,
    };
  }

  if (operands.length > 1) return local(`${operands.length} input files`);
  const [{ path: source, language, index: sourceIndex }] = operands as [(typeof operands)[number]];
  if (language === undefined) return local(`unknown language of ${source} (no -x)`);
  if (language.endsWith('-header')) return local('precompiled header output');
  if (!md && (depFiles.length > 0 || depOption !== ''))
    return local('dependency options without -MD/-MMD');

  const objectPath = outs[0] ?? replaceExt(baseName(source), assemble ? '.s' : '.o');
  // gcc writes no .d file for languages it does not preprocess (.s, .i, .ii, ...).
  const preprocessed = language !== 'assembler' && !language.endsWith('cpp-output');
  const depFile =
    md && preprocessed ? (depFiles[0] ?? replaceExt(outs[0] ?? baseName(source), '.d')) : undefined;
  const outputs = [objectPath];
  if (depFile !== undefined) outputs.push(depFile);
  if (splitDwarf && !assemble) outputs.push(replaceExt(objectPath, '.dwo'));
  return {
    kind: 'compile',
    source,
    language,
    outputs: [...new Set(outputs)],
    objectPath,
    depFile,
    depMode: depFile === undefined ? undefined : mmd ? 'MMD' : 'MD',
    depsArgs: [...expanded.filter((_, i) => !drop.has(i)), '-M'],
    dropForQuery: new Set([...drop, sourceIndex]),
    forcedIncludes: [...forced, ...forcedIn(xPreprocessor)],
    expandedArgs: expanded,
  };
}
