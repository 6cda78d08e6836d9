/**
 * A throw-away PKI for TLS tests, made with the openssl command line as an operator would:
 *
 *   const pki = makePki(dir, { clients: ['edge-1'] });
 *   pki.ca, pki.server.cert, pki.server.key          // server certificate for 127.0.0.1 and localhost
 *   pki.clients['edge-1'].cert / .key                // client certificates (CN = the name)
 *
 * EC P-256 keys (fast to make), valid two days.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertPair { cert: string; key: string }
export interface Pki { ca: string; server: CertPair; clients: Record<string, CertPair> }

const openssl = (args: string[], cwd: string): void => { execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] }); };
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function issue(dir: string, name: string, subject: string, extensions: string): CertPair {
  openssl(['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

export function makePki(dir: string, o: { clients?: string[] } = {}): Pki {
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=edgerun test CA'], dir);
  const server = issue(dir, 'server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth');
  const clients: Record<string, CertPair> = {};
  for (const c of o.clients ?? []) clients[c] = issue(dir, `client-${c}`, `/CN=${c}`, 'extendedKeyUsage=clientAuth');
  return { ca: join(dir, 'ca.crt'), server, clients };
}
