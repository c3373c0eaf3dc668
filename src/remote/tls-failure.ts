// TLS handshake failures recognised in grpc-js's connection errors, which
// reach us only as UNAVAILABLE with Node's or OpenSSL's text inside. Retrying
// them cannot help, and "is a server running?" would mislead: the server
// answered, and one side refused the other's certificate.
import { SpecbuildError } from '../core/index.js';

/** Which side's certificate (or protocol) the handshake failed on. */
export type TlsFailureKind =
  /** We do not trust the server's certificate. */
  | 'server-cert'
  /** We trust it, but it is not for the host name we connected to. */
  | 'host-name'
  /** The server asked for a client certificate it trusts and did not get one. */
  | 'client-cert'
  /** The peer does not speak TLS at all. */
  | 'not-tls';

export interface TlsFailure {
  kind: TlsFailureKind;
  /** Node's or OpenSSL's reason, without OpenSSL's codes and source locations. */
  reason: string;
}

/*
 * Observed with Node 20 (OpenSSL 3) and grpc-js 1.14: "unable to verify the
 * first certificate", "self-signed certificate [in certificate chain]",
 * "Hostname/IP does not match certificate's altnames: …", "…:tlsv13 alert
 * certificate required:…", "…:wrong version number:…". A client certificate
 * the server does not trust ends as a bare "Failed to connect": not
 * recognisable, it stays UNAVAILABLE.
 */
const PATTERNS: readonly [TlsFailureKind, RegExp][] = [
  ['host-name', /does not match certificate's altnames/i],
  [
    'server-cert',
    /unable to verify|unable to get (local )?issuer|self[- ]signed certificate|certificate has expired|certificate is not yet valid|certificate signature failure|unsuitable certificate purpose/i,
  ],
  [
    'client-cert',
    /alert (certificate required|bad certificate|unknown ca|certificate unknown|unsupported certificate|certificate revoked|certificate expired)|peer did not return a certificate/i,
  ],
  ['not-tls', /wrong version number|packet length too long|http request|unknown protocol/i],
];

/** The TLS failure described by a grpc-js UNAVAILABLE message, if it is one. */
export function tlsFailure(details: string): TlsFailure | undefined {
  for (const [kind, re] of PATTERNS)
    if (re.test(details)) return { kind, reason: reasonOf(details) };
  return undefined;
}

/**
 * "No connection established. Last error: Error: 80…:error:0A00045C:SSL
 * routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/…:SSL
 * alert number 116\n (2026-…). Resolution note: " → "tlsv13 alert
 * certificate required".
 */
function reasonOf(details: string): string {
  const last = /Last error: (?:Error: )?([\s\S]*?)(?:\.? Resolution note:[\s\S]*)?$/.exec(details);
  const text = (last?.[1] ?? details).trim();
  const openssl = /SSL routines:[^:]*:([^:]+):/.exec(text);
  return (openssl?.[1] ?? text.replace(/\s*\(\d{4}-[^)]*\)$/, '')).trim();
}

/** A TLS handshake that failed: final (never retried), with what to change. */
export class TlsError extends SpecbuildError {
  constructor(
    readonly failure: TlsFailure,
    target: string,
    /** The CA certificates the client was given, if any (default: the system's). */
    caFile: string | undefined,
  ) {
    super(
      'remote/tls',
      `${target}: TLS handshake failed: ${WHAT[failure.kind]} (${failure.reason})`,
      {
        hint: hintFor(failure, caFile),
      },
    );
  }
}

const WHAT: Record<TlsFailureKind, string> = {
  'server-cert': "the server's certificate is not trusted",
  'host-name': "the server's certificate is not for this host name",
  'client-cert': 'the server requires a client certificate it trusts',
  'not-tls': 'the server does not speak TLS',
};

function hintFor(f: TlsFailure, caFile: string | undefined): string {
  switch (f.kind) {
    case 'server-cert':
      return caFile === undefined
        ? "the system's CA certificates do not vouch for it: give the PEM certificate of the CA that signed it"
        : `${caFile} does not hold the certificate of the CA that signed it`;
    case 'host-name':
      return 'connect by a host name that the certificate lists';
    case 'client-cert':
      return 'give a client certificate and key signed by a CA that the server trusts';
    case 'not-tls':
      return 'use grpc:// for a server without TLS';
  }
}
