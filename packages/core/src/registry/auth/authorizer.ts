import { AuthError } from '../errors.ts';
import type { Transport } from '../transport.ts';
import { basicAuthorization, hasPassword } from './basic.ts';
import { fetchToken, TokenCache } from './bearer.ts';
import { findChallenge, parseChallenges } from './challenge.ts';
import { anonymousKeychain, type Credential, isEmptyCredential, type Keychain } from './credentials.ts';
import { mergeScopes } from './scope.ts';

/**
 * Decides the Authorization header of each request, per registry host: nothing until the
 * registry asks; then Basic (sent up front from then on) or a Bearer token for the request's
 * scopes (fetched once per scope set and cached until it expires; refetched once on a 401).
 */
export interface AuthContext {
  host: string;
  /** The registry itself speaks plain HTTP (then a plain-HTTP token realm may get credentials). */
  registryPlainHttp?: boolean;
  repository?: string;
  scopes: readonly string[];
  signal?: AbortSignal;
}

type HostAuth =
  | { scheme: 'basic' }
  | { scheme: 'bearer'; realm: string; service: string | undefined }
  | { scheme: 'none' };

export class Authorizer {
  readonly keychain: Keychain;
  private readonly transport: Transport;
  private readonly hosts = new Map<string, HostAuth>();
  private readonly tokens = new TokenCache();

  constructor(transport: Transport, keychain: Keychain = anonymousKeychain) {
    this.transport = transport;
    this.keychain = keychain;
  }

  /** The scheme a host asked for so far (`none` until it sent a challenge). */
  schemeOf(host: string): 'basic' | 'bearer' | 'none' {
    return this.hosts.get(host)?.scheme ?? 'none';
  }

  private credential(ctx: AuthContext): Promise<Credential | undefined> {
    return this.keychain.get(ctx.host, ctx.repository);
  }

  /** The header to send up front, when the host's scheme is known. */
  async header(ctx: AuthContext): Promise<string | undefined> {
    const h = this.hosts.get(ctx.host);
    if (!h || h.scheme === 'none') return undefined;
    if (h.scheme === 'basic') {
      const cred = await this.credential(ctx);
      return hasPassword(cred) ? basicAuthorization(cred) : undefined;
    }
    const scopes = mergeScopes(ctx.scopes);
    const key = TokenCache.key(h.realm, h.service, scopes);
    const cred = await this.credential(ctx);
    const token = await this.tokens.getOrFetch(key, () =>
      fetchToken(this.transport, {
        realm: h.realm,
        service: h.service,
        scopes,
        registry: ctx.host,
        registryPlainHttp: ctx.registryPlainHttp ?? false,
        ...(cred ? { credential: cred } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      }),
    );
    return `Bearer ${token.token}`;
  }

  /**
   * React to a 401: learn the scheme from the challenge and prepare new credentials. Returns
   * true when the request should be sent again; throws AuthError when there is nothing to try.
   */
  async unauthorized(
    ctx: AuthContext,
    wwwAuthenticate: string | string[] | undefined,
    sent: string | undefined,
  ): Promise<boolean> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = findChallenge(challenges, 'bearer');
    const basic = findChallenge(challenges, 'basic');
    const cred = await this.credential(ctx);
    const where = {
      registry: ctx.host,
      ...(ctx.repository ? { repository: ctx.repository } : {}),
      status: 401,
    };
    if (bearer?.params.realm) {
      const realm = bearer.params.realm;
      const service = bearer.params.service;
      this.hosts.set(ctx.host, { scheme: 'bearer', realm, service });
      const scopes = mergeScopes(ctx.scopes, bearer.params.scope);
      const key = TokenCache.key(realm, service, scopes);
      const ownKey = TokenCache.key(realm, service, mergeScopes(ctx.scopes));
      if (sent?.startsWith('Bearer ')) {
        // The token was refused: expired or too narrow. One fresh token, then give up.
        for (const k of [key, ownKey]) {
          const c = this.tokens.get(k);
          if (c && `Bearer ${c.token}` === sent) this.tokens.invalidate(k);
        }
      }
      // Fetch now for the merged scopes so header() finds it (and errors surface here).
      const token = await this.tokens.getOrFetch(key, () =>
        fetchToken(this.transport, {
          realm,
          service,
          scopes,
          registry: ctx.host,
          registryPlainHttp: ctx.registryPlainHttp ?? false,
          ...(cred ? { credential: cred } : {}),
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        }),
      );
      if (sent === `Bearer ${token.token}`) return false;
      // header() looks tokens up by the request's own scopes: remember the merged one there too.
      if (ownKey !== key) this.tokens.set(ownKey, token);
      return true;
    }
    if (basic || challenges.length === 0) {
      if (!hasPassword(cred)) {
        throw new AuthError(
          isEmptyCredential(cred)
            ? 'the registry requires authentication and no credentials were found for it'
            : 'the registry requires a username and password (Basic auth)',
          where,
        );
      }
      if (sent?.startsWith('Basic ')) return false; // the password was refused
      this.hosts.set(ctx.host, { scheme: 'basic' });
      return true;
    }
    throw new AuthError(
      `the registry asks for an unsupported authentication scheme (${challenges.map((c) => c.scheme).join(', ')})`,
      where,
    );
  }
}
