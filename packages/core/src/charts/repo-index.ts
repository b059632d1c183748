import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import semver from 'semver';
import type { Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import { asDigest, type Digest, VerifyingStream } from '../digest/index.ts';
import { AbortedError, InvalidInputError } from '../errors/index.ts';
import { isTlsFailure, ProxyError, type RawResponse, readBodyLimited, Transport } from '../registry/index.ts';

const MiB = 1024 * 1024;

import {
  ChartNotFoundError,
  ChartRepoAuthError,
  ChartRepoError,
  ChartRepoTLSError,
  InvalidVersionConstraintError,
  UnsafeArchiveError,
} from './errors.ts';

/** Where a Helm HTTP chart repository is and how to reach it. */
export interface ChartRepoOptions {
  /** The repository URL (the folder holding index.yaml), e.g. https://charts.example.com/stable. */
  url: string;
  username?: string;
  password?: string;
  /**
   * Send the credentials to archive URLs on other hosts too (Helm's --pass-credentials).
   * By default they go only to the repository's own origin.
   */
  passCredentials?: boolean;
  /** PEM file(s) of CA certificates trusted in addition to the system ones. */
  caFile?: string | string[];
  /** Skip TLS verification. Only when explicitly asked for. */
  insecure?: boolean;
  /**
   * The HTTP transport (the registry client's: TLS trust, proxies, timeouts). By default one is
   * built from caFile/insecure and the proxy environment, and closed after the request.
   */
  transport?: Transport;
  /** Use this dispatcher instead of building one (tests). */
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/** One version of a chart in index.yaml. */
export interface ChartVersionEntry {
  name: string;
  version: string;
  urls: string[];
  /** sha256 hex of the archive, when the index gives it. */
  digest?: string;
  created?: string;
  appVersion?: string;
  description?: string;
  deprecated?: boolean;
  annotations?: Record<string, string>;
}

export interface RepoIndex {
  apiVersion: string;
  /** The repository URL the index was read from (credentials removed). */
  url: string;
  generated?: string;
  /** Chart name → versions, as listed. */
  entries: Record<string, ChartVersionEntry[]>;
}

/** index.yaml of big public repositories reaches tens of MiB; above this it is refused. */
export const MAX_INDEX_BYTES = 64 * MiB;
/** Default largest chart archive downloaded. */
export const MAX_CHART_ARCHIVE_BYTES = 100 * MiB;

const REDIRECTS = 5;

interface Prepared {
  base: URL;
  display: string;
  auth: string | undefined;
  passCredentials: boolean;
  transport: Transport;
  /** Closes the transport when we built it (the caller's is left alone). */
  close(): void;
}

function prepare(opts: ChartRepoOptions): Prepared {
  let base: URL;
  try {
    base = new URL(opts.url);
  } catch {
    throw new InvalidInputError(`invalid chart repository URL "${opts.url}"`, {
      hint: 'write it as https://host/path (the folder that holds index.yaml)',
    });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InvalidInputError(`chart repository URL "${opts.url}" is not http(s)`, {
      hint: 'HTTP chart repositories use http:// or https://; OCI registries use oci://',
    });
  }
  let username = opts.username;
  let password = opts.password;
  if (base.username || base.password) {
    username ??= decodeURIComponent(base.username);
    password ??= decodeURIComponent(base.password);
    base.username = '';
    base.password = '';
  }
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  base.search = '';
  base.hash = '';
  const auth =
    username !== undefined || password !== undefined
      ? `Basic ${Buffer.from(`${username ?? ''}:${password ?? ''}`).toString('base64')}`
      : undefined;
  const own = opts.transport
    ? undefined
    : new Transport({
        ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
        ...(opts.insecure ? { insecure: true } : {}),
        ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
      });
  const transport = opts.transport ?? (own as Transport);
  const close = (): void => {
    own?.close().catch(() => {});
  };
  return {
    base,
    display: base.href.replace(/\/$/, ''),
    auth,
    passCredentials: opts.passCredentials === true,
    transport,
    close,
  };
}

/** A typed error for a failed request to the repository. */
function networkError(display: string, what: string, err: unknown, signal?: AbortSignal): Error {
  if (err instanceof ChartRepoError || err instanceof AbortedError || err instanceof ProxyError) return err;
  if (err instanceof InvalidInputError) return err;
  if (signal?.aborted || (err as Error)?.name === 'AbortError') {
    return new AbortedError(`${what}: aborted`, { cause: err });
  }
  const code = (err as { code?: string }).code;
  if (isTlsFailure(err)) {
    return new ChartRepoTLSError(
      display,
      `${what}: TLS failed (${code ? `${code}: ` : ''}${(err as Error).message})`,
      {
        cause: err,
        hint: 'the repository certificate is not trusted: pass the CA that signed it (caFile / --ca-file); use insecure only to test',
      },
    );
  }
  return new ChartRepoError(display, `${what}: ${(err as Error).message}${code ? ` (${code})` : ''}`, {
    cause: err,
    hint: 'check the URL, the network, and the proxy settings (HTTPS_PROXY, NO_PROXY)',
  });
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

async function get(
  p: Prepared,
  first: URL,
  what: string,
  signal: AbortSignal | undefined,
): Promise<RawResponse> {
  let url = first;
  let res: RawResponse;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { accept: '*/*' };
    // Credentials go to the repository's own origin, elsewhere only with passCredentials.
    if (p.auth && (p.passCredentials || url.origin === p.base.origin)) headers.authorization = p.auth;
    try {
      res = await p.transport.request({ method: 'GET', url, headers, ...(signal ? { signal } : {}) });
    } catch (err) {
      throw networkError(p.display, what, err, signal);
    }
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(res.status) || typeof location !== 'string') break;
    discard(res.body);
    if (hop >= REDIRECTS) {
      throw new ChartRepoError(p.display, `${what}: more than ${REDIRECTS} redirects`, {
        status: res.status,
      });
    }
    url = new URL(location, url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ChartRepoError(p.display, `${what}: redirected to a non-HTTP URL ${url.protocol}`);
    }
  }
  if (res.status >= 200 && res.status < 300) return res;
  res.body.resume();
  if (res.status === 401 || res.status === 403) {
    throw new ChartRepoAuthError(
      p.display,
      `${what}: ${res.status === 401 ? 'authentication required or refused' : 'access denied'} (HTTP ${res.status})`,
      {
        status: res.status,
        hint: p.auth
          ? 'the username or password is wrong, or the account may not read this repository'
          : 'the repository needs credentials: give a username and password',
      },
    );
  }
  throw new ChartRepoError(p.display, `${what}: HTTP ${res.status}`, {
    status: res.status,
    hint:
      res.status === 404 ? 'check the repository URL (it is the folder that holds index.yaml)' : undefined,
  });
}

/** Drop a response body we no longer want (destroying it must not raise an unhandled error). */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** Parse index.yaml text (apiVersion v1). Versions without a version or urls are dropped. */
export function parseRepoIndex(text: string, url: string): RepoIndex {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 1000 });
  } catch (err) {
    throw new ChartRepoError(url, `index.yaml is not valid YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null)
    throw new ChartRepoError(url, 'index.yaml is not a YAML mapping');
  const y = doc as Record<string, unknown>;
  const apiVersion = str(y.apiVersion);
  if (apiVersion !== 'v1') {
    throw new ChartRepoError(url, `index.yaml has apiVersion ${apiVersion ?? '(none)'}, expected v1`);
  }
  const entries: Record<string, ChartVersionEntry[]> = {};
  const raw = y.entries;
  if (typeof raw === 'object' && raw !== null) {
    for (const [name, list] of Object.entries(raw as Record<string, unknown>)) {
      if (!Array.isArray(list)) continue;
      const out: ChartVersionEntry[] = [];
      for (const item of list) {
        if (typeof item !== 'object' || item === null) continue;
        const e = item as Record<string, unknown>;
        const version = str(e.version);
        const urls = Array.isArray(e.urls) ? e.urls.filter((u): u is string => typeof u === 'string') : [];
        if (!version || urls.length === 0) continue;
        const entry: ChartVersionEntry = { name: str(e.name) ?? name, version, urls };
        const digest = str(e.digest);
        if (digest) entry.digest = digest;
        const created =
          typeof e.created === 'string'
            ? e.created
            : e.created instanceof Date
              ? e.created.toISOString()
              : undefined;
        if (created) entry.created = created;
        const appVersion = str(e.appVersion);
        if (appVersion) entry.appVersion = appVersion;
        const description = str(e.description);
        if (description) entry.description = description;
        if (e.deprecated === true) entry.deprecated = true;
        if (typeof e.annotations === 'object' && e.annotations !== null) {
          const ann: Record<string, string> = {};
          for (const [k, v] of Object.entries(e.annotations as Record<string, unknown>)) {
            const s = str(v);
            if (s !== undefined) ann[k] = s;
          }
          entry.annotations = ann;
        }
        out.push(entry);
      }
      entries[name] = out;
    }
  }
  const index: RepoIndex = { apiVersion, url, entries };
  const generated = str(y.generated) ?? (y.generated instanceof Date ? y.generated.toISOString() : undefined);
  if (generated) index.generated = generated;
  return index;
}

/** Fetch and parse `<repo>/index.yaml`. */
export async function fetchRepoIndex(
  opts: ChartRepoOptions & { maxIndexBytes?: number },
): Promise<RepoIndex> {
  const p = prepare(opts);
  const url = new URL('index.yaml', p.base);
  let body: Buffer;
  try {
    const res = await get(p, url, 'GET index.yaml', opts.signal);
    const limit = opts.maxIndexBytes ?? MAX_INDEX_BYTES;
    const read = await readBodyLimited(res.body, limit);
    if (read.overLimit) throw new ChartRepoError(p.display, `index.yaml is larger than ${limit} bytes`);
    body = read.bytes;
  } catch (err) {
    throw networkError(p.display, 'reading index.yaml', err, opts.signal);
  } finally {
    p.close();
  }
  return parseRepoIndex(body.toString('utf8'), p.display);
}

function compareVersionsDesc(a: string, b: string): number {
  const va = semver.valid(a, { loose: true });
  const vb = semver.valid(b, { loose: true });
  if (va && vb) return semver.rcompare(va, vb, true);
  if (va) return -1;
  if (vb) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SelectOptions {
  /** Consider prerelease versions when matching a range (an exact prerelease version always matches). */
  includePrerelease?: boolean;
  /** For error messages; default: the entries' name. */
  chart?: string;
  /** For error messages: the repository URL. */
  repo?: string;
}

/**
 * Pick a version: an exact version (string-equal, or semver-equal), else the highest version that
 * satisfies the semver range; empty, `*` and `latest` mean the highest stable version. Prereleases
 * only when asked for (or named exactly).
 *
 * @throws ChartNotFoundError naming chart, constraint, repository and the versions available
 * @throws InvalidVersionConstraintError when the constraint is neither a version nor a range
 */
export function selectVersion(
  entries: readonly ChartVersionEntry[],
  constraint: string | undefined,
  opts: SelectOptions = {},
): ChartVersionEntry {
  const chart = opts.chart ?? entries[0]?.name ?? '(unknown chart)';
  const repo = opts.repo ?? '(repository)';
  const wanted = (constraint ?? '').trim();
  const available = [...new Set(entries.map((e) => e.version))].sort(compareVersionsDesc);
  const notFound = () => new ChartNotFoundError(chart, wanted || '*', repo, available);
  if (wanted !== '') {
    const exact = entries.find((e) => e.version === wanted);
    if (exact) return exact;
    const v = semver.valid(wanted, { loose: true });
    if (v) {
      const eq = entries.find((e) => {
        const ev = semver.valid(e.version, { loose: true });
        return ev !== null && semver.eq(ev, v, true);
      });
      if (eq) return eq;
      throw notFound();
    }
  }
  const range = wanted === '' || wanted === 'latest' ? '*' : wanted;
  if (semver.validRange(range, { loose: true }) === null) {
    throw new InvalidVersionConstraintError(wanted, chart);
  }
  const byVersion = new Map<string, ChartVersionEntry>();
  for (const e of entries) {
    const v = semver.valid(e.version, { loose: true });
    if (v && !byVersion.has(v)) byVersion.set(v, e);
  }
  const best = semver.maxSatisfying([...byVersion.keys()], range, {
    loose: true,
    includePrerelease: opts.includePrerelease ?? false,
  });
  if (!best) throw notFound();
  return byVersion.get(best) as ChartVersionEntry;
}

/** Find a chart in an index and select its version (see `selectVersion`). */
export function findChartVersion(
  index: RepoIndex,
  chart: string,
  constraint: string | undefined,
  opts: Omit<SelectOptions, 'chart' | 'repo'> = {},
): ChartVersionEntry {
  const list = index.entries[chart] ?? [];
  if (list.length === 0) throw new ChartNotFoundError(chart, constraint || '*', index.url, []);
  return selectVersion(list, constraint, { ...opts, chart, repo: index.url });
}

/** The archive URL of an entry, relative URLs resolved against the repository URL. */
export function chartArchiveUrl(repoUrl: string, entry: ChartVersionEntry): URL {
  const base = new URL(repoUrl);
  base.username = '';
  base.password = '';
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const first = entry.urls[0];
  if (!first) throw new ChartRepoError(repoUrl, `chart ${entry.name} ${entry.version} lists no archive URL`);
  return new URL(first, base);
}

class SizeLimit extends Transform {
  private seen = 0;
  private readonly limit: number;
  private readonly source: string;
  constructor(limit: number, source: string) {
    super();
    this.limit = limit;
    this.source = source;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      cb(
        new UnsafeArchiveError(
          this.source,
          'total-too-large',
          `the download is larger than ${this.limit} bytes`,
        ),
      );
      return;
    }
    cb(null, chunk);
  }
}

export interface DownloadOptions {
  /** Largest archive accepted (default 100 MiB). */
  maxSize?: number;
  signal?: AbortSignal;
}

export interface ChartDownload {
  /** The archive bytes, streamed; fails with DigestMismatchError at the end when the digest differs. */
  stream: Readable;
  url: string;
  /** `sha256:<hex>` from the index, when it gives one. */
  expected: Digest | undefined;
}

/**
 * Download a chart archive, streamed, size-limited, and verified against the index's `digest`
 * (sha256 hex) as it flows. Credentials go only to the repository's own origin unless
 * `passCredentials` is set.
 */
export async function downloadChart(
  repo: ChartRepoOptions,
  entry: ChartVersionEntry,
  opts: DownloadOptions = {},
): Promise<ChartDownload> {
  const p = prepare(repo);
  const url = chartArchiveUrl(p.base.href, entry);
  const signal = opts.signal ?? repo.signal;
  const limit = opts.maxSize ?? MAX_CHART_ARCHIVE_BYTES;
  const what = `GET ${entry.name}-${entry.version} (${url.href})`;
  let res: RawResponse;
  try {
    res = await get(p, url, what, signal);
  } catch (err) {
    p.close();
    throw err;
  }
  const length = Number(res.headers['content-length']);
  if (Number.isFinite(length) && length > limit) {
    discard(res.body);
    p.close();
    throw new UnsafeArchiveError(
      url.href,
      'total-too-large',
      `the archive is ${length} bytes, more than ${limit}`,
    );
  }
  let expected: Digest | undefined;
  if (entry.digest) {
    const d = entry.digest.includes(':') ? entry.digest : `sha256:${entry.digest.toLowerCase()}`;
    try {
      expected = asDigest(d);
    } catch {
      discard(res.body);
      p.close();
      throw new ChartRepoError(
        p.display,
        `index.yaml gives ${entry.name} ${entry.version} an invalid digest "${entry.digest}"`,
      );
    }
  }
  const limiter = new SizeLimit(limit, url.href);
  res.body.on('error', (err) => limiter.destroy(networkError(p.display, what, err, signal)));
  limiter.on('error', () => discard(res.body));
  let stream: Readable = res.body.pipe(limiter);
  if (expected) {
    const verify = new VerifyingStream({ digest: expected }, url.href);
    limiter.on('error', (err) => verify.destroy(err));
    stream = limiter.pipe(verify);
  }
  stream.once('close', () => p.close());
  return { stream, url: url.href, expected };
}

/** `downloadChart`, collected into memory (archives are bounded by `maxSize`). */
export async function downloadChartBytes(
  repo: ChartRepoOptions,
  entry: ChartVersionEntry,
  opts: DownloadOptions = {},
): Promise<{ bytes: Buffer; url: string; expected: Digest | undefined }> {
  const d = await downloadChart(repo, entry, opts);
  const chunks: Buffer[] = [];
  await pipeline(d.stream, async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) chunks.push(c);
  });
  return { bytes: Buffer.concat(chunks), url: d.url, expected: d.expected };
}

/**
 * What a chart version in a spec is: `exact` (a semver version, `6.7.1`), `range` (`^18.1.0`,
 * `~1.2`, `>=1 <2`, `*`), or undefined when it is neither.
 */
export function classifyVersionConstraint(value: string): 'exact' | 'range' | undefined {
  const s = value.trim();
  if (s === '') return undefined;
  if (semver.valid(s, { loose: true }) !== null) return 'exact';
  if (semver.validRange(s, { loose: true }) !== null) return 'range';
  return undefined;
}
