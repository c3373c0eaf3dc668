// The block-YAML fast path gives exactly what the full parse through the
// `yaml` package gives (values, locations, lengths), or gives up: checked on
// hand-picked cases, on every YAML file of the repository, and on a seeded
// corpus of generated documents around the subset's edges.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYaml, parseYamlDocument } from '../../src/project/yaml.js';
import { parseBlockYaml } from '../../src/project/yaml-block.js';
import { repoRoot } from '../helpers/paths.js';

/** Fails unless the fast path agrees with the full parse; returns whether it took the text. */
function agrees(text: string): boolean {
  const fast = parseBlockYaml(text, 'f.bst');
  if (fast === undefined) return false;
  const full = parseYamlDocument(text, 'f.bst');
  assert.ok(full.ok, `the fast path took text the full parse refuses: ${JSON.stringify(text)}`);
  assert.deepEqual(fast, full.value, `different nodes for ${JSON.stringify(text)}`);
  return true;
}

/** Taken by the fast path (and equal to the full parse). */
const TAKEN = [
  '',
  '# only a comment\n',
  'a: b\n',
  'a: b  # c\nx:\n- 1\n-  two  \n',
  'k:\n  - a\n  - b\nm:\n  n: "q"\n  o: \'s\'\n',
  'a:\n\nb: c\n\n\n',
  'a:   \nb: c\n',
  'depends: \n',
  'a:\n  b:\n',
  'l:\n- k:\n- j: \n',
  'a: b\n  # deeper comment\nd: e\n',
  'm:\n  n: q\nx: y\n',
  'a: " x "\nb: \'\'\nc: ""\n',
  'a: null\nb: Null\nc: ~\nd: ~x\n',
  'x:\n- a\n# c\n- b\ny: z\n',
  'l:\n  - a: 1\n    b: 2\n  - c\n',
  'url: http://example.com/a#b\nflags: a,b x] y}\n',
  '(@): include.yml\n(?):\n- x == "y":\n    a: b\n',
  'a: "q" # c\nb: \'s\'   \n',
];

/** Valid YAML outside the subset: left to the full parse. */
const GIVEN_UP = [
  'a: b', // no final newline
  '---\na: b\n',
  '%YAML 1.2\n---\na: b\n',
  '- a\n- b\n', // a sequence at the root
  'a: |\n  text\n',
  'a: >\n  text\n',
  'a: [x, y]\n',
  'a: {x: y}\n',
  'a: &x b\nc: *x\n',
  'a: !tag b\n',
  'a: "esc\\n"\n',
  "a: 'it''s'\n",
  'a: multi\n  line\n',
  '- a\n  b\n',
  'a: b\n - c\n', // the plain scalar "b - c"
  'a: # comment\n',
  '"q": b\n',
  'a:\tb\n',
  'a: caf\u00e9\n',
  'a: b\r\n',
  '<<: b\n',
  '~: b\n',
  '-\n  a: b\n',
  '- - a\n',
  '  a: b\n', // indented root
  `${'k'.repeat(1025)}: v\n`,
];

/** Invalid YAML: the fast path must give up, so that the full parse reports it. */
const INVALID = [
  'a: b\na: c\n',
  'a: b: c\n',
  'a: %{x}\n',
  'a:\n  - x\n  b: y\n',
  'a:\n  b: c\n d: e\n',
  'a: @x\n',
  'a: `x\n',
];

describe('parseBlockYaml', () => {
  it('takes plain block YAML and gives what the full parse gives', () => {
    for (const text of TAKEN) assert.ok(agrees(text), `not taken: ${JSON.stringify(text)}`);
  });

  it('gives up on YAML outside its subset, and on invalid YAML', () => {
    for (const text of [...GIVEN_UP, ...INVALID]) {
      assert.equal(parseBlockYaml(text, 'f.bst'), undefined, JSON.stringify(text));
    }
    for (const text of INVALID) assert.equal(parseYaml(text, 'f.bst').ok, false, text);
  });

  it('agrees with the full parse on every YAML file of the repository', () => {
    const files = execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(bst|conf|ya?ml)$/.test(f));
    assert.ok(files.length >= 10);
    let taken = 0;
    for (const f of files) if (agrees(readFileSync(join(repoRoot, f), 'utf8'))) taken++;
    assert.ok(taken > files.length / 2, `${String(taken)} of ${String(files.length)} taken`);
  });

  it('agrees with the full parse on generated documents around its edges', () => {
    let seed = 9;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const scalars = [
      'a',
      'b c',
      'x:y',
      'a #c',
      'a# c',
      '"q"',
      "'s'",
      '" sp "',
      '~',
      'null',
      'Null',
      '1',
      'a   ',
      '"a" # c',
      "'a'   ",
      '(@)',
      'x #',
      '""',
      'x]',
      // Outside the subset or invalid, now and then:
      'x: y',
      'a:',
      '- x',
      '-x',
      '%{v}',
      '"e\\n"',
      "'it''s'",
      '[a]',
      '|',
      '&a x',
      '# c',
      '',
    ];
    let k = 0;
    const key = (): string => (rnd() < 0.97 ? `k${String(k++)}` : pick(['a', '~', '"q"', 'a:b']));
    const value = (): string => pick(rnd() < 0.9 ? scalars.slice(0, 19) : scalars);
    const block = (depth: number, indent: number, out: string[]): void => {
      const seq = depth > 0 && rnd() < 0.4;
      const n = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < n; i++) {
        const pad = ' '.repeat(indent + (rnd() < 0.03 ? 1 : 0));
        if (rnd() < 0.1) out.push(pick(['', '   ', `${pad}# c`, '# c']));
        const r = rnd();
        if (seq) {
          if (r < 0.5 || depth > 3) out.push(`${pad}-${pick([' ', ' ', '  ', ''])}${value()}`);
          else {
            out.push(`${pad}- ${key()}: ${value()}`);
            if (rnd() < 0.7) out.push(`${pad}  ${key()}: ${value()}`);
            if (rnd() < 0.3) {
              out.push(`${pad}  ${key()}:`);
              block(depth + 1, indent + pick([2, 2, 4, 3]), out);
            }
          }
        } else if (r < 0.55 || depth > 3) {
          out.push(`${pad}${key()}:${pick([' ', ' ', '  ', ''])}${value()}`);
        } else {
          out.push(`${pad}${key()}:${pick(['', '', ' '])}`);
          if (rnd() < 0.9) block(depth + 1, indent + pick([0, 2, 2, 4, 1]), out);
        }
      }
    };
    let taken = 0;
    for (let t = 0; t < 3000; t++) {
      const out: string[] = [];
      block(0, 0, out);
      if (agrees(`${out.join('\n')}\n`)) taken++;
    }
    assert.ok(taken > 500, `only ${String(taken)} of 3000 taken`);
  });
});
