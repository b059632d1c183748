import { readFile } from 'node:fs/promises';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { InvalidInputError } from '../errors/index.ts';
import { ProxyRouter, type ProxySettings, proxyFailure, proxySettingsFromEnv } from './proxy.ts';

/**
 * The HTTP transport under the registry client: one undici dispatcher (connection pool) with the
 * TLS trust the user asked for, HTTPS_PROXY/HTTP_PROXY/NO_PROXY (see `proxy.ts`), and per-request
 * timeouts. No auth, no retries here (see RegistryClient). Registries, token servers, chart
 * repositories and S3 all send their requests through it.
 */
export interface TransportOptions {
  /** PEM file(s) of CAs to trust in addition to the system roots (`--ca-file`). */
  caFile?: string | string[];
  /** PEM CA certificates in memory, in addition to the system roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Skip TLS certificate verification. Only when the user asked (`--insecure`). */
  insecure?: boolean;
  /**
   * Proxy: `'env'` (default) honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY; `'none'` connects
   * directly; a URL sends every request through that proxy (but for `noProxy`); settings give
   * the proxies explicitly.
   */
  proxy?: 'env' | 'none' | string | ProxySettings;
  /** Overrides NO_PROXY. */
  noProxy?: string;
  /** TCP+TLS connect timeout, ms (default 30 000). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers after the request went out, ms (default 60 000). */
  headersTimeoutMs?: number;
  /** Longest gap between two chunks of a response body, ms (default 60 000). */
  bodyTimeoutMs?: number;
  /** Longest time an upload body may make no progress (server not reading), ms (default 60 000). */
  uploadIdleTimeoutMs?: number;
  /** User-Agent header. */
  userAgent?: string;
  /** Use this dispatcher instead of building one (tests, shared pools). Not closed by close(). */
  dispatcher?: Dispatcher;
}

export const DEFAULT_USER_AGENT = 'lading/0.1';

export interface RawRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer | string | Readable;
  signal?: AbortSignal;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

/** An error with a code, raised when an upload makes no progress for too long. */
export class UploadStalledError extends Error {
  readonly code = 'LADING_UPLOAD_STALLED';
}

export class Transport {
  readonly options: TransportOptions;
  private dispatcherPromise: Promise<Dispatcher> | undefined;
  private owned: Dispatcher | undefined;

  constructor(options: TransportOptions = {}) {
    this.options = options;
  }

  get userAgent(): string {
    return this.options.userAgent ?? DEFAULT_USER_AGENT;
  }

  /** The dispatcher, built once (reads the CA files on first use). */
  dispatcher(): Promise<Dispatcher> {
    if (this.options.dispatcher) return Promise.resolve(this.options.dispatcher);
    this.dispatcherPromise ??= this.build();
    return this.dispatcherPromise;
  }

  private async build(): Promise<Dispatcher> {
    const o = this.options;
    const extra: Array<string | Buffer> = [];
    const files = o.caFile === undefined ? [] : Array.isArray(o.caFile) ? o.caFile : [o.caFile];
    for (const f of files) {
      try {
        extra.push(await readFile(f));
      } catch (err) {
        throw new InvalidInputError(`cannot read CA file ${f}: ${(err as Error).message}`, {
          hint: '--ca-file takes a PEM file with the registry CA certificate(s)',
          cause: err,
        });
      }
    }
    if (o.ca !== undefined) extra.push(...(Array.isArray(o.ca) ? o.ca : [o.ca]));
    const tls: Record<string, unknown> = {};
    if (extra.length > 0) tls.ca = [...rootCertificates, ...extra];
    if (o.insecure) tls.rejectUnauthorized = false;
    const common = {
      // HTTP/1.1 over a pool of connections. undici 8 negotiates HTTP/2 by default, and
      // Distribution's Go HTTP/2 server resets streams (ENHANCE_YOUR_CALM) under parallel
      // uploads; separate HTTP/1.1 connections also spread large uploads better.
      allowH2: false,
      connect: { ...tls, timeout: o.connectTimeoutMs ?? 30_000 },
      headersTimeout: o.headersTimeoutMs ?? 60_000,
      bodyTimeout: o.bodyTimeoutMs ?? 60_000,
      connectTimeout: o.connectTimeoutMs ?? 30_000,
    };
    const settings = this.proxySettings();
    const d: Dispatcher =
      settings === undefined
        ? new Agent(common)
        : new ProxyRouter({ settings, agent: common, requestTls: tls });
    this.owned = d;
    return d;
  }

  /** The proxy settings in force, or undefined when every connection is direct. */
  private proxySettings(): ProxySettings | undefined {
    const o = this.options;
    const proxy = o.proxy ?? 'env';
    if (proxy === 'none') return undefined;
    const s: ProxySettings =
      proxy === 'env'
        ? proxySettingsFromEnv()
        : typeof proxy === 'string'
          ? { httpProxy: proxy, httpsProxy: proxy }
          : { ...proxy };
    if (o.noProxy !== undefined) s.noProxy = o.noProxy;
    if (s.httpProxy === undefined && s.httpsProxy === undefined) return undefined;
    return s;
  }

  /**
   * One HTTP exchange. Throws the raw network error (the client maps it to a typed error), or a
   * ProxyError naming the proxy when the proxy could not be reached or refused the request.
   */
  async request(req: RawRequest): Promise<RawResponse> {
    const dispatcher = await this.dispatcher();
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    let body: RawRequest['body'] = req.body;
    let signal = req.signal;
    let watchdog: IdleWatchdog | undefined;
    if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      // A streamed upload: abort it when it makes no progress (the server stopped reading).
      const ctrl = new AbortController();
      watchdog = new IdleWatchdog(this.options.uploadIdleTimeoutMs ?? 60_000, ctrl);
      const src = body;
      src.on('error', (err) => watchdog?.destroy(err));
      body = src.pipe(watchdog);
      signal = signal ? AbortSignal.any([signal, ctrl.signal]) : ctrl.signal;
    }
    try {
      const res = await dispatcher.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: body ?? null,
        signal: signal ?? null,
        headersTimeout: this.options.headersTimeoutMs ?? 60_000,
        bodyTimeout: this.options.bodyTimeoutMs ?? 60_000,
      });
      return {
        status: res.statusCode,
        headers: res.headers as Record<string, string | string[] | undefined>,
        body: res.body,
        url: req.url,
      };
    } catch (err) {
      // The request failed: stop pulling from the body so nothing keeps reading the source.
      if (watchdog && req.body && typeof req.body !== 'string' && !Buffer.isBuffer(req.body)) {
        req.body.unpipe(watchdog);
        watchdog.destroy();
      }
      const proxy = dispatcher instanceof ProxyRouter ? dispatcher.proxyFor(req.url) : undefined;
      throw (proxy !== undefined ? proxyFailure(err, proxy, req.url) : undefined) ?? err;
    } finally {
      watchdog?.stop();
    }
  }

  /** Close the pool (when this transport built it). */
  async close(): Promise<void> {
    const d = this.owned;
    this.owned = undefined;
    this.dispatcherPromise = undefined;
    if (d) await d.close();
  }
}

/** Pass-through that aborts a request when no bytes moved for `ms`. */
class IdleWatchdog extends Transform {
  private timer: NodeJS.Timeout | undefined;
  private readonly ms: number;
  private readonly ctrl: AbortController;

  constructor(ms: number, ctrl: AbortController) {
    super();
    this.ms = ms;
    this.ctrl = ctrl;
    this.arm();
  }

  private arm(): void {
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => {
        this.ctrl.abort(new UploadStalledError(`no upload progress for ${this.ms} ms`));
      }, this.ms);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.arm();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.stop();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.stop();
    cb(err);
  }
}

/**
 * Read a small response body into memory, at most `limit` bytes: what arrived up to the limit,
 * and whether the body was longer (then it is destroyed, not read further). A body that fails
 * midway keeps what arrived when `keepOnError`, else the error is thrown.
 */
export async function readBodyLimited(
  body: Readable,
  limit: number,
  opts: { keepOnError?: boolean } = {},
): Promise<{ bytes: Buffer; overLimit: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  let overLimit = false;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      if (n + c.length > limit) {
        overLimit = true;
        chunks.push(c.subarray(0, limit - n));
        break;
      }
      n += c.length;
      chunks.push(c);
    }
  } catch (err) {
    if (!opts.keepOnError) throw err;
  }
  if (overLimit) {
    body.on('error', () => {});
    body.destroy();
  }
  return { bytes: Buffer.concat(chunks), overLimit };
}
