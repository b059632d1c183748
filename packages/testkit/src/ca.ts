import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 30_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed in ${cwd}: ${e.stderr?.trim() || e.message}`);
  }
}

export interface TestCA {
  /** PEM of the self-signed test CA. */
  caFile: string;
  caKeyFile: string;
  dir: string;
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
}

/** A self-signed EC P-256 CA in `dir` (ca.pem, ca.key). */
export async function makeCA(dir: string, name = 'Lading Test CA'): Promise<TestCA> {
  await mkdir(dir, { recursive: true });
  const caKeyFile = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKeyFile], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKeyFile,
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-out',
      caFile,
    ],
    dir,
  );
  return { caFile, caKeyFile, dir };
}

/**
 * Issues an EC P-256 leaf certificate signed by `ca`, named `<name>.pem` / `<name>.key` in the CA's dir.
 * `hosts` become subjectAltNames (IP SAN for addresses, DNS SAN otherwise); usage picks the extended key usage
 * (server: serverAuth, client: clientAuth for mutual TLS, signing: none).
 */
export async function issueCert(
  ca: TestCA,
  name: string,
  opts: { hosts?: string[]; usage?: 'server' | 'client' | 'signing' } = {},
): Promise<IssuedCert> {
  const hosts = opts.hosts ?? [];
  const keyFile = join(ca.dir, `${name}.key`);
  const certFile = join(ca.dir, `${name}.pem`);
  const csrFile = join(ca.dir, `${name}.csr`);
  const extFile = join(ca.dir, `${name}.ext`);
  const ext = ['basicConstraints=critical,CA:FALSE'];
  if (opts.usage === 'signing') {
    ext.push('keyUsage=critical,digitalSignature');
  } else if (opts.usage === 'client') {
    ext.push('keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth');
  } else {
    ext.push('keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth');
  }
  if (hosts.length > 0) {
    ext.push(`subjectAltName=${hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}`);
  }
  await writeFile(extFile, `${ext.join('\n')}\n`);
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], ca.dir);
  await openssl(
    ['req', '-new', '-key', keyFile, '-subj', `/CN=${hosts[0] ?? name}`, '-out', csrFile],
    ca.dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      ca.caFile,
      '-CAkey',
      ca.caKeyFile,
      '-CAcreateserial',
      '-sha256',
      '-days',
      '825',
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    ca.dir,
  );
  return { certFile, keyFile };
}

/**
 * A test CA plus a server certificate it signed for `hosts` (default 127.0.0.1 and localhost), all made
 * with the openssl CLI in `dir`: ca.pem/ca.key, server.pem/server.key.
 */
export async function makeTestCA(
  dir: string,
  hosts: string[] = ['127.0.0.1', 'localhost'],
): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const ca = await makeCA(dir);
  const server = await issueCert(ca, 'server', { hosts, usage: 'server' });
  return { caFile: ca.caFile, certFile: server.certFile, keyFile: server.keyFile };
}
