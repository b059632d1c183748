import { Readable } from 'node:stream';
import { AbortedError, InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { Authorizer } from './auth/authorizer.ts';
import {
  type Credential,
  defaultKeychain,
  type Keychain,
  MultiKeychain,
  StaticKeychain,
} from './auth/credentials.ts';
import {
  AuthError,
  errorFromNetwork,
  errorFromStatus,
  isPlainHttpServer,
  parseErrorBody,
  type RegistryErrorContext,
  type ResourceKind,
} from './errors.ts';
import { type RetryOptions, RetryPolicy } from './retry.ts';
import { type RawResponse, readBodyLimited, Transport, type TransportOptions } from './transport.ts';

/**
 * The client one registry host is spoken to with: transport (TLS, proxy, timeouts), auth
 * (challenge → Basic or Bearer), retries with backoff, redirects, and typed errors that name the
 * registry, repository and ref.
 */
export interface RegistryClientOptions extends TransportOptions {
  /** Speak plain HTTP to this registry (no TLS at all). */
  plainHttp?: boolean;
  /**
   * When the registry answers a TLS handshake in plain HTTP, go on over plain HTTP. Default: only
   * for loopback hosts (`localhost`, 127.0.0.0/8, `::1`), as Docker and crane do.
   */
  plainHttpFallback?: boolean;
  /** Where credentials come from (default: containers auth.json, then Docker config). */
  keychain?: Keychain;
  /** Explicit credentials for this registry; they win over the keychain. */
  credentials?: Credential;
  retry?: RetryOptions;
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body that can be sent again (bytes) or only once (a stream). */
export type RequestBody = Buffer | string | Readable;

export interface RequestSpec {
  method: Method;
  /** Path under the registry (`/v2/…`) or an absolute URL (upload locations, Link pages). */
  path: string | URL;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes the request needs. */
  scopes: readonly string[];
  /** What the request is about, for typed errors. */
  kind: ResourceKind;
  repository?: string;
  ref?: string;
  /** Statuses that count as success (others throw a typed error). Default: 200. */
  expect?: readonly number[];
  /** Follow redirects (default true for GET/HEAD). Authorization is dropped on another origin. */
  followRedirects?: boolean;
  /** Retry transient failures (default true; only ever for bodies that can be sent again). */
  retry?: boolean;
  signal?: AbortSignal;
}

export interface Response extends RawResponse {
  /** A header's first value. */
  header(name: string): string | undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
const ERROR_BODY_LIMIT = 64 * 1024;

function toResponse(raw: RawResponse): Response {
  return Object.assign(raw, {
    header(name: string): string | undefined {
      const v = raw.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    },
  });
}

async function drain(res: RawResponse): Promise<void> {
  try {
    await res.body.dump({ limit: 1024 * 1024 });
  } catch {
    // ignore: the connection is dropped instead
  }
}

/** Validate a registry host: `name[:port]` or `[v6]:port`, no scheme, no path. */
export function checkRegistryHost(host: string): string {
  if (!host || /[/\s]/.test(host) || /^[a-z]+:\/\//i.test(host)) {
    throw new InvalidInputError(`invalid registry host "${host}"`, {
      hint: 'give the registry as HOST[:PORT], e.g. registry.example.com:5000 (no scheme, no path)',
    });
  }
  try {
    new URL(`https://${host}/`);
  } catch {
    throw new InvalidInputError(`invalid registry host "${host}"`, {
      hint: 'give the registry as HOST[:PORT], e.g. registry.example.com:5000',
    });
  }
  return host;
}

/** Docker Hub's API lives at registry-1.docker.io. */
/** Whether `host[:port]` names this machine: `localhost`, 127.0.0.0/8 or `::1`. */
export function isLoopbackHost(host: string): boolean {
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname;
  } catch {
    return false;
  }
  name = name.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

function apiHost(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' ? 'registry-1.docker.io' : host;
}

export class RegistryClient {
  readonly host: string;
  readonly options: RegistryClientOptions;
  readonly transport: Transport;
  readonly authorizer: Authorizer;
  readonly retry: RetryPolicy;
  private scheme: 'https' | 'http';

  constructor(host: string, options: RegistryClientOptions = {}) {
    this.host = checkRegistryHost(host);
    this.options = options;
    this.transport = new Transport(options);
    let keychain = options.keychain ?? defaultKeychain();
    if (options.credentials)
      keychain = new MultiKeychain([new StaticKeychain(options.credentials), keychain]);
    this.authorizer = new Authorizer(this.transport, keychain);
    this.retry = new RetryPolicy(options.retry);
    this.scheme = options.plainHttp ? 'http' : 'https';
  }

  /** `https://host` (or `http://` for plain-HTTP registries, also after a loopback fallback). */
  get baseUrl(): string {
    return `${this.scheme}://${apiHost(this.host)}`;
  }

  url(path: string | URL, query?: RequestSpec['query']): URL {
    const u = path instanceof URL ? new URL(path.href) : new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /** Close the connection pool. */
  close(): Promise<void> {
    return this.transport.close();
  }

  /**
   * Send a request: auth on 401 (once), redirects, retries on transient failures when the body
   * can be sent again. Resolves with the response when its status is expected; otherwise
   * throws the typed error (body read for the registry's own message).
   */
  async send(spec: RequestSpec): Promise<Response> {
    const signal = spec.signal;
    const replayable = !(spec.body instanceof Readable);
    const mayRetry = replayable && spec.retry !== false;
    const expect = spec.expect ?? [200];
    const follow = spec.followRedirects ?? (spec.method === 'GET' || spec.method === 'HEAD');
    const ctx: RegistryErrorContext = {
      registry: this.host,
      ...(spec.repository ? { repository: spec.repository } : {}),
      ...(spec.ref ? { ref: spec.ref } : {}),
    };
    const authCtx = {
      host: this.host,
      registryPlainHttp: this.scheme === 'http',
      scopes: spec.scopes,
      ...(spec.repository ? { repository: spec.repository } : {}),
      ...(signal ? { signal } : {}),
    };
    let url = this.url(spec.path, spec.query);
    let method: Method = spec.method;
    let authRetried = false;
    let redirects = 0;
    let attempt = 0;
    let switchedToHttp = false;
    let sentAuth: string | undefined;
    for (;;) {
      attempt++;
      throwIfAborted(signal);
      // Authorization goes only to the registry's own origin (scheme, host and port): not to a
      // redirect target elsewhere, and not to the same host over plain HTTP after an https one.
      const onRegistry = url.origin === new URL(this.baseUrl).origin;
      sentAuth = undefined;
      if (onRegistry) {
        try {
          sentAuth = await this.authorizer.header(authCtx);
        } catch (err) {
          throw errorFromNetwork(err, ctx, signal);
        }
      }
      const headers: Record<string, string> = { ...(spec.headers ?? {}) };
      if (sentAuth) headers.authorization = sentAuth;
      let raw: RawResponse;
      try {
        raw = await this.transport.request({
          method,
          url,
          headers,
          ...(spec.body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body: spec.body } : {}),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (signal?.aborted)
          throw new AbortedError(`${this.host}: operation aborted`, { cause: signal.reason });
        if (
          (this.options.plainHttpFallback ?? isLoopbackHost(this.host)) &&
          !switchedToHttp &&
          url.protocol === 'https:' &&
          onRegistry &&
          isPlainHttpServer(err) &&
          replayable
        ) {
          // A loopback registry without TLS: like Docker and crane, go on over plain HTTP.
          switchedToHttp = true;
          this.scheme = 'http';
          authCtx.registryPlainHttp = true;
          url = new URL(url.href.replace(/^https:/, 'http:'));
          attempt--;
          continue;
        }
        if (mayRetry && this.retry.retryableError(err) && attempt < this.retry.maxAttempts) {
          await this.retry.wait(this.retry.delayMs(attempt) ?? 0, signal);
          continue;
        }
        throw errorFromNetwork(err, ctx, signal);
      }
      const res = toResponse(raw);
      if (res.status === 401 && onRegistry && !authRetried && !expect.includes(401)) {
        authRetried = true;
        const challenge = raw.headers['www-authenticate'];
        await drain(raw);
        let again: boolean;
        try {
          again = await this.authorizer.unauthorized(authCtx, challenge, sentAuth);
        } catch (err) {
          if (err instanceof AuthError) throw err;
          throw errorFromNetwork(err, ctx, signal);
        }
        if (again && replayable) {
          attempt--;
          continue;
        }
        throw new AuthError(
          again
            ? 'authentication was needed in the middle of a streamed upload; retry the operation'
            : sentAuth?.startsWith('Basic ')
              ? 'the registry rejected the username or password'
              : 'the registry rejected the credentials',
          { ...ctx, status: 401 },
        );
      }
      if (REDIRECTS.has(res.status) && follow) {
        const location = res.header('location');
        await drain(raw);
        if (!location || redirects >= MAX_REDIRECTS) {
          throw errorFromStatus(res.status, spec.kind, ctx);
        }
        redirects++;
        url = new URL(location, url);
        if (res.status === 303) method = 'GET';
        attempt--;
        continue;
      }
      if (!expect.includes(res.status) && this.retry.retryableStatus(res.status) && mayRetry) {
        if (attempt < this.retry.maxAttempts) {
          const delay = this.retry.delayMs(attempt, res.header('retry-after'));
          if (delay !== undefined) {
            await drain(raw);
            await this.retry.wait(delay, signal);
            continue;
          }
        }
      }
      if (!expect.includes(res.status)) {
        const text =
          method === 'HEAD'
            ? ''
            : (await readBodyLimited(raw.body, ERROR_BODY_LIMIT, { keepOnError: true })).bytes.toString(
                'utf8',
              );
        if (res.status === 401) {
          throw new AuthError(
            sentAuth?.startsWith('Basic ')
              ? 'the registry rejected the username or password'
              : sentAuth
                ? 'the registry rejected the token for this repository'
                : 'authentication required',
            { ...ctx, status: 401, errors: parseErrorBody(text) },
          );
        }
        throw errorFromStatus(res.status, spec.kind, ctx, text);
      }
      return res;
    }
  }
}
