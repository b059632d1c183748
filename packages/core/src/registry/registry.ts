import type { CallOptions } from '../content/index.ts';
import { CATALOG_SCOPE } from './auth/scope.ts';
import { RegistryClient, type RegistryClientOptions, type Response } from './client.ts';
import { RegistryProtocolError } from './errors.ts';
import { nextLink } from './pagination.ts';
import { RegistryRepository, type RepositoryOptions } from './repository.ts';

/**
 * A registry host: shares one client (connection pool, credentials, token cache) across its
 * repositories. `ping()` checks /v2/ and reports TLS and auth problems clearly.
 */
export interface RegistryOptions extends RegistryClientOptions, RepositoryOptions {}

export interface PingResult {
  /** The URL that answered, e.g. `https://127.0.0.1:5000/v2/`. */
  url: string;
  /** What the registry asked for. */
  auth: 'none' | 'basic' | 'bearer';
  /** Docker-Distribution-API-Version, when sent. */
  apiVersion: string | undefined;
}

export class Registry {
  readonly host: string;
  readonly client: RegistryClient;
  readonly options: RegistryOptions;

  constructor(host: string, options: RegistryOptions = {}) {
    this.client = new RegistryClient(host, options);
    this.host = this.client.host;
    this.options = options;
  }

  /** A repository of this registry (`library/nginx`). */
  repository(name: string, options: RepositoryOptions = {}): RegistryRepository {
    const { chunkSize, mode, tagPageSize } = this.options;
    return new RegistryRepository(this, name, {
      ...(chunkSize ? { chunkSize } : {}),
      ...(mode ? { mode } : {}),
      ...(tagPageSize ? { tagPageSize } : {}),
      ...options,
    });
  }

  /**
   * GET /v2/: is this a Distribution registry, reachable, trusted, and do our credentials work?
   * Throws TlsError, AuthError, RegistryUnavailableError… with the fix in the hint.
   */
  async ping(opts: CallOptions = {}): Promise<PingResult> {
    const res = await this.client.send({
      method: 'GET',
      path: '/v2/',
      scopes: [],
      kind: 'registry',
      expect: [200],
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    await res.body.dump();
    return {
      url: this.client.url('/v2/').href,
      auth: this.client.authorizer.schemeOf(this.host),
      apiVersion: res.header('docker-distribution-api-version'),
    };
  }

  /** Repository names (GET /v2/_catalog, Link pagination). */
  async *catalog(opts: CallOptions & { pageSize?: number } = {}): AsyncIterable<string> {
    let url: URL | undefined = this.client.url(
      '/v2/_catalog',
      opts.pageSize ? { n: opts.pageSize } : undefined,
    );
    while (url) {
      const res: Response = await this.client.send({
        method: 'GET',
        path: url,
        headers: { accept: 'application/json' },
        scopes: [CATALOG_SCOPE],
        kind: 'registry',
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      let json: { repositories?: unknown };
      try {
        json = (await res.body.json()) as { repositories?: unknown };
      } catch (err) {
        throw new RegistryProtocolError('the catalog answer is not JSON', {
          registry: this.host,
          cause: err,
        });
      }
      const repos = Array.isArray(json.repositories)
        ? json.repositories.filter((r): r is string => typeof r === 'string')
        : [];
      for (const r of repos) yield r;
      const next = nextLink(res.headers.link, url);
      url = next && repos.length > 0 ? next : undefined;
    }
  }

  /** Close the connection pool. */
  close(): Promise<void> {
    return this.client.close();
  }
}
