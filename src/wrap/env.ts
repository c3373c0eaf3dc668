// The environment both wrappers read the same way (see README's table).

export interface WrapperTarget {
  /** SPECBUILD_SERVER, else RECC_SERVER; empty means none. */
  server: string | undefined;
  /** SPECBUILD_INSTANCE (default ""). */
  instance: string;
  /** SPECBUILD_WRAPPER_LOG; empty means none. */
  logFile: string | undefined;
}

export function wrapperTarget(get: (name: string) => string | undefined): WrapperTarget {
  const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);
  return {
    server: nonEmpty(get('SPECBUILD_SERVER') ?? get('RECC_SERVER')),
    instance: get('SPECBUILD_INSTANCE') ?? '',
    logFile: nonEmpty(get('SPECBUILD_WRAPPER_LOG')),
  };
}

/** Parses "K=V,K=V" (a value may hold "="; a key may repeat, as REAPI allows). */
export function parsePlatform(v: string | undefined): [string, string][] | string | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const out: [string, string][] = [];
  for (const part of v.split(',')) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq).trim();
    if (eq <= 0 || name === '')
      return `SPECBUILD_REMOTE_PLATFORM: "${part}" is not KEY=VALUE (write e.g. OSFamily=linux,ISA=x86-64)`;
    out.push([name, part.slice(eq + 1).trim()]);
  }
  return out.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
}
