// parseCompilerArgs: which compiler command lines specbuild-cc may cache, and how.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  parseCompilerArgs,
  splitResponseFile,
  type CompileInfo,
  type CompileParse,
  type LinkInfo,
} from '../../src/wrap/cc-args.js';
import { requireCommand } from '../helpers/prereq.js';
import { tempDir } from '../helpers/tmp.js';

function parse(args: string[], files: Record<string, string> = {}): CompileParse {
  return parseCompilerArgs(args, {
    readResponseFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return text;
    },
  });
}

function compile(args: string[], files: Record<string, string> = {}): CompileInfo {
  const r = parse(args, files);
  if (r.kind !== 'compile')
    assert.fail(`expected compile for ${args.join(' ')}: ${JSON.stringify(r)}`);
  return r;
}

function link(args: string[]): LinkInfo {
  const r = parse(args);
  if (r.kind !== 'link') assert.fail(`expected link for ${args.join(' ')}: ${JSON.stringify(r)}`);
  return r;
}

function local(args: string[], reason: RegExp, files: Record<string, string> = {}): void {
  const r = parse(args, files);
  if (r.kind !== 'local') assert.fail(`expected local for ${args.join(' ')}: ${JSON.stringify(r)}`);
  assert.match(r.reason, reason);
}

describe('parseCompilerArgs: compiles', () => {
  it('a plain -c -o compile', () => {
    const args = ['-c', 'foo.c', '-o', 'out/foo.o'];
    assert.deepEqual(compile(args), {
      kind: 'compile',
      source: 'foo.c',
      language: 'c',
      outputs: ['out/foo.o'],
      objectPath: 'out/foo.o',
      depFile: undefined,
      depMode: undefined,
      depsArgs: ['foo.c', '-M'],
      dropForQuery: new Set([0, 1, 2, 3]),
      forcedIncludes: [],
      expandedArgs: args,
    });
  });

  it('lists the -include and -imacros files, also through -Wp and -Xpreprocessor', () => {
    const c = compile([
      '-c',
      '-include',
      'pre.h',
      '-includecfg.h',
      '-imacros',
      'm.h',
      '-Wp,-include,wp.h,-imacrosmac.h',
      '-Xpreprocessor',
      '-include',
      '-Xpreprocessor',
      'xp.h',
      'a.c',
    ]);
    assert.deepEqual(c.forcedIncludes, ['pre.h', 'cfg.h', 'm.h', 'wp.h', 'mac.h', 'xp.h']);
  });

  it('derives the object name from the source basename, in the cwd', () => {
    assert.equal(compile(['-c', 'src/foo.c']).objectPath, 'foo.o');
    assert.equal(compile(['-c', 'src/b.tar.cc']).objectPath, 'b.tar.o');
    assert.deepEqual(compile(['-c', 'src/foo.c']).outputs, ['foo.o']);
  });

  it('-S writes assembly: derived .s, or -o', () => {
    assert.equal(compile(['-S', 'src/foo.c']).objectPath, 'foo.s');
    assert.equal(compile(['-S', 'foo.c', '-o', 'x.asm']).objectPath, 'x.asm');
    assert.equal(compile(['-c', '-S', 'foo.c']).objectPath, 'foo.s');
    assert.deepEqual(compile(['-S', 'foo.c']).depsArgs, ['foo.c', '-M']);
  });

  it('joined -o', () => {
    const c = compile(['-c', '-oout/x.o', 'a.c']);
    assert.equal(c.objectPath, 'out/x.o');
    assert.deepEqual(c.depsArgs, ['a.c', '-M']);
  });

  it('recognises every source suffix', () => {
    const table: [string, string][] = [
      ['a.c', 'c'],
      ['a.i', 'cpp-output'],
      ['a.ii', 'c++-cpp-output'],
      ['a.m', 'objective-c'],
      ['a.mi', 'objc-cpp-output'],
      ['a.mm', 'objective-c++'],
      ['a.M', 'objective-c++'],
      ['a.mii', 'objc++-cpp-output'],
      ['a.cc', 'c++'],
      ['a.cp', 'c++'],
      ['a.cxx', 'c++'],
      ['a.cpp', 'c++'],
      ['a.CPP', 'c++'],
      ['a.c++', 'c++'],
      ['a.C', 'c++'],
      ['a.s', 'assembler'],
      ['a.S', 'assembler-with-cpp'],
      ['a.sx', 'assembler-with-cpp'],
    ];
    for (const [file, language] of table) {
      const c = compile(['-c', `dir.x/${file}`]);
      assert.equal(c.language, language, file);
      assert.equal(c.source, `dir.x/${file}`);
      assert.equal(c.objectPath, 'a.o', file);
    }
  });

  it('-x sets the language of the following operands until -x none', () => {
    const c = compile(['-x', 'c', '-c', 'foo.txt']);
    assert.equal(c.language, 'c');
    assert.equal(c.objectPath, 'foo.o');
    assert.deepEqual(c.depsArgs, ['-x', 'c', 'foo.txt', '-M']);
    assert.equal(compile(['-xc++', '-c', 'gen/foo.inc', '-o', 'f.o']).language, 'c++');
    assert.equal(compile(['-x', 'c', '-c', 'prog']).objectPath, 'prog.o');
    assert.equal(
      compile(['-x', 'assembler-with-cpp', '-c', 'start.asm']).language,
      'assembler-with-cpp',
    );
    // -x c also overrides a known suffix: a header compiled as C is a plain compile.
    const h = compile(['-x', 'c', '-c', 'inc/h.h']);
    assert.equal(h.language, 'c');
    assert.equal(h.objectPath, 'h.o');
    local(['-x', 'c', '-x', 'none', '-c', 'foo.txt'], /unknown language of foo\.txt/);
    local(['-c', 'foo.txt', '-x', 'c'], /unknown language of foo\.txt/);
    local(['-x', 'cuda', '-c', 'k.cu'], /unsupported language -x cuda/);
  });

  it('-MD derives the .d from -o, replacing the extension', () => {
    const c = compile(['-c', '-MD', 'src/a.c', '-o', 'out/x.o']);
    assert.equal(c.depFile, 'out/x.d');
    assert.deepEqual(c.outputs, ['out/x.o', 'out/x.d']);
    assert.deepEqual(c.depsArgs, ['src/a.c', '-M']);
    assert.equal(compile(['-c', '-MD', 'a.c', '-o', 'out/x']).depFile, 'out/x.d');
    assert.equal(compile(['-c', '-MD', 'a.c', '-o', 'out.dir/x']).depFile, 'out.dir/x.d');
    assert.equal(compile(['-c', '-MD', 'a.c', '-o', 'out/x.y.o']).depFile, 'out/x.y.d');
    assert.equal(compile(['-S', '-MD', 'a.c', '-o', 'out/z.s']).depFile, 'out/z.d');
  });

  it('-MD without -o derives the .d from the source basename', () => {
    const c = compile(['-c', '-MD', 'src/a.c']);
    assert.equal(c.depFile, 'a.d');
    assert.deepEqual(c.outputs, ['a.o', 'a.d']);
    assert.equal(c.depMode, 'MD');
    assert.equal(compile(['-c', '-MMD', 'src/b.tar.c']).depFile, 'b.tar.d');
    assert.equal(compile(['-c', '-MMD', 'src/b.tar.c']).depMode, 'MMD');
    // An assembler source is not preprocessed: no .d file, whatever was asked.
    assert.equal(compile(['-c', '-MD', 'x.s']).depMode, undefined);
  });

  it('-MF names the .d, joined or separate; -MT -MQ -MP -MG are dropped from depsArgs', () => {
    const sep = compile(['-c', '-MMD', '-MF', 'deps/a.d', '-MT', 't', '-MQ', 'q', 'a.c', '-MP']);
    assert.equal(sep.depFile, 'deps/a.d');
    assert.deepEqual(sep.outputs, ['a.o', 'deps/a.d']);
    assert.deepEqual(sep.depsArgs, ['a.c', '-M']);
    const joined = compile(['-c', '-MD', '-MFdeps/a.d', '-MTt', '-MQq', '-MG', 'a.c']);
    assert.equal(joined.depFile, 'deps/a.d');
    assert.deepEqual(joined.depsArgs, ['a.c', '-M']);
  });

  it('depsArgs keeps every other argument, in order', () => {
    const c = compile([
      '-c',
      '-DX=1',
      '-I',
      'inc dir',
      '-isystem',
      'sys',
      '-include',
      'cfg.h',
      'a.c',
      '-o',
      'a.o',
      '-O2',
      '-MD',
      '-MF',
      'a.d',
      '-MT',
      't',
      '-MP',
      '-gsplit-dwarf',
      '-Wl,-Map=x.map',
    ]);
    assert.deepEqual(c.depsArgs, [
      '-DX=1',
      '-I',
      'inc dir',
      '-isystem',
      'sys',
      '-include',
      'cfg.h',
      'a.c',
      '-O2',
      '-gsplit-dwarf',
      '-Wl,-Map=x.map',
      '-M',
    ]);
  });

  it('no .d for languages gcc does not preprocess', () => {
    const s = compile(['-c', '-MD', 'k.s']);
    assert.equal(s.depFile, undefined);
    assert.deepEqual(s.outputs, ['k.o']);
    assert.equal(compile(['-c', '-MD', 'k.i']).depFile, undefined);
    assert.equal(compile(['-c', '-MD', 'k.ii']).depFile, undefined);
    assert.equal(compile(['-c', '-MD', 'k.S']).depFile, 'k.d');
  });

  it('-gsplit-dwarf adds a .dwo beside the object', () => {
    assert.deepEqual(compile(['-c', '-g', '-gsplit-dwarf', 'a.c', '-o', 'out/x.o']).outputs, [
      'out/x.o',
      'out/x.dwo',
    ]);
    assert.deepEqual(compile(['-c', '-gsplit-dwarf', 'src/a.c']).outputs, ['a.o', 'a.dwo']);
    assert.deepEqual(compile(['-c', '-gsplit-dwarf', 'a.c', '-o', 'out/x']).outputs, [
      'out/x',
      'out/x.dwo',
    ]);
    assert.deepEqual(compile(['-c', '-gsplit-dwarf=split', 'a.c']).outputs, ['a.o', 'a.dwo']);
    assert.deepEqual(compile(['-c', '-gsplit-dwarf=single', 'a.c']).outputs, ['a.o']);
    assert.deepEqual(compile(['-c', '-gsplit-dwarf', '-gno-split-dwarf', 'a.c']).outputs, ['a.o']);
    assert.deepEqual(compile(['-S', '-gsplit-dwarf', 'a.c']).outputs, ['a.s']);
    assert.deepEqual(
      compile(['-c', '-MD', '-MF', 'm.d', '-gsplit-dwarf', 'a.c', '-o', 'out/x.o']).outputs,
      ['out/x.o', 'm.d', 'out/x.dwo'],
    );
  });

  it('separate option values are not mistaken for operands', () => {
    const withValue = [
      '-I',
      '-iquote',
      '-isystem',
      '-idirafter',
      '-include',
      '-imacros',
      '-iprefix',
      '-iwithprefix',
      '-iwithprefixbefore',
      '-isysroot',
      '-imultilib',
      '--sysroot',
      '-D',
      '-U',
      '-A',
      '-MF',
      '-MT',
      '-MQ',
      '-L',
      '-l',
      '-Xpreprocessor',
      '-Xassembler',
      '-Xlinker',
      '-T',
      '-u',
      '-z',
      '-e',
      '--param',
      '-arch',
      '-target',
      '-Xclang',
      '-mllvm',
      '-G',
      '-V',
      '-b',
    ];
    for (const opt of withValue) {
      const c = compile(['-c', '-MD', opt, 'value.c', 'a.c']);
      assert.equal(c.source, 'a.c', opt);
      assert.equal(c.objectPath, 'a.o', opt);
    }
    // Without an option in front, the value is a second source.
    local(['-c', '-MD', 'value.c', 'a.c'], /2 input files/);
  });

  it('joined option forms', () => {
    const args = [
      '-c',
      '-Iinc',
      '-DX=1',
      '-UY',
      '-isystemsys',
      '-iquoteq',
      '-idirafterd',
      '-includecfg.h',
      '-imacrosm.h',
      '-isysroot/sdk',
      '--sysroot=/x',
      '--param=max-inline-insns-single=10',
      '--target=x86_64-linux-gnu',
      '-std=c11',
      '-O2',
      '-g3',
      '-fPIC',
      '-march=x86-64-v2',
      '-Wall',
      '-Wno-unused',
      '-Wp,-DFOO',
      '-Wa,--noexecstack',
      '-Lx',
      '-lm',
      '-pthread',
      '-pedantic',
      '-w',
      'a.c',
    ];
    const c = compile(args);
    assert.equal(c.source, 'a.c');
    assert.deepEqual(c.depsArgs, [...args.slice(1), '-M']);
  });

  it('accepts harmless -f flags that only look like local ones', () => {
    assert.equal(compile(['-c', '-fno-profile-arcs', 'a.c']).source, 'a.c');
    assert.equal(compile(['-c', '-fopt-info-vec', 'a.c']).source, 'a.c');
    assert.equal(compile(['-c', '-flto', '-ffat-lto-objects', 'a.c']).source, 'a.c');
  });

  it('ignores linker options in a compile', () => {
    assert.deepEqual(compile(['-c', 'a.c', '-Wl,-Map=a.map', '-Xlinker', '-Map']).outputs, ['a.o']);
  });
});

describe('parseCompilerArgs: links', () => {
  it('objects and -o', () => {
    assert.deepEqual(link(['foo.o', 'bar.o', '-o', 'app']), {
      kind: 'link',
      inputs: ['foo.o', 'bar.o'],
      output: 'app',
      expandedArgs: ['foo.o', 'bar.o', '-o', 'app'],
    });
  });

  it('archives, shared objects, libtool objects; a.out by default', () => {
    const l = link(['foo.o', 'libx.a', 'libdyn.so', 'x.lo', '-L', 'lib', '-lm', '-Wl,--as-needed']);
    assert.deepEqual(l.inputs, ['foo.o', 'libx.a', 'libdyn.so', 'x.lo']);
    assert.equal(l.output, 'a.out');
  });

  it('linker option values are not inputs', () => {
    const l = link(['-o', 'app', '-Xlinker', '-rpath', '-Xlinker', '/x', 'main.o', '-T', 'l.ld']);
    assert.deepEqual(l.inputs, ['main.o']);
    assert.equal(link(['-shared', '-ooutlib.so', 'a.o', '-z', 'now']).output, 'outlib.so');
    assert.deepEqual(link(['-x', 'c', '-x', 'none', 'prog.o']).inputs, ['prog.o']);
  });

  it('compiling and linking at once is local', () => {
    local(['main.c', '-o', 'app'], /compiles and links \(main\.c\)/);
    local(['main.o', 'util.cc'], /compiles and links/);
    local(['-x', 'c', 'prog', '-o', 'app'], /compiles and links/);
  });

  it('linker options that write extra files are local', () => {
    local(['a.o', '-Wl,-Map=app.map'], /-Map=app\.map/);
    local(['a.o', '-Xlinker', '-Map', '-Xlinker', 'app.map'], /linker option -Map/);
    local(['a.o', '-Wl,--out-implib,x.lib'], /--out-implib/);
    local(['a.o', '-MD'], /dependency options in a link/);
  });
});

describe('parseCompilerArgs: local', () => {
  it('several sources, or none', () => {
    local(['-c', 'a.c', 'b.c'], /2 input files/);
    local(['-S', 'a.c', 'b.c', '-o', 'x.s'], /2 input files/);
    local([], /no input files/);
    local(['-c'], /no input files/);
    local(['-O2', '-Iinc'], /no input files/);
  });

  it('preprocessing and dependency listing only', () => {
    local(['-E', 'a.c'], /-E/);
    local(['-M', 'a.c'], /-M\)/);
    local(['-MM', 'a.c'], /-MM/);
    local(['-c', '-M', '-MD', 'a.c'], /-M\)/);
  });

  it('stdin and stdout', () => {
    local(['-x', 'c', '-c', '-'], /stdin/);
    local(['-c', 'a.c', '-o', '-'], /stdout/);
  });

  it('flags writing extra files or reading undeclared ones', () => {
    const cases: [string[], RegExp][] = [
      [['-save-temps'], /save-temps/],
      [['-save-temps=obj'], /save-temps/],
      [['-fdump-tree-all'], /fdump/],
      [['-fdump-rtl-expand'], /fdump/],
      [['-fprofile-generate'], /profile/],
      [['-fprofile-use=prof'], /profile/],
      [['-fprofile-arcs'], /profile/],
      [['-fprofile-instr-generate'], /profile/],
      [['--coverage'], /coverage/],
      [['-ftest-coverage'], /coverage/],
      [['-fstack-usage'], /\.su/],
      [['-fcallgraph-info'], /\.ci/],
      [['-fplugin=x.so'], /plugin/],
      [['-fmodules-ts'], /modules/],
      [['-fsyntax-only'], /no output/],
      [['-aux-info', 'p.h'], /aux-info/],
      [['-ftime-trace'], /time trace/],
      [['-fdiagnostics-format=sarif-file'], /diagnostics file/],
      [['-fopt-info-vec=vec.txt'], /opt-info/],
      [['-specs=my.specs'], /specs/],
      [['-B/opt/bin'], /-B/],
      [['-B', '/opt/bin'], /-B/],
      [['-wrapper', 'gdb,--args'], /wrapper/],
      [['-include-pch', 'x.pch'], /precompiled/],
      [['-MJ', 'cdb.json'], /compilation database/],
      [['-Wp,-MD,a.d'], /preprocessor option -MD/],
      [['-Wp,-MMD,a.d'], /preprocessor option -MMD/],
      [['-Xpreprocessor', '-MD'], /preprocessor option -MD/],
      [['-Wa,-adhln=a.lst'], /assembler option -adhln/],
      [['-Xassembler', '--MD'], /assembler option --MD/],
      [['-Xclang', '-emit-pch'], /-Xclang -emit-pch/],
      [['-dumpbase', 'x'], /dump/],
      // The CPU the compile ran on, which the action does not name.
      [['-march=native'], /-march=native compiles for this machine's CPU/],
      [['-mcpu=native'], /-mcpu=native compiles for this machine's CPU/],
      [['-mtune=native'], /-mtune=native compiles for this machine's CPU/],
    ];
    for (const [flags, reason] of cases) local(['-c', 'a.c', ...flags], reason);
  });

  it('queries', () => {
    local(['-v', '-c', 'a.c'], /verbose/);
    local(['--version'], /version/);
    local(['-###', '-c', 'a.c'], /dry run/);
    local(['-dumpversion'], /dump/);
    local(['-dumpmachine'], /dump/);
    local(['-print-file-name=libc.a'], /query/);
    local(['--help'], /help/);
  });

  it('precompiled headers', () => {
    for (const h of ['a.h', 'a.hh', 'a.hpp', 'a.H', 'a.hxx', 'a.tcc'])
      local(['-c', h], /precompiled header/);
    local(['-x', 'c-header', '-c', 'a.c'], /precompiled header/);
    local(['-x', 'c++-header', '-c', 'a.c', '-o', 'a.gch'], /precompiled header/);
  });

  it('unknown suffixes and options', () => {
    local(['-c', 'foo.f90'], /unknown language of foo\.f90/);
    local(['-c', 'foo.o'], /unknown language/);
    local(['-c', 'a.c', '--frobnicate'], /unknown option --frobnicate/);
    local(['-c', 'a.c', '-dA'], /unknown option -dA/);
    local(['-c', 'a.c', '-Mfoo'], /unknown option -Mfoo/);
    local(['-c', 'a.c', ''], /empty argument/);
  });

  it('ambiguous output and dependency options', () => {
    local(['-c', 'a.c', '-o', 'x.o', '-o', 'y.o'], /several -o/);
    local(['-c', '-MD', '-MF', 'x.d', '-MFy.d', 'a.c'], /several -MF/);
    local(['-c', '-MF', 'x.d', 'a.c'], /without -MD/);
    local(['-c', '-MP', 'a.c'], /without -MD/);
    local(['-c', '-MT', 't', 'a.c'], /without -MD/);
  });

  it('a missing option value', () => {
    local(['-c', 'a.c', '-o'], /missing argument to -o/);
    local(['-c', 'a.c', '-I'], /missing argument to -I/);
    local(['-c', 'a.c', '-Xclang'], /missing argument to -Xclang/);
  });
});

describe('parseCompilerArgs: response files', () => {
  it('splits like gcc: quotes, escapes, empty arguments', () => {
    assert.deepEqual(splitResponseFile(` a  'b c'\t"d e"\nf\\ g 'it'\\''s' "q\\"x" '' h`), [
      'a',
      'b c',
      'd e',
      'f g',
      "it's",
      'q"x',
      '',
      'h',
    ]);
    // Unlike a shell, a backslash escapes inside single quotes too.
    assert.deepEqual(splitResponseFile(`'a\\'b' c"d"e`), ["a'b", 'cde']);
    assert.deepEqual(splitResponseFile('  \n\t '), []);
  });

  it('expands @file in place', () => {
    const files = {
      'args.rsp': `-c 'src/my file.c'\n-o "out/my obj.o"\n-DMSG=\\"hi\\" -MD`,
    };
    const c = compile(['-O2', '@args.rsp', '-g'], files);
    assert.deepEqual(c.expandedArgs, [
      '-O2',
      '-c',
      'src/my file.c',
      '-o',
      'out/my obj.o',
      '-DMSG="hi"',
      '-MD',
      '-g',
    ]);
    assert.equal(c.source, 'src/my file.c');
    assert.deepEqual(c.outputs, ['out/my obj.o', 'out/my obj.d']);
    assert.deepEqual(c.depsArgs, ['-O2', 'src/my file.c', '-DMSG="hi"', '-g', '-M']);
  });

  it('expands nested response files, including as an option value', () => {
    const files = { 'a.rsp': '@b.rsp -c -o @o.rsp', 'b.rsp': 'x.c -Iinc', 'o.rsp': 'x.o' };
    const c = compile(['@a.rsp'], files);
    assert.deepEqual(c.expandedArgs, ['x.c', '-Iinc', '-c', '-o', 'x.o']);
    assert.equal(c.objectPath, 'x.o');
  });

  it('allows 10 levels of nesting, not 11', () => {
    const chain = (n: number): Record<string, string> => {
      const files: Record<string, string> = {};
      for (let i = 1; i < n; i++) files[`r${i}`] = `@r${i + 1}`;
      files[`r${n}`] = '-c a.c';
      return files;
    };
    assert.equal(compile(['@r1'], chain(10)).source, 'a.c');
    local(['@r1'], /nested deeper than 10/, chain(11));
    local(['@loop'], /nested deeper/, { loop: '-c @loop' });
  });

  it('a response file that cannot be read is local', () => {
    local(['-c', 'a.c', '@missing.rsp'], /cannot read response file missing\.rsp/);
  });

  it('reads response files from disk by default', async () => {
    await using dir = await tempDir();
    const rsp = join(dir.path, 'args.rsp');
    writeFileSync(rsp, '-c "a b.c" -o ab.o\n');
    const c = parseCompilerArgs([`@${rsp}`], {});
    if (c.kind !== 'compile') assert.fail(JSON.stringify(c));
    assert.deepEqual(c.expandedArgs, ['-c', 'a b.c', '-o', 'ab.o']);
    const missing = parseCompilerArgs([`@${join(dir.path, 'nope')}`], {});
    assert.equal(missing.kind, 'local');
  });
});

/** Files under dir, relative, excluding the given inputs. */
function filesUnder(dir: string, exclude: Set<string>): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (!exclude.has(relative(dir, p))) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe('parseCompilerArgs: outputs match what gcc writes', () => {
  before(() => {
    requireCommand('gcc', 'apt-get install gcc (scripts/install-test-deps.sh)');
  });

  const cases: string[][] = [
    ['-c', 'src/a.c'],
    ['-c', 'src/b.tar.c', '-MD', '-gsplit-dwarf'],
    ['-c', '-MD', 'src/a.c', '-o', 'out/x.o'],
    ['-c', '-MD', 'src/a.c', '-o', 'out/x'],
    ['-c', '-MMD', '-MF', 'out/deps.d', 'src/a.c', '-o', 'out/x.o', '-g', '-gsplit-dwarf'],
    ['-c', '-g', '-gsplit-dwarf', 'src/a.c'],
    ['-S', '-MD', 'src/a.c'],
    ['-S', '-MD', '-gsplit-dwarf', 'src/a.c', '-o', 'out/z.s'],
    ['-c', '-MD', 'src/k.s', '-o', 'out/k.o'],
    ['-c', '-MD', '-x', 'c', 'src/prog', '-o', 'out/p.o'],
  ];
  for (const args of cases) {
    it(args.join(' '), async () => {
      await using dir = await tempDir();
      mkdirSync(join(dir.path, 'src'));
      mkdirSync(join(dir.path, 'out'));
      const inputs = ['src/a.c', 'src/b.tar.c', 'src/prog', 'src/k.s'];
      for (const f of inputs.slice(0, 3))
        writeFileSync(join(dir.path, f), 'int f(void) { return 1; }\n');
      writeFileSync(join(dir.path, 'src/k.s'), '\t.text\n');
      const c = compile(args);
      const r = spawnSync('gcc', args, { cwd: dir.path, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(filesUnder(dir.path, new Set(inputs)), [...c.outputs].sort());
    });
  }
});
