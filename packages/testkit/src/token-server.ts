import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * A small Docker token server (the `auth.token` realm of Distribution) on https://127.0.0.1:PORT/token.
 *
 * A NAMED STAND-IN for a registry's auth service (Docker Hub's, Harbor's): Distribution only verifies
 * tokens and ships no token server. It takes HTTP basic credentials (GET), the OAuth2 `password`
 * grant and the `refresh_token` grant (POST; the refresh token is a user's identity token, what
 * `docker login` keeps as `identitytoken`), grants the requested scopes the user may have and answers with an
 * ES256 JWT whose `x5c` header carries the signing certificate. Distribution 2.8 verifies that chain
 * against `rootcertbundle` (the test CA), checks `iss`, `aud` (= service), `exp`/`nbf` and the `access` claim.
 */

export interface TokenUser {
  username: string;
  password: string;
  /** Repository actions this user may get: e.g. ['pull'] or ['pull', 'push', 'delete']. */
  actions: string[];
  /** An identity (refresh) token the `refresh_token` grant accepts for this user. */
  refreshToken?: string;
}

export interface TokenRequestRecord {
  method: string;
  /** The authenticated user, or undefined for an anonymous request. */
  user: string | undefined;
  /** How the client authenticated: basic credentials (GET or POST), or an OAuth2 grant. */
  grant: 'basic' | 'password' | 'refresh_token' | 'anonymous';
  scopes: string[];
  /** What the token grants, as `type:name:actions`. */
  granted: string[];
  status: number;
}

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

export interface TokenServerOptions {
  tlsCertFile: string;
  tlsKeyFile: string;
  signingCertFile: string;
  signingKeyFile: string;
  users: TokenUser[];
  service?: string;
  issuer?: string;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** `repository:demo/app:pull,push` → {type, name, actions}; the name may not hold ':' but a type may carry `(class)`. */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  return {
    type,
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a !== ''),
  };
}

function grant(user: TokenUser | undefined, wanted: Access): Access | undefined {
  if (!user) return undefined;
  if (wanted.type === 'registry' && wanted.name === 'catalog') {
    return wanted.actions.includes('*') ? { type: 'registry', name: 'catalog', actions: ['*'] } : undefined;
  }
  if (wanted.type !== 'repository') return undefined;
  const actions = wanted.actions.flatMap((a) =>
    a === '*' ? user.actions : user.actions.includes(a) ? [a] : [],
  );
  const unique = [...new Set(actions)];
  return unique.length > 0 ? { type: 'repository', name: wanted.name, actions: unique } : undefined;
}

function basicUser(req: IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const service = opts.service ?? 'lading-test-registry';
  const issuer = opts.issuer ?? 'lading-test-token-issuer';
  const expiresIn = opts.expiresIn ?? 300;
  const [tlsCert, tlsKey, signingCertPem, signingKeyPem] = await Promise.all([
    readFile(opts.tlsCertFile),
    readFile(opts.tlsKeyFile),
    readFile(opts.signingCertFile),
    readFile(opts.signingKeyFile),
  ]);
  const signingKey = createPrivateKey(signingKeyPem);
  const x5c = [new X509Certificate(signingCertPem).raw.toString('base64')];
  const requests: TokenRequestRecord[] = [];

  const issue = (subject: string, access: Access[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JOSE wants the raw r||s form of the ECDSA signature.
    const sig = sign('sha256', Buffer.from(input), { key: signingKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') {
      send(404, { errors: [{ code: 'NOT_FOUND', message: `no such endpoint ${url.pathname}` }] });
      return;
    }
    let params: URLSearchParams;
    let creds: { username: string; password: string } | undefined;
    let refreshToken: string | undefined;
    let grantType: TokenRequestRecord['grant'];
    if (req.method === 'GET') {
      params = url.searchParams;
      creds = basicUser(req);
      grantType = creds ? 'basic' : 'anonymous';
    } else if (req.method === 'POST') {
      // OAuth2 grants (containerd; docker with an identity token from `docker login`).
      params = new URLSearchParams(await readBody(req));
      if (params.get('grant_type') === 'password') {
        creds = { username: params.get('username') ?? '', password: params.get('password') ?? '' };
        grantType = 'password';
      } else if (params.get('grant_type') === 'refresh_token') {
        refreshToken = params.get('refresh_token') ?? '';
        grantType = 'refresh_token';
      } else {
        creds = basicUser(req);
        grantType = creds ? 'basic' : 'anonymous';
      }
    } else {
      send(405, { errors: [{ code: 'UNSUPPORTED', message: `method ${req.method}` }] });
      return;
    }
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''));
    const byRefresh =
      refreshToken !== undefined
        ? opts.users.find((u) => u.refreshToken !== undefined && u.refreshToken === refreshToken)
        : undefined;
    const record: TokenRequestRecord = {
      method: req.method,
      user: creds?.username ?? byRefresh?.username,
      grant: grantType,
      scopes,
      granted: [],
      status: 0,
    };
    requests.push(record);
    if (params.get('service') !== null && params.get('service') !== service) {
      record.status = 400;
      send(400, { errors: [{ code: 'DENIED', message: `unknown service ${params.get('service')}` }] });
      return;
    }
    let user: TokenUser | undefined = byRefresh;
    if (refreshToken !== undefined && !byRefresh) {
      record.status = 401;
      send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid refresh token' }] });
      return;
    }
    if (creds) {
      user = opts.users.find((u) => u.username === creds.username && u.password === creds.password);
      if (!user) {
        record.status = 401;
        send(
          401,
          { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
          { 'www-authenticate': 'Basic realm="lading-test-token"' },
        );
        return;
      }
    }
    // Anonymous requests get a token without access, as Docker Hub does; the registry then refuses.
    const access: Access[] = [];
    for (const s of scopes) {
      const wanted = parseScope(s);
      const g = wanted ? grant(user, wanted) : undefined;
      if (g) access.push(g);
    }
    record.granted = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`);
    const token = issue(user?.username ?? '', access);
    record.status = 200;
    send(200, {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date().toISOString(),
    });
  };

  const server = createServer({ cert: tlsCert, key: tlsKey }, (req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: err.message }] }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    realm: `https://127.0.0.1:${port}/token`,
    service,
    issuer,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
