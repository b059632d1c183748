import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { issueCert, makeCA } from './ca.ts';
import { spawnGuarded } from './proc.ts';
import { freePort, tmpDir } from './tmp.ts';
import { startTokenServer, type TokenServer, type TokenUser } from './token-server.ts';

const run = promisify(execFile);

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export type RegistryMode = 'http' | 'tls' | 'basic' | 'token';

export interface RegistryServer {
  mode: RegistryMode;
  /** '127.0.0.1:PORT', what goes in an image reference. */
  host: string;
  /** 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT'. */
  url: string;
  /** PEM path of the test CA that signed the registry certificate (tls/basic/token). */
  caFile?: string;
  /** A directory holding `ca.crt` (the test CA): what skopeo/containers take as --cert-dir (tls/basic/token). */
  certDir?: string;
  /** basic and token modes: a user that may push and pull. */
  username?: string;
  password?: string;
  /** token mode with `readOnlyUser: true`: a user that may only pull. */
  readOnlyUsername?: string;
  readOnlyPassword?: string;
  /** token mode: the realm of the token server (https://127.0.0.1:PORT/token) and its service name. */
  tokenRealm?: string;
  tokenService?: string;
  /** token mode: an identity (refresh) token of `username`, for the `refresh_token` grant. */
  identityToken?: string;
  /** token mode: every request the token server answered, oldest first (for tests of the auth flow). */
  tokenRequests?: TokenServer['requests'];
  /** Registry storage root (filesystem driver rootdirectory). */
  dataDir: string;
  /** The registry's stdout/stderr. */
  logFile: string;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  mode?: RegistryMode;
  /** Also create a pull-only user (readOnlyUsername/readOnlyPassword). Token mode only: htpasswd cannot restrict. */
  readOnlyUser?: boolean;
}

const USER = 'lading';
const RO_USER = 'reader';

/** The user agent of the start-up probe, left out of `registryRequests`. */
const PROBE_AGENT = 'lading-testkit-probe';

async function probe(url: string, ca: Buffer | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: 2000, headers: { 'user-agent': PROBE_AGENT }, ...(ca ? { ca } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function tail(file: string): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Starts CNCF Distribution (`docker-registry serve CONFIG`) on a free 127.0.0.1 port, in one of four modes:
 * 'http' (plain), 'tls' (HTTPS, cert for 127.0.0.1 + localhost from a fresh test CA), 'basic' (TLS + htpasswd)
 * and 'token' (TLS + bearer tokens from an in-process token server). Resolves once `/v2/` answers.
 */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RegistryServer> {
  const mode = opts.mode ?? 'http';
  if (opts.readOnlyUser && mode !== 'token') {
    throw new Error(
      `startRegistry: readOnlyUser needs mode 'token' (got '${mode}'); htpasswd cannot restrict a user`,
    );
  }
  const root = await tmpDir(`lading-registry-${mode}-`);
  const dataDir = join(root.path, 'data');
  const logFile = join(root.path, 'registry.log');
  await mkdir(dataDir, { recursive: true });

  let token: TokenServer | undefined;
  let stopped = false;
  let proc: ReturnType<typeof spawnGuarded> | undefined;
  const stopAll = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await proc?.stop();
    await token?.stop();
    await root.cleanup();
  };

  try {
    const tls = mode !== 'http';
    let caFile: string | undefined;
    let certDir: string | undefined;
    let tlsCfg = '';
    let authCfg = '';
    let username: string | undefined;
    let password: string | undefined;
    let roUsername: string | undefined;
    let roPassword: string | undefined;
    let identityToken: string | undefined;
    if (tls) {
      const ca = await makeCA(join(root.path, 'pki'));
      const server = await issueCert(ca, 'server', { hosts: ['127.0.0.1', 'localhost'], usage: 'server' });
      caFile = ca.caFile;
      certDir = join(root.path, 'certs.d');
      await mkdir(certDir);
      await copyFile(ca.caFile, join(certDir, 'ca.crt'));
      tlsCfg = `  tls:\n    certificate: ${yamlString(server.certFile)}\n    key: ${yamlString(server.keyFile)}\n`;
      if (mode === 'basic' || mode === 'token') {
        username = USER;
        password = randomBytes(12).toString('hex');
      }
      if (mode === 'basic') {
        const htpasswdFile = join(root.path, 'htpasswd');
        const { stdout } = await run('htpasswd', ['-Bbn', username!, password!]);
        await writeFile(htpasswdFile, stdout.trim() + '\n');
        authCfg = `auth:\n  htpasswd:\n    realm: lading-test\n    path: ${yamlString(htpasswdFile)}\n`;
      }
      if (mode === 'token') {
        identityToken = randomBytes(16).toString('hex');
        const users: TokenUser[] = [
          {
            username: username!,
            password: password!,
            actions: ['pull', 'push', 'delete'],
            refreshToken: identityToken,
          },
        ];
        if (opts.readOnlyUser) {
          roUsername = RO_USER;
          roPassword = randomBytes(12).toString('hex');
          users.push({ username: roUsername, password: roPassword, actions: ['pull'] });
        }
        const signing = await issueCert(ca, 'token-signing', { usage: 'signing' });
        const tokenServer = await issueCert(ca, 'token-server', {
          hosts: ['127.0.0.1', 'localhost'],
          usage: 'server',
        });
        token = await startTokenServer({
          tlsCertFile: tokenServer.certFile,
          tlsKeyFile: tokenServer.keyFile,
          signingCertFile: signing.certFile,
          signingKeyFile: signing.keyFile,
          users,
        });
        authCfg =
          `auth:\n  token:\n    realm: ${yamlString(token.realm)}\n    service: ${yamlString(token.service)}\n` +
          `    issuer: ${yamlString(token.issuer)}\n    rootcertbundle: ${yamlString(ca.caFile)}\n`;
      }
    }
    const ca = caFile ? await readFile(caFile) : undefined;

    // The port can be taken between freePort() and the registry's bind: retry a few times.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const url = `${tls ? 'https' : 'http'}://${host}`;
      const configFile = join(root.path, 'config.yml');
      const config =
        'version: 0.1\n' +
        'log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n' +
        `storage:\n  filesystem:\n    rootdirectory: ${yamlString(dataDir)}\n  delete:\n    enabled: true\n` +
        '  maintenance:\n    uploadpurging:\n      enabled: false\n' +
        `http:\n  addr: ${host}\n  secret: ${randomBytes(16).toString('hex')}\n` +
        '  headers:\n    X-Content-Type-Options: [nosniff]\n' +
        tlsCfg +
        authCfg;
      await writeFile(configFile, config);
      // Distribution reads REGISTRY_* variables as config overrides: keep the caller's out.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
      await writeFile(logFile, '');
      proc = spawnGuarded(REGISTRY_BIN, ['serve', configFile], logFile, env);
      const exited = proc.exited.then(() => 'exited' as const);
      const deadline = Date.now() + 20_000;
      let status = 0;
      let gone = false;
      while (Date.now() < deadline) {
        const r = await Promise.race([probe(`${url}/v2/`, ca).catch(() => 0), exited]);
        if (r === 'exited') {
          gone = true;
          break;
        }
        if (r === 200 || r === 401) {
          status = r;
          break;
        }
        await new Promise((res) => setTimeout(res, 50));
      }
      if (status !== 0) {
        const server: RegistryServer = {
          mode,
          host,
          url,
          dataDir,
          logFile,
          stop: stopAll,
        };
        if (caFile) server.caFile = caFile;
        if (certDir) server.certDir = certDir;
        if (username) server.username = username;
        if (password) server.password = password;
        if (roUsername) server.readOnlyUsername = roUsername;
        if (roPassword) server.readOnlyPassword = roPassword;
        if (identityToken) server.identityToken = identityToken;
        if (token) {
          server.tokenRealm = token.realm;
          server.tokenService = token.service;
          server.tokenRequests = token.requests;
        }
        return server;
      }
      const log = await tail(logFile);
      await proc.stop();
      proc = undefined;
      if (gone && /address already in use/.test(log) && attempt < 5) continue;
      throw new Error(
        `startRegistry(${mode}): ${REGISTRY_BIN} at ${url} did not answer /v2/ ${gone ? '(it exited)' : 'within 20s'}; log:\n${log}`,
      );
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** One request as the registry itself logged it. */
export interface LoggedRequest {
  method: string;
  /** Path and query, as sent: `/v2/NAME/manifests/REF`. */
  uri: string;
  status: number;
  userAgent: string;
}

const LOG_FIELD =
  /(http\.request\.(?:method|uri|useragent|id)|http\.response\.status)=("(?:[^"\\]|\\.)*"|\S*)/g;

/**
 * Every request the registry answered, oldest first, read from its own log (what the server saw,
 * not what a client reports). Distribution logs a request when its handler returns, so a response
 * without a streamed body (HEAD, manifests, errors) is in the log before the client has it; a 401
 * challenge is not logged as a response. The testkit's own start-up probe is left out. `since`
 * drops the first entries: take `(await registryRequests(reg)).length` before the step under test.
 */
export async function registryRequests(
  reg: Pick<RegistryServer, 'logFile'>,
  since = 0,
): Promise<LoggedRequest[]> {
  const out: LoggedRequest[] = [];
  for (const line of (await readFile(reg.logFile, 'utf8')).split('\n')) {
    if (!line.includes('msg="response completed')) continue;
    const f: Record<string, string> = {};
    for (const m of line.matchAll(LOG_FIELD)) {
      const v = m[2] ?? '';
      f[m[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
    }
    const userAgent = f['http.request.useragent'] ?? '';
    if (userAgent === PROBE_AGENT) continue;
    out.push({
      method: f['http.request.method'] ?? '',
      uri: f['http.request.uri'] ?? '',
      status: Number(f['http.response.status']),
      userAgent,
    });
  }
  return out.slice(since);
}
