// `specbuild explain` as text: a header line, then per cache miss its
// command, the previous action it matched, one line per differing input
// file (old and new digest, each with where it came from), and why priming
// did not match. Digests are shortened to 12 hex digits and the size.
import type {
  CommandDifference,
  Explanation,
  FileVersion,
  InputDifference,
  InputOrigin,
  MatchKind,
  MissExplanation,
} from '../../speculative/index.js';

const short = (d: string): string => {
  const [hash = '', size = ''] = d.split('/');
  return `${hash.slice(0, 12)}/${size}`;
};

const MATCHED: Record<MatchKind, string> = {
  'same-command': 'same command',
  'same-command-except-inputs': 'same command but for input file names',
  'same-outputs': 'same outputs, another command',
  'same-argv': 'same command, other outputs',
};

export function originText(o: InputOrigin): string {
  const copy = o.copy === true ? 'a copy of ' : '';
  switch (o.type) {
    case 'source':
      return `${copy}source of ${o.element ?? '?'} (${o.path ?? '?'})`;
    case 'artifact':
      return `${copy}artifact of ${o.element ?? '?'} (${o.path ?? '?'})`;
    case 'action':
      return `${copy}output ${o.path ?? '?'} of ${o.element ?? '?'} action #${(o.index ?? 0) + 1} [${short(o.action ?? '')}]`;
    case 'build-tree':
      return `written in ${o.element ?? '?'}'s build tree (${o.path ?? '?'}) by a command that is not a recorded action`;
    case 'unknown':
      return 'not from a source, artifact or recorded action (host/toolchain)';
  }
}

const version = (v: FileVersion): string => `${short(v.digest)}  ${originText(v.origin)}`;

/** One line per differing input, old and new. */
function inputLines(inputs: InputDifference[], was: string, now: string): string[] {
  const out: string[] = [];
  for (const d of inputs) {
    if (d.old === null && d.new !== null) out.push(`+ ${d.path}`, `    ${now} ${version(d.new)}`);
    else if (d.new === null && d.old !== null)
      out.push(`- ${d.path}`, `    ${was} ${version(d.old)}`);
    else if (d.old !== null && d.new !== null)
      out.push(`~ ${d.path}`, `    ${was} ${version(d.old)}`, `    ${now} ${version(d.new)}`);
  }
  return out;
}

function commandLines(c: CommandDifference): string[] {
  const out: string[] = [];
  if (c.argv !== undefined) {
    const { removed, added } = c.argv;
    const what =
      removed.length > 0 && added.length > 0
        ? `${removed.join(' ')} → ${added.join(' ')}`
        : removed.length > 0
          ? `removed ${removed.join(' ')}`
          : added.length > 0
            ? `added ${added.join(' ')}`
            : `reordered from argument ${c.argv.first_difference}`;
    out.push(`command line: ${what}`);
  }
  for (const e of c.environment ?? [])
    out.push(`environment ${e.name}: ${e.old ?? '(unset)'} → ${e.new ?? '(unset)'}`);
  if (c.working_directory !== undefined)
    out.push(`working directory: ${c.working_directory.old} → ${c.working_directory.new}`);
  if (c.outputs !== undefined)
    out.push(`outputs: ${c.outputs.old.join(' ')} → ${c.outputs.new.join(' ')}`);
  if (c.platform !== undefined)
    out.push(`platform: ${c.platform.old.join(',')} → ${c.platform.new.join(',')}`);
  if (c.timeout !== undefined)
    out.push(`timeout: ${c.timeout.old ?? 'none'} → ${c.timeout.new ?? 'none'}`);
  if (c.salt !== undefined) out.push(`salt: ${c.salt.old} → ${c.salt.new}`);
  return out;
}

function missLines(m: MissExplanation, n: number, of: number): string[] {
  const out = [`miss ${n}/${of}: ${m.argv.join(' ')}  [${short(m.action)}]`];
  const p = m.previous;
  if (p === null) out.push(`  previous: none (${m.note ?? 'no match'})`);
  else {
    out.push(`  previous: action #${p.index + 1} [${short(p.action)}], ${MATCHED[p.by]}`);
    out.push(...commandLines(p.command).map((l) => `  ${l}`));
    out.push(...inputLines(p.inputs, 'was', 'now').map((l) => `  ${l}`));
    if (p.note !== undefined) out.push(`  ${p.note}`);
    if (p.inputs.length === 0 && Object.keys(p.command).length === 0 && p.note === undefined)
      out.push('  no difference found in its command or input files');
  }
  const pr = m.priming;
  const mm = pr.mismatch;
  if (mm === undefined) out.push(`  priming: ${pr.reason}`);
  else {
    out.push(`  priming: ${pr.reason}; did not match: ${mm.reasons.join(', ')}`);
    out.push(...commandLines(mm.command).map((l) => `    ${l}`));
    out.push(...inputLines(mm.inputs, 'primed', 'build ').map((l) => `    ${l}`));
    if (mm.note !== undefined) out.push(`    ${mm.note}`);
  }
  return out;
}

export function renderExplanation(x: Explanation): string[] {
  const a = x.actions;
  const out = [
    `${x.element}: build under key ${x.strong_key.slice(0, 8)} (speculative-actions ${x.mode}): ${a.total} action${a.total === 1 ? '' : 's'}, ${a.misses} missed the cache, ${a.hits_cached} cached hit${a.hits_cached === 1 ? '' : 's'}, ${a.hits_primed} primed hit${a.hits_primed === 1 ? '' : 's'}`,
  ];
  const prev = x.previous;
  out.push(
    prev === null
      ? 'previous build: none recorded'
      : `previous build: key ${prev.strong_key.slice(0, 8)} (${prev.via === 'weak-key' ? 'the one under the same weak key' : 'the last one recorded; the weak key changed'})${prev.found ? '' : ', its record no longer in the cache'}`,
  );
  if (a.misses === 0) out.push(`none of its ${a.total} actions missed the cache`);
  x.misses.forEach((m, i) => {
    out.push('', ...missLines(m, i + 1, x.misses.length));
  });
  return out;
}
