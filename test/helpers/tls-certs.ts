// A throwaway private CA and certificates it signs, made with Debian's
// `openssl` in a directory the caller owns (and removes): a server
// certificate for localhost and 127.0.0.1, and client certificates for
// mutual TLS. Keys are unencrypted RSA 2048; certificates last one day.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireCommand } from './prereq.js';

/** PEM files of one certificate: its path and its key's. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertFiles {
  /** Issues a certificate signed by this CA, written as NAME.pem and NAME.key. */
  issue(name: string, use: 'server' | 'client'): CertFiles;
}

/** Extensions, named so that openssl does not depend on the system's openssl.cnf. */
const CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = specbuild test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
authorityKeyIdentifier = keyid
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA (NAME.pem, NAME.key) in `dir`. */
export function makeCa(dir: string, name = 'ca'): TestCa {
  requireCommand('openssl', 'install it: apt-get install openssl');
  const config = join(dir, 'openssl.cnf');
  writeFileSync(config, CONFIG);
  const ca = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  // -set_serial: each certificate its own serial, without a serial file beside.
  let serial = 1;
  openssl([
    'req',
    '-x509',
    '-config',
    config,
    '-extensions',
    'ca',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    ca.key,
    '-out',
    ca.cert,
  ]);
  return {
    ...ca,
    issue(certName, use) {
      const out = { cert: join(dir, `${certName}.pem`), key: join(dir, `${certName}.key`) };
      const csr = join(dir, `${certName}.csr`);
      openssl([
        'req',
        '-new',
        '-config',
        config,
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        `/CN=${use === 'server' ? 'localhost' : certName}`,
        '-keyout',
        out.key,
        '-out',
        csr,
      ]);
      openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-set_serial',
        String(++serial),
        '-days',
        '1',
        '-extfile',
        config,
        '-extensions',
        use,
        '-out',
        out.cert,
      ]);
      return out;
    },
  };
}
