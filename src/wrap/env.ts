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
