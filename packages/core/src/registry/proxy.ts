import { BlockList, isIP } from 'node:net';
import { Agent, Dispatcher, ProxyAgent } from 'undici';
import { RemoteError } from '../errors/index.ts';

/**
 * Forward proxies for every outbound connection (registries, token servers, chart repositories,
 * S3): `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, lower case taking precedence over upper case
 * as curl does. NO_PROXY takes host names (`example.com` also matches its subdomains,
 * `.example.com` and `*.example.com` too), `host:port`, IP addresses, CIDR ranges
 * (`10.0.0.0/8`, `fd00::/8`) and `*`. Loopback is not special: `127.0.0.1` and `localhost` go
 * through the proxy unless NO_PROXY names them, as with curl.
 */
export interface ProxySettings {
  /** Proxy for http:// URLs. */
  httpProxy?: string;
  /** Proxy for https:// URLs (falls back to httpProxy). */
  httpsProxy?: string;
  /** Comma- or space-separated NO_PROXY list. */
  noProxy?: string;
}

/** The proxy settings of an environment (default: this process's). Empty values mean unset. */
export function proxySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ProxySettings {
  const pick = (name: string): string | undefined => {
    const v = env[name.toLowerCase()] ?? env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const out: ProxySettings = {};
  const http = pick('HTTP_PROXY');
  const https = pick('HTTPS_PROXY');
  const no = pick('NO_PROXY');
  if (http !== undefined) out.httpProxy = http;
  if (https !== undefined) out.httpsProxy = https;
  if (no !== undefined) out.noProxy = no;
  return out;
}

/** A proxy URL for messages: the credentials replaced by `***`. */
export function redactProxyUrl(proxy: string): string {
  try {
    const u = new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.href.replace(/\/$/, '');
  } catch {
    return '(invalid proxy URL)';
  }
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

interface HostRule {
  host: string;
  port: number;
  /** `*.example.com`: subdomains only. */
  subOnly: boolean;
}

/** A parsed NO_PROXY list. */
export class NoProxy {
  private readonly all: boolean;
  private readonly hosts: HostRule[] = [];
  private readonly ranges = new BlockList();
  private hasRanges = false;

  constructor(value: string | undefined) {
    let all = false;
    for (const raw of (value ?? '').split(/[,\s]+/)) {
      const entry = raw.trim().toLowerCase();
      if (entry === '') continue;
      if (entry === '*') {
        all = true;
        continue;
      }
      const cidr = /^\[?([0-9a-f:.]+)\]?\/(\d{1,3})$/.exec(entry);
      if (cidr) {
        const family = isIP(cidr[1] as string);
        const bits = Number(cidr[2]);
        if (family !== 0 && bits <= (family === 4 ? 32 : 128)) {
          this.ranges.addSubnet(cidr[1] as string, bits, family === 4 ? 'ipv4' : 'ipv6');
          this.hasRanges = true;
        }
        continue;
      }
      let host = entry;
      let port = 0;
      const v6port = /^\[(.+)\]:(\d+)$/.exec(entry);
      const hostPort = /^([^:]+):(\d+)$/.exec(entry);
      if (v6port) {
        host = v6port[1] as string;
        port = Number(v6port[2]);
      } else if (hostPort) {
        host = hostPort[1] as string;
        port = Number(hostPort[2]);
      } else host = entry.replace(/^\[(.+)\]$/, '$1');
      const subOnly = host.startsWith('*.');
      host = host.replace(/^\*?\./, '').replace(/\.$/, '');
      if (host !== '') this.hosts.push({ host, port, subOnly });
    }
    this.all = all;
  }

  /** Whether a request to `url` goes direct. */
  bypasses(url: URL): boolean {
    if (this.all) return true;
    const host = url.hostname
      .replace(/^\[(.+)\]$/, '$1')
      .replace(/\.$/, '')
      .toLowerCase();
    const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 0;
    for (const r of this.hosts) {
      if (r.port !== 0 && r.port !== port) continue;
      if (!r.subOnly && host === r.host) return true;
      if (host.endsWith(`.${r.host}`)) return true;
    }
    if (this.hasRanges) {
      const family = isIP(host);
      if (family !== 0 && this.ranges.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
    }
    return false;
  }
}

/** A connection to or through a proxy failed: the proxy is unreachable or refused the request. */
export class ProxyError extends RemoteError {
  override readonly code: string = 'PROXY_FAILED';
  /** The proxy URL without credentials. */
  readonly proxy: string;
  constructor(proxy: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, {
      hint:
        options.hint ??
        'check HTTPS_PROXY / HTTP_PROXY (is the proxy running and reachable?), or list the host in NO_PROXY',
      cause: options.cause,
    });
    this.proxy = proxy;
  }
}

/** Network error codes that mean the proxy itself could not be reached or used. */
const PROXY_CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_PRX_TLS',
]);

function codeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_ABORTED') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A ProxyError when `err`, raised by a request sent through `proxy` to `target`, is the proxy's
 * failure (cannot connect to it, or it refused the tunnel); undefined otherwise.
 */
export function proxyFailure(err: unknown, proxy: string, target: URL): ProxyError | undefined {
  if (err instanceof ProxyError) return err;
  const shown = redactProxyUrl(proxy);
  const msg = (err as Error | undefined)?.message ?? String(err);
  const tunnel = /^Proxy response \((\d+)\)/.exec(msg);
  if (tunnel) {
    const status = Number(tunnel[1]);
    return new ProxyError(shown, `the proxy ${shown} refused to connect to ${target.host} (HTTP ${status})`, {
      cause: err,
      hint:
        status === 407
          ? 'the proxy wants credentials: put them in the proxy URL (http://user:password@proxy:port)'
          : 'the proxy may not allow this host or port; check its access rules, or list the host in NO_PROXY',
    });
  }
  const code = codeOf(err);
  if (code !== undefined && PROXY_CONNECT_CODES.has(code)) {
    return new ProxyError(shown, `cannot connect to the proxy ${shown} (${code}) for ${target.origin}`, {
      cause: err,
    });
  }
  return undefined;
}

export interface ProxyRouterOptions {
  settings: ProxySettings;
  /** Options of every agent (pool, timeouts, `connect` TLS of direct connections). */
  agent: Agent.Options;
  /** TLS options for the target when tunnelled through a proxy. */
  requestTls?: Record<string, unknown>;
}

/**
 * A dispatcher that sends each request direct or through the proxy its URL calls for (see
 * `ProxySettings`): one pooled agent per route.
 */
export class ProxyRouter extends Dispatcher {
  private readonly settings: ProxySettings;
  private readonly noProxy: NoProxy;
  private readonly options: ProxyRouterOptions;
  private direct: Agent | undefined;
  private readonly proxied = new Map<string, ProxyAgent>();

  constructor(options: ProxyRouterOptions) {
    super();
    this.options = options;
    this.settings = options.settings;
    this.noProxy = new NoProxy(options.settings.noProxy);
  }

  /** The proxy URL (with credentials) a request to `url` goes through, or undefined for direct. */
  proxyFor(url: URL): string | undefined {
    const proxy =
      url.protocol === 'https:'
        ? (this.settings.httpsProxy ?? this.settings.httpProxy)
        : url.protocol === 'http:'
          ? this.settings.httpProxy
          : undefined;
    if (proxy === undefined || this.noProxy.bypasses(url)) return undefined;
    return proxy.includes('://') ? proxy : `http://${proxy}`;
  }

  private agentFor(url: URL): Dispatcher {
    const proxy = this.proxyFor(url);
    if (proxy === undefined) {
      this.direct ??= new Agent(this.options.agent);
      return this.direct;
    }
    let a = this.proxied.get(proxy);
    if (!a) {
      const o = this.options.agent;
      a = new ProxyAgent({
        ...o,
        uri: proxy,
        ...(this.options.requestTls ? { requestTls: this.options.requestTls } : {}),
      });
      this.proxied.set(proxy, a);
    }
    return a;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = typeof opts.origin === 'string' ? new URL(opts.origin) : (opts.origin as URL);
    return this.agentFor(origin).dispatch(opts, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const p = Promise.all(this.all().map((a) => a.close())).then(() => undefined);
    if (callback) {
      p.then(callback, callback);
      return;
    }
    return p;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const p = Promise.all(this.all().map((d) => d.destroy(err))).then(() => undefined);
    if (callback) {
      p.then(callback, callback);
      return;
    }
    return p;
  }

  private all(): Dispatcher[] {
    return [...(this.direct ? [this.direct] : []), ...this.proxied.values()];
  }
}
