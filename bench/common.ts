// Small helpers every benchmark uses: progress lines on stderr (stdout is the
// one JSON line of figures), medians and rounding.

/** A logger that prefixes lines with the benchmark's name, on stderr. */
export function logger(name: string): (line: string) => void {
  return (line) => {
    process.stderr.write(`[${name}] ${line}\n`);
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Rounded to two decimals, for the JSON line. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The p-th percentile (0..100) of xs, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] ?? NaN;
}
