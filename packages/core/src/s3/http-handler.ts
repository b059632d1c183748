import type { Readable } from 'node:stream';
import { Transport, type TransportOptions } from '../registry/index.ts';

/**
 * The AWS SDK's HTTP handler, sending S3 requests through Lading's one HTTP transport (the
 * registry client's): the same proxies (HTTPS_PROXY/HTTP_PROXY/NO_PROXY with CIDR), TLS trust
 * and timeouts as every other outbound connection. It implements the small contract of
 * `@smithy/node-http-handler`: `handle(request) → { response }` with the body as a stream.
 */

/** What the SDK hands a request handler (`@smithy/protocol-http` HttpRequest, structurally). */
interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  fragment?: string;
  headers: Record<string, string>;
  body?: unknown;
}

interface SdkAbortSignal {
  aborted: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: the SDK's own AbortSignal or the DOM's
  onabort?: any;
}

/** Request headers undici sets itself or refuses (the SDK adds `Expect: 100-continue`). */
const DROPPED = new Set(['expect', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function queryString(query: SdkRequest['query']): string {
  const parts: string[] = [];
  for (const key of Object.keys(query ?? {}).sort()) {
    const value = query?.[key];
    if (value === null || value === undefined) parts.push(uriEscape(key));
    else if (Array.isArray(value)) for (const v of value) parts.push(`${uriEscape(key)}=${uriEscape(v)}`);
    else parts.push(`${uriEscape(key)}=${uriEscape(value)}`);
  }
  return parts.join('&');
}

function bodyOf(body: unknown): Buffer | string | Readable | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return body as Readable;
}

function signalOf(s: SdkAbortSignal | undefined): AbortSignal | undefined {
  if (s === undefined) return undefined;
  if (s instanceof AbortSignal) return s;
  const ctrl = new AbortController();
  if (s.aborted) ctrl.abort();
  else {
    const listen = (s as { addEventListener?: unknown }).addEventListener;
    if (typeof listen === 'function') listen.call(s, 'abort', () => ctrl.abort(), { once: true });
    else s.onabort = () => ctrl.abort();
  }
  return ctrl.signal;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export class S3HttpHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  private readonly transport: Transport;

  constructor(options: TransportOptions = {}) {
    this.transport = new Transport(options);
  }

  async handle(
    request: SdkRequest,
    opts: { abortSignal?: SdkAbortSignal } = {},
  ): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: Readable } }> {
    const q = queryString(request.query);
    const host =
      request.hostname.includes(':') && !request.hostname.startsWith('[')
        ? `[${request.hostname}]`
        : request.hostname;
    const url = new URL(
      `${request.protocol.replace(/:?$/, ':')}//${host}${request.port ? `:${request.port}` : ''}${request.path}${q ? `?${q}` : ''}`,
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) {
      if (!DROPPED.has(k.toLowerCase())) headers[k] = v;
    }
    const body = bodyOf(request.body);
    const signal = signalOf(opts.abortSignal);
    let res: Awaited<ReturnType<Transport['request']>>;
    try {
      res = await this.transport.request({
        method: request.method,
        url,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      // The SDK's retry strategy knows Node's network codes and `TimeoutError`, not undici's.
      const code = (err as { code?: string }).code;
      if (code !== undefined && TIMEOUT_CODES.has(code)) (err as Error).name = 'TimeoutError';
      if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
        throw Object.assign(new Error((err as Error).message, { cause: err }), { code: 'ECONNRESET' });
      }
      throw err;
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) {
      if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    return { response: { statusCode: res.status, headers: out, body: res.body } };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.transport.close().catch(() => {});
  }
}
