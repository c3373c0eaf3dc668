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

const byNameValue = ([a, av]: [string, string], [b, bv]: [string, string]): number =>
  a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0;

/** Per-property variables: SPECBUILD_REMOTE_PLATFORM_<NAME>, and recc's RECC_REMOTE_PLATFORM_<NAME>. */
const PROPERTY_PREFIXES = ['SPECBUILD_REMOTE_PLATFORM_', 'RECC_REMOTE_PLATFORM_'];

/**
 * The platform of the actions a wrapper makes, from its environment:
 * SPECBUILD_REMOTE_PLATFORM ("K=V,K=V") and one variable per property
 * (SPECBUILD_REMOTE_PLATFORM_chrootRootDigest=..., or recc's
 * RECC_REMOTE_PLATFORM_..., as a `digest-environment` dependency names it).
 * Undefined when none is set (the host's platform then); a string says what
 * does not parse.
 */
export function platformFromEnv(
  env: Iterable<[string, string | undefined]>,
): [string, string][] | string | undefined {
  let list: string | undefined;
  const props: [string, string][] = [];
  for (const [k, v] of env) {
    if (v === undefined) continue;
    if (k === 'SPECBUILD_REMOTE_PLATFORM') list = v;
    else {
      const prefix = PROPERTY_PREFIXES.find((p) => k.startsWith(p) && k.length > p.length);
      if (prefix !== undefined && v !== '') props.push([k.slice(prefix.length), v]);
    }
  }
  const parsed = parsePlatform(list);
  if (typeof parsed === 'string') return parsed;
  if (parsed === undefined && props.length === 0) return undefined;
  return [...(parsed ?? []), ...props].sort(byNameValue);
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
  return out.sort(byNameValue);
}
