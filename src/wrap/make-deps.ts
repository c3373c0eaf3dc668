// Reads the make rules `gcc -M` prints, so specbuild-cc knows every file a compile reads.

export interface MakeRule {
  targets: string[];
  deps: string[];
}

/** Characters the parser reads as themselves, one run of them (sticky: matched at lastIndex only). */
const ORDINARY = /[^\n\\ \t#:$]+/y;

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

/**
 * Parses make rules exactly as gcc's mkdeps writes them: `\` + newline
 * continues a line, `\ ` and `\<tab>` are part of a name (with the backslashes
 * before them doubled), `\#` is `#`, `$$` is `$`. A ':' ends the targets only
 * when followed by a blank or the end of the line, so `a:b.h` is a name.
 * Throws on a line with names but no ':', rather than lose dependencies.
 */
export function parseMakeRules(text: string): MakeRule[] {
  const src = text.replace(/\r\n/g, '\n');
  const rules: MakeRule[] = [];
  let targets: string[] = [];
  let deps: string[] = [];
  let colon = false;
  let word = '';
  let inWord = false;
  let line = 1;

  const endWord = () => {
    if (inWord) (colon ? deps : targets).push(word);
    word = '';
    inWord = false;
  };
  const endLine = () => {
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
        // Continuation: the newline is a blank; any further backslashes are literal.
        word += '\\'.repeat(k - 1);
        inWord ||= k > 1;
        endWord();
        line++;
        i += k + 1;
      } else if (isBlank(next)) {
        word += '\\'.repeat(k >> 1);
        inWord = true;
        if (k % 2 === 1) {
          word += next;
          i += k + 1;
        } else {
          i += k;
        }
      } else if (next === '#') {
        word += '\\'.repeat(k - 1) + '#';
        inWord = true;
        i += k + 1;
      } else {
        word += '\\'.repeat(k);
        inWord = true;
        i += k;
      }
    } else if (isBlank(c)) {
      endWord();
      i++;
    } else if (c === '#') {
      // A comment runs to the end of the line (gcc writes none).
      while (i < src.length && src.charAt(i) !== '\n') i++;
    } else if (
      c === ':' &&
      !colon &&
      (i + 1 === src.length ||
        isBlank(src.charAt(i + 1)) ||
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
      // A run of characters none of the cases above treats apart, taken at
      // once: a name is mostly such a run, and taking one character at a
      // time was most of the daemon's CPU for the ~3 KB list of a compile
      // (~1 ms without TurboFan). ':' and '$' not taken above are one each.
      ORDINARY.lastIndex = i;
      const run = ORDINARY.exec(src)?.[0] ?? c;
      word += run;
      inWord = true;
      i += run.length;
    }
  }
  endLine();
  return rules;
}

/**
 * Every prerequisite named by the rules, once each, in first-seen order. The
 * empty rules -MP adds (`foo.h:`) name no prerequisites, so their targets are
 * not counted twice.
 */
export function depsOf(text: string): string[] {
  const seen = new Set<string>();
  for (const rule of parseMakeRules(text)) for (const d of rule.deps) seen.add(d);
  return [...seen];
}
