// parseMakeRules/depsOf: the make rules gcc -M prints, including real gcc output.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { depsOf, parseMakeRules, type MakeRule } from '../../src/wrap/make-deps.js';
import { rng } from '../helpers/random-directories.js';
import { parseCompilerArgs } from '../../src/wrap/cc-args.js';
import { requireCommand } from '../helpers/prereq.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The parser as it was before it took runs of ordinary characters at once
 * (one character per step): the reference the faster one must match.
 */
function referenceRules(text: string): MakeRule[] {
  const src = text.replace(/\r\n/g, '\n');
  const rules: MakeRule[] = [];
  let targets: string[] = [];
  let deps: string[] = [];
  let colon = false;
  let word = '';
  let inWord = false;
  let line = 1;
  const blank = (c: string): boolean => c === ' ' || c === '\t';
  const endWord = (): void => {
    if (inWord) (colon ? deps : targets).push(word);
    word = '';
    inWord = false;
  };
  const endLine = (): void => {
    endWord();
    if (colon) {
      if (targets.length === 0) throw new Error(`make rules line ${line}: rule without a target`);
      rules.push({ targets, deps });
    } else if (targets.length > 0) {
      throw new Error(`make rules line ${line}: no ':' after ${targets.join(' ')}`);
    }
    targets = [];
    deps = [];
    colon = false;
  };
  for (let i = 0; i < src.length;) {
    const c = src.charAt(i);
    if (c === '\n') {
      endLine();
      line++;
      i++;
    } else if (c === '\\') {
      let k = 0;
      while (src.charAt(i + k) === '\\') k++;
      const next = src.charAt(i + k);
      if (next === '\n') {
        word += '\\'.repeat(k - 1);
        inWord ||= k > 1;
        endWord();
        line++;
        i += k + 1;
      } else if (blank(next)) {
        word += '\\'.repeat(k >> 1);
        inWord = true;
        if (k % 2 === 1) {
          word += next;
          i += k + 1;
        } else i += k;
      } else if (next === '#') {
        word += '\\'.repeat(k - 1) + '#';
        inWord = true;
        i += k + 1;
      } else {
        word += '\\'.repeat(k);
        inWord = true;
        i += k;
      }
    } else if (blank(c)) {
      endWord();
      i++;
    } else if (c === '#') {
      while (i < src.length && src.charAt(i) !== '\n') i++;
    } else if (
      c === ':' &&
      !colon &&
      (i + 1 === src.length ||
        blank(src.charAt(i + 1)) ||
        src.startsWith('\n', i + 1) ||
        src.startsWith('\\\n', i + 1))
    ) {
      endWord();
      colon = true;
      i++;
    } else if (c === '$' && src.charAt(i + 1) === '$') {
      word += '$';
      inWord = true;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endLine();
  return rules;
}

function outcome(parse: (t: string) => MakeRule[], text: string): MakeRule[] | string {
  try {
    return parse(text);
  } catch (e) {
    return (e as Error).message;
  }
}

describe('parseMakeRules', () => {
  it('one rule', () => {
    assert.deepEqual(parseMakeRules('foo.o: foo.c foo.h\n'), [
      { targets: ['foo.o'], deps: ['foo.c', 'foo.h'] },
    ]);
  });

  it('several targets, no trailing newline', () => {
    assert.deepEqual(parseMakeRules('a.o b.o: x.h'), [{ targets: ['a.o', 'b.o'], deps: ['x.h'] }]);
  });

  it('backslash-newline continuations, in deps and in targets', () => {
    assert.deepEqual(parseMakeRules('foo.o: a.c \\\n  b.h \\\n c.h\n'), [
      { targets: ['foo.o'], deps: ['a.c', 'b.h', 'c.h'] },
    ]);
    assert.deepEqual(parseMakeRules('a.o \\\n b.o: c.h\n'), [
      { targets: ['a.o', 'b.o'], deps: ['c.h'] },
    ]);
    assert.deepEqual(parseMakeRules('foo.o:\\\n a.c\n'), [{ targets: ['foo.o'], deps: ['a.c'] }]);
    // A continuation directly after a name ends that name.
    assert.deepEqual(parseMakeRules('foo.o: a.c\\\nb.h\n'), [
      { targets: ['foo.o'], deps: ['a.c', 'b.h'] },
    ]);
  });

  it('CRLF line ends', () => {
    assert.deepEqual(parseMakeRules('foo.o: a.c \\\r\n b.h\r\nb.h:\r\n'), [
      { targets: ['foo.o'], deps: ['a.c', 'b.h'] },
      { targets: ['b.h'], deps: [] },
    ]);
  });

  it('escaped blanks are part of a name', () => {
    assert.deepEqual(parseMakeRules('my\\ src.o: my\\ src.c inc\\ dir/a\\ b.h t\\\tab.h\n'), [
      { targets: ['my src.o'], deps: ['my src.c', 'inc dir/a b.h', 't\tab.h'] },
    ]);
  });

  it('backslashes before a blank are doubled by gcc', () => {
    // File `x\ y.h` is written `x\\\ y.h`; `a\\ b` is `a\` then `b`.
    assert.deepEqual(parseMakeRules('o: x\\\\\\ y.h a\\\\ b\n')[0]?.deps, ['x\\ y.h', 'a\\', 'b']);
    // Other backslashes are literal.
    assert.deepEqual(parseMakeRules('o: a\\b.h c\\\\d.h\n')[0]?.deps, ['a\\b.h', 'c\\\\d.h']);
  });

  it('$$ is $ and \\# is #', () => {
    assert.deepEqual(parseMakeRules('a$$b.o: c$$d.h e\\#f.h $$\n')[0], {
      targets: ['a$b.o'],
      deps: ['c$d.h', 'e#f.h', '$'],
    });
  });

  it('a colon ends the targets only before a blank or the line end', () => {
    assert.deepEqual(parseMakeRules('inc/p:q.h:\no: a:b.h c.h d:\n'), [
      { targets: ['inc/p:q.h'], deps: [] },
      { targets: ['o'], deps: ['a:b.h', 'c.h', 'd:'] },
    ]);
  });

  it('several rules, blank lines, comments', () => {
    const text = '# generated\n\na.o: a.c x.h\n\nb.o: b.c x.h \\\n y.h\nx.h:\ny.h:\n';
    assert.deepEqual(parseMakeRules(text), [
      { targets: ['a.o'], deps: ['a.c', 'x.h'] },
      { targets: ['b.o'], deps: ['b.c', 'x.h', 'y.h'] },
      { targets: ['x.h'], deps: [] },
      { targets: ['y.h'], deps: [] },
    ]);
  });

  it('parses random rules exactly as the one-character-at-a-time parser did', () => {
    // Mostly ordinary runs, with every character the parser treats apart.
    const pieces = [
      'a',
      'b.h',
      '/usr/include/x',
      ' ',
      '\t',
      '\n',
      '\r\n',
      '\\',
      ':',
      '$',
      '#',
      'é',
    ];
    const next = rng(1848);
    for (let i = 0; i < 5000; i++) {
      let text = '';
      const n = Math.floor(next() * 40);
      for (let j = 0; j < n; j++) text += pieces[Math.floor(next() * pieces.length)] ?? '';
      assert.deepEqual(
        outcome(parseMakeRules, text),
        outcome(referenceRules, text),
        JSON.stringify(text),
      );
    }
  });

  it('empty input', () => {
    assert.deepEqual(parseMakeRules(''), []);
    assert.deepEqual(parseMakeRules('\n\n'), []);
  });

  it('throws on malformed lines rather than lose names', () => {
    assert.throws(() => parseMakeRules('foo.o a.c\n'), /line 1: no ':' after foo\.o a\.c/);
    assert.throws(() => parseMakeRules('a.o: b.c\n: c.h\n'), /line 2: rule without a target/);
  });
});

describe('depsOf', () => {
  it('unique prerequisites in first-seen order', () => {
    assert.deepEqual(depsOf('a.o: a.c x.h\nb.o: b.c x.h y.h\n'), ['a.c', 'x.h', 'b.c', 'y.h']);
  });

  it('the empty rules of -MP add nothing, and targets are not prerequisites', () => {
    assert.deepEqual(depsOf('foo.o: foo.c foo.h\nfoo.h:\nbar.h:\n'), ['foo.c', 'foo.h']);
  });
});

/** Headers gcc -H reports opening, resolved against cwd. */
function headersOf(stderr: string, cwd: string): string[] {
  return stderr
    .split('\n')
    .map((l) => /^\.+ (.*)$/.exec(l)?.[1])
    .filter((h) => h !== undefined)
    .map((h) => resolve(cwd, h));
}

function gcc(cwd: string, args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync('gcc', args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

describe('depsOf on real gcc output', () => {
  before(() => {
    requireCommand('gcc', 'apt-get install gcc (scripts/install-test-deps.sh)');
  });

  const headers = ['a b.h', 'c$d.h', 'e#f.h', 'x\\ y.h', 'p:q.h', 't\tab.h', 'dollar$$.h'];
  const source = 'my src$.c';

  /** Writes the sources into dir; returns every file a compile reads, resolved. */
  function project(dir: string): string[] {
    mkdirSync(join(dir, 'inc dir'));
    // Distinct contents: gcc treats identical files as one for #pragma once.
    headers.forEach((h, i) => {
      writeFileSync(join(dir, 'inc dir', h), `#pragma once\n#define H${i} ${i}\n`);
    });
    const includes = headers.map((h) => `#include "${h}"\n`).join('');
    writeFileSync(
      join(dir, source),
      `${includes}#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n`,
    );
    const h = gcc(dir, ['-H', '-fsyntax-only', '-I', 'inc dir', source]);
    const predef = '/usr/include/stdc-predef.h';
    const expected = sorted([
      resolve(dir, source),
      ...headersOf(h.stderr, dir),
      ...(existsSync(predef) ? [predef] : []),
    ]);
    // The files created here are all among them, as is a system header.
    for (const f of [source, ...headers.map((x) => join('inc dir', x))])
      assert.ok(expected.includes(resolve(dir, f)), f);
    assert.ok(expected.includes('/usr/include/stdio.h'));
    return expected;
  }

  it('gcc -M', async () => {
    await using dir = await tempDir();
    const expected = project(dir.path);
    const out = gcc(dir.path, ['-M', '-I', 'inc dir', source]).stdout;
    const [rule, ...rest] = parseMakeRules(out);
    assert.ok(rule);
    assert.equal(rest.length, 0);
    assert.deepEqual(rule.targets, ['my src$.o']);
    assert.equal(rule.deps[0], source);
    const deps = depsOf(out).map((d) => resolve(dir.path, d));
    assert.equal(deps.length, new Set(deps).size);
    assert.deepEqual(sorted(deps), expected);
    for (const d of deps) assert.ok(existsSync(d), d);
  });

  it('gcc -M -MP, with -MQ and -MT targets', async () => {
    await using dir = await tempDir();
    const expected = project(dir.path);
    const out = gcc(dir.path, [
      '-M',
      '-MP',
      '-MQ',
      'out dir/q$.o',
      '-MT',
      'plain.o',
      '-I',
      'inc dir',
      source,
    ]).stdout;
    const rules = parseMakeRules(out);
    // -MQ quotes its target for make ('\ ', '$$'); gcc lists -MT targets first.
    assert.deepEqual(sorted(rules[0]?.targets ?? []), ['out dir/q$.o', 'plain.o']);
    const deps = depsOf(out).map((d) => resolve(dir.path, d));
    assert.deepEqual(sorted(deps), expected);
    // One empty rule per header, naming exactly the headers.
    const phony = rules.slice(1);
    assert.ok(phony.every((r) => r.deps.length === 0 && r.targets.length === 1));
    assert.deepEqual(
      sorted(phony.map((r) => resolve(dir.path, r.targets[0] ?? ''))),
      expected.filter((f) => f !== resolve(dir.path, source)),
    );
  });

  it('depsArgs from parseCompilerArgs list what the compile itself writes to its .d', async () => {
    await using dir = await tempDir();
    const expected = project(dir.path);
    mkdirSync(join(dir.path, 'out'));
    const args = ['-c', '-MD', '-MP', '-MF', 'out/x.d', '-I', 'inc dir', source, '-o', 'out/x.o'];
    const parsed = parseCompilerArgs(args, {});
    if (parsed.kind !== 'compile') assert.fail(JSON.stringify(parsed));
    const discovered = depsOf(gcc(dir.path, parsed.depsArgs).stdout);
    assert.deepEqual(sorted(discovered.map((d) => resolve(dir.path, d))), expected);
    gcc(dir.path, args);
    const written = readFileSync(join(dir.path, parsed.depFile ?? ''), 'utf8');
    assert.deepEqual(parseMakeRules(written)[0]?.targets, ['out/x.o']);
    assert.deepEqual(depsOf(written), discovered);
  });
});
