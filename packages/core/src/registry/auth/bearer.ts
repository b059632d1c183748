import { AuthError, errorFromNetwork, parseErrorBody, RegistryProtocolError } from '../errors.ts';
import type { Transport } from '../transport.ts';
import { basicAuthorization, hasPassword } from './basic.ts';
import type { Credential } from './credentials.ts';

/**
 * Bearer tokens (Docker token spec / OAuth2): fetched from the challenge's realm with `service`
 * and `scope`; with a password through GET + Basic, with an identity (refresh) token through
 * the OAuth2 POST form, anonymously without either. Tokens are cached per scope set.
 */
export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: readonly string[];
  credential?: Credential;
  /** Registry host, for error messages. */
  registry: string;
  /**
   * The registry itself speaks plain HTTP. Otherwise a realm over plain HTTP gets no credentials
   * (a password or refresh token would cross the network in clear text): the request is refused.
   */
  registryPlainHttp?: boolean;
  signal?: AbortSignal;
  clientId?: string;
}

export interface Token {
  token: string;
  /** Epoch ms after which the token must not be used. */
  expiresAt: number;
}

/** Tokens without `expires_in` last 60 s (token spec). */
const DEFAULT_TTL_S = 60;

function parseTokenBody(text: string, req: TokenRequest): Token {
  let json: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    throw new RegistryProtocolError(`token server ${req.realm} answered something that is not JSON`, {
      registry: req.registry,
    });
  }
  const token =
    typeof json.token === 'string' && json.token
      ? json.token
      : typeof json.access_token === 'string'
        ? json.access_token
        : '';
  if (!token) {
    throw new RegistryProtocolError(`token server ${req.realm} answered without a token`, {
      registry: req.registry,
    });
  }
  const ttl = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : DEFAULT_TTL_S;
  const issued = typeof json.issued_at === 'string' ? Date.parse(json.issued_at) : Number.NaN;
  const start = Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now());
  // Renew a little early so a token does not expire mid-request.
  const margin = Math.min(10, ttl / 4) * 1000;
  return { token, expiresAt: start + ttl * 1000 - margin };
}

async function readText(body: { text(): Promise<string> }): Promise<string> {
  try {
    return await body.text();
  } catch {
    return '';
  }
}

/** Fetch a token from the realm. Throws AuthError when the token server refuses. */
export async function fetchToken(transport: Transport, req: TokenRequest): Promise<Token> {
  const cred = req.credential;
  if (cred?.registryToken) {
    return { token: cred.registryToken, expiresAt: Number.POSITIVE_INFINITY };
  }
  let url: URL;
  try {
    url = new URL(req.realm);
  } catch {
    throw new RegistryProtocolError(`invalid token realm "${req.realm}" in the registry's challenge`, {
      registry: req.registry,
    });
  }
  const ctx = { registry: req.registry };
  if (url.protocol === 'http:' && !req.registryPlainHttp && (hasPassword(cred) || cred?.identityToken)) {
    throw new AuthError(
      `the token realm ${url.origin} is plain HTTP while the registry uses HTTPS: Lading does not send credentials there in clear text`,
      {
        ...ctx,
        hint: "the registry's token service must use https (its challenge names the realm); a plain-HTTP realm is accepted only for a plain-HTTP registry",
      },
    );
  }
  let res: Awaited<ReturnType<Transport['request']>>;
  try {
    if (cred?.identityToken) {
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', cred.identityToken);
      form.set('client_id', req.clientId ?? 'lading');
      if (req.service) form.set('service', req.service);
      if (req.scopes.length > 0) form.set('scope', req.scopes.join(' '));
      res = await transport.request({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: form.toString(),
        ...(req.signal ? { signal: req.signal } : {}),
      });
    } else {
      if (req.service) url.searchParams.set('service', req.service);
      for (const s of req.scopes) url.searchParams.append('scope', s);
      if (hasPassword(cred)) url.searchParams.set('account', cred.username);
      const headers: Record<string, string> = {};
      if (hasPassword(cred)) headers.authorization = basicAuthorization(cred);
      res = await transport.request({
        method: 'GET',
        url,
        headers,
        ...(req.signal ? { signal: req.signal } : {}),
      });
    }
  } catch (err) {
    throw errorFromNetwork(err, ctx, req.signal);
  }
  const text = await readText(res.body);
  if (res.status === 200) return parseTokenBody(text, req);
  const errors = parseErrorBody(text);
  if (res.status === 401 || res.status === 403) {
    const who = hasPassword(cred)
      ? `user "${cred.username}"`
      : cred?.identityToken
        ? 'the identity token'
        : 'anonymous access';
    throw new AuthError(`the token server ${url.origin} refused ${who}`, {
      ...ctx,
      status: res.status,
      errors,
    });
  }
  throw new RegistryProtocolError(`the token server ${url.origin} answered HTTP ${res.status}`, {
    ...ctx,
    status: res.status,
    errors,
  });
}

/** Per-scope token cache, keyed by realm + service + sorted scopes. */
export class TokenCache {
  private readonly tokens = new Map<string, Token>();
  private readonly inflight = new Map<string, Promise<Token>>();

  static key(realm: string, service: string | undefined, scopes: readonly string[]): string {
    return `${realm} ${service ?? ''} ${[...scopes].sort().join(' ')}`;
  }

  get(key: string, now = Date.now()): Token | undefined {
    const t = this.tokens.get(key);
    if (t && t.expiresAt > now) return t;
    if (t) this.tokens.delete(key);
    return undefined;
  }

  set(key: string, token: Token): void {
    this.tokens.set(key, token);
  }

  invalidate(key: string): void {
    this.tokens.delete(key);
  }

  /** The cached token for `key`, or one fetch shared by concurrent callers. */
  async getOrFetch(key: string, fetch: () => Promise<Token>): Promise<Token> {
    const hit = this.get(key);
    if (hit) return hit;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = fetch()
      .then((t) => {
        this.tokens.set(key, t);
        return t;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}
