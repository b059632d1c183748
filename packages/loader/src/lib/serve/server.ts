import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import {
  type BundleTarget,
  type Descriptor,
  type Digest,
  InvalidInputError,
  isDigest,
  isIndexType,
  RemoteError,
} from '@lading/core';
import { ServeCatalog, type ServedManifest, type ServedRepository } from './catalog.ts';

/**
 * A read-only OCI Distribution endpoint over a bundle (distribution-spec "pull" and
 * "content discovery" categories): `GET /v2/`, manifests by tag or digest, blobs with Range,
 * tags list and catalog with `n`/`last` pagination. Every mutating method answers 405
 * UNSUPPORTED. Blobs stream from the tar by byte range; nothing is extracted.
 */

export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';

export interface ServeAddress {
  host: string;
  port: number;
}

export class ServeAddressError extends InvalidInputError {
  override readonly code = 'INVALID_ADDRESS';
}

export class ServeListenError extends RemoteError {
  override readonly code = 'LISTEN_FAILED';
}

/** `HOST:PORT`, `[::1]:PORT` or `:PORT` (all interfaces). */
export function parseServeAddress(value: string): ServeAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new ServeAddressError(`--address "${value}" is not HOST:PORT`, {
      hint: 'e.g. 127.0.0.1:5000, 0.0.0.0:5000 (every interface) or [::1]:5000',
    });
  }
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

export interface ServeStats {
  requests: number;
  /** Body bytes sent (manifests and blobs). */
  bytes: number;
  manifests: number;
  blobs: number;
}

export class ServeTlsError extends InvalidInputError {
  override readonly code = 'INVALID_TLS_FILES';
}

/** TLS for `serve`: the site's certificate (PEM chain) and key, and optionally the CA of accepted client certificates. */
export interface ServeTls {
  cert: string;
  key: string;
  /** mTLS: only clients with a certificate this CA signed are served. */
  clientCa?: string;
}

export interface ServeOptions {
  /** Called once per finished request (method, path, status) — for logs. */
  onRequest?: (r: { method: string; path: string; status: number; bytes: number }) => void;
  /** Serve HTTPS (TLS 1.2+) instead of plain HTTP. */
  tls?: ServeTls;
}

/** Read `--tls-cert`, `--tls-key` and `--client-ca` (PEM files); a missing or unreadable file is exit 2 naming it. */
export async function readServeTls(files: {
  cert: string;
  key: string;
  clientCa?: string | undefined;
}): Promise<ServeTls> {
  const read = async (path: string, flag: string, what: string): Promise<string> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new ServeTlsError(
        `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        {
          hint: `give the path of ${what} in PEM format`,
        },
      );
    }
    if (!text.includes('-----BEGIN ')) {
      throw new ServeTlsError(`${flag} ${path} is not a PEM file`, {
        hint: `give ${what} in PEM format (-----BEGIN …)`,
      });
    }
    return text;
  };
  const tls: ServeTls = {
    cert: await read(files.cert, '--tls-cert', 'the server certificate (with its intermediates)'),
    key: await read(files.key, '--tls-key', "the certificate's private key"),
  };
  if (files.clientCa)
    tls.clientCa = await read(files.clientCa, '--client-ca', 'the CA certificate of the clients');
  return tls;
}

export interface BundleRegistry {
  catalog: ServeCatalog;
  server: Server;
  /** `http://host:port` (`https://` with TLS) as bound (the real port when 0 was asked for). */
  url: string;
  address: ServeAddress;
  stats: ServeStats;
  /** Stop accepting, end open connections, wait for the server to close. */
  close(): Promise<void>;
}

interface ApiError {
  code: string;
  message: string;
  detail?: unknown;
}

function sendError(res: ServerResponse, status: number, err: ApiError, head = false): void {
  const body = Buffer.from(`${JSON.stringify({ errors: [err] })}\n`);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, value: unknown, head: boolean): number {
  const body = Buffer.from(`${JSON.stringify(value)}\n`);
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  res.end(head ? undefined : body);
  return head ? 0 : body.length;
}

/** The media types an Accept header allows; undefined means anything (absent, or a wildcard). */
export function acceptedTypes(header: string | string[] | undefined): Set<string> | undefined {
  if (header === undefined) return undefined;
  const all = (Array.isArray(header) ? header : [header])
    .flatMap((h) => h.split(','))
    .map((t) => (t.split(';')[0] ?? '').trim().toLowerCase())
    .filter((t) => t !== '');
  if (all.length === 0 || all.some((t) => t === '*/*' || t === 'application/*')) return undefined;
  return new Set(all);
}

/** Parse a single `bytes=` range against a size; 'unsatisfiable', or undefined to serve it whole. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: RFC 9110 lets a server ignore Range and send it all.
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const last = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (last < start) return 'unsatisfiable';
  return { start, end: last + 1 };
}

/** `n`/`last` pagination over a sorted list, with the Link header of the next page. */
function paginate(url: URL, items: string[], res: ServerResponse): { page: string[] } | { error: ApiError } {
  const nText = url.searchParams.get('n');
  const last = url.searchParams.get('last');
  let start = 0;
  if (last !== null) {
    start = items.findIndex((t) => t > last);
    if (start < 0) start = items.length;
  }
  if (nText === null) return { page: items.slice(start) };
  if (!/^\d+$/.test(nText)) {
    return {
      error: {
        code: 'PAGINATION_NUMBER_INVALID',
        message: 'invalid number of results requested',
        detail: { n: nText },
      },
    };
  }
  const n = Number(nText);
  const page = items.slice(start, start + n);
  if (n > 0 && start + n < items.length && page.length > 0) {
    const next = new URL(url.pathname, 'http://x');
    next.searchParams.set('n', String(n));
    next.searchParams.set('last', page[page.length - 1] as string);
    res.setHeader('Link', `<${next.pathname}${next.search}>; rel="next"`);
  }
  return { page };
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Build the catalog and start listening. Close it when done (the bundle stays open). */
export async function startBundleRegistry(
  target: BundleTarget,
  address: ServeAddress,
  opts: ServeOptions & { signal?: AbortSignal } = {},
): Promise<BundleRegistry> {
  const catalog = await ServeCatalog.build(target, opts.signal ? { signal: opts.signal } : {});
  const stats: ServeStats = { requests: 0, bytes: 0, manifests: 0, blobs: 0 };
  const handler = makeHandler(catalog, stats, opts);
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        sendError(res, 500, { code: 'UNKNOWN', message: (err as Error).message ?? String(err) });
      } else {
        res.destroy(err as Error);
      }
    });
  };
  const server: Server = opts.tls ? tlsServer(opts.tls, listener) : createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ServeListenError(`cannot listen on ${address.host}:${address.port}: ${err.message}`, {
          hint:
            err.code === 'EADDRINUSE'
              ? 'the port is in use; pick another with --address HOST:PORT'
              : 'check the address (--address HOST:PORT) and your permissions',
          cause: err,
        }),
      ),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  let closed: Promise<void> | undefined;
  return {
    catalog,
    server,
    stats,
    address: { host: bound.address, port: bound.port },
    url: `${opts.tls ? 'https' : 'http'}://${host}:${bound.port}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // In-flight blob downloads are cut: the client retries or resumes with Range.
        setTimeout(() => server.closeAllConnections(), 200).unref();
      });
      return closed;
    },
  };
}

function tlsServer(tls: ServeTls, listener: (req: IncomingMessage, res: ServerResponse) => void): Server {
  try {
    return createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        minVersion: 'TLSv1.2',
        // HTTP/1.1 only, like the plain server (ALPN would otherwise be empty anyway).
        ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
      },
      listener,
    );
  } catch (err) {
    throw new ServeTlsError(`--tls-cert and --tls-key cannot be used: ${(err as Error).message}`, {
      hint: 'the key must be the private key of the certificate, both PEM; --client-ca must hold a CA certificate',
    });
  }
}

function makeHandler(
  catalog: ServeCatalog,
  stats: ServeStats,
  opts: ServeOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    stats.requests++;
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://serve.invalid');
    let path = url.pathname;
    let sent = 0;
    res.once('finish', () => opts.onRequest?.({ method, path, status: res.statusCode, bytes: sent }));
    res.setHeader(API_VERSION_HEADER, 'registry/2.0');
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      sendError(res, 400, { code: 'NAME_INVALID', message: 'malformed path' });
      return;
    }
    if (MUTATING.has(method)) {
      res.setHeader('Allow', 'GET, HEAD');
      sendError(res, 405, {
        code: 'UNSUPPORTED',
        message: 'the registry is read-only: lading-load serve only serves the bundle',
        detail: { method, path },
      });
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendError(res, 405, { code: 'UNSUPPORTED', message: `method ${method} is not supported` });
      return;
    }
    const head = method === 'HEAD';
    if (path === '/v2/' || path === '/v2') {
      sent = sendJson(res, {}, head);
      return;
    }
    if (path === '/v2/_catalog') {
      const p = paginate(url, catalog.names(), res);
      if ('error' in p) return sendError(res, 400, p.error, head);
      sent = sendJson(res, { repositories: p.page }, head);
      return;
    }
    let m = /^\/v2\/(.+)\/tags\/list$/.exec(path);
    if (m) {
      const repo = repository(res, catalog, m[1] as string, head);
      if (!repo) return;
      const p = paginate(url, [...repo.tags.keys()].sort(), res);
      if ('error' in p) return sendError(res, 400, p.error, head);
      sent = sendJson(res, { name: repo.name, tags: p.page }, head);
      return;
    }
    m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path);
    if (m) {
      // OCI 1.1 referrers API: the carried referrers of a manifest (an empty index when none)
      const repo = repository(res, catalog, m[1] as string, head);
      if (!repo) return;
      if (!isDigest(m[2] as string)) {
        return sendError(
          res,
          400,
          { code: 'DIGEST_INVALID', message: 'not a digest', detail: { digest: m[2] } },
          head,
        );
      }
      let list = repo.referrers.get(m[2] as Digest) ?? [];
      const wanted = url.searchParams.get('artifactType');
      if (wanted) {
        list = list.filter((d) => d.artifactType === wanted);
        res.setHeader('OCI-Filters-Applied', 'artifactType');
      }
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: list,
        }),
      );
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/vnd.oci.image.index.v1+json');
      res.setHeader('Content-Length', body.length);
      res.end(head ? undefined : body);
      sent = head ? 0 : body.length;
      return;
    }
    m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m) {
      const repo = repository(res, catalog, m[1] as string, head);
      if (!repo) return;
      sent = serveManifest(req, res, catalog, repo, m[2] as string, head);
      if (sent >= 0) stats.manifests++;
      stats.bytes += Math.max(0, sent);
      return;
    }
    m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    if (m) {
      const repo = repository(res, catalog, m[1] as string, head);
      if (!repo) return;
      const n = await serveBlob(req, res, catalog, repo, m[2] as string, head);
      if (n >= 0) stats.blobs++;
      sent = Math.max(0, n);
      stats.bytes += sent;
      return;
    }
    sendError(res, 404, { code: 'NOT_FOUND', message: `no such endpoint: ${path}` }, head);
  };
}

function repository(
  res: ServerResponse,
  catalog: ServeCatalog,
  name: string,
  head: boolean,
): ServedRepository | undefined {
  const repo = catalog.repositories.get(name);
  if (!repo) {
    sendError(
      res,
      404,
      { code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name } },
      head,
    );
  }
  return repo;
}

/** Returns the body bytes sent, or -1 when answering with an error. */
function serveManifest(
  req: IncomingMessage,
  res: ServerResponse,
  catalog: ServeCatalog,
  repo: ServedRepository,
  reference: string,
  head: boolean,
): number {
  const byDigest = isDigest(reference);
  const digest = byDigest ? (reference as Digest) : repo.tags.get(reference);
  let man: ServedManifest | undefined =
    digest !== undefined && repo.digests.has(digest) ? catalog.manifests.get(digest) : undefined;
  if (!man) {
    sendError(
      res,
      404,
      {
        code: 'MANIFEST_UNKNOWN',
        message: 'manifest unknown',
        detail: { name: repo.name, [byDigest ? 'digest' : 'tag']: reference },
      },
      head,
    );
    return -1;
  }
  const accepted = acceptedTypes(req.headers.accept);
  if (accepted && !accepted.has(man.mediaType)) {
    // Like Distribution: a client that cannot take an index gets the linux/amd64 image by tag.
    const fallback =
      !byDigest && isIndexType(man.mediaType) ? platformFallback(catalog, man, accepted) : undefined;
    if (!fallback) {
      sendError(
        res,
        404,
        {
          code: 'MANIFEST_UNKNOWN',
          message: `the manifest is ${man.mediaType}, which the Accept header does not allow`,
          detail: { name: repo.name, reference, accept: [...accepted] },
        },
        head,
      );
      return -1;
    }
    man = fallback;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', man.mediaType);
  res.setHeader('Content-Length', man.bytes.length);
  res.setHeader('Docker-Content-Digest', man.descriptor.digest);
  res.setHeader('ETag', `"${man.descriptor.digest}"`);
  res.end(head ? undefined : man.bytes);
  return head ? 0 : man.bytes.length;
}

function platformFallback(
  catalog: ServeCatalog,
  index: ServedManifest,
  accepted: Set<string>,
): ServedManifest | undefined {
  if (index.parsed.kind !== 'index') return undefined;
  const child = index.parsed.index.manifests.find(
    (d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64' && accepted.has(d.mediaType),
  );
  return child ? catalog.manifests.get(child.digest) : undefined;
}

async function serveBlob(
  req: IncomingMessage,
  res: ServerResponse,
  catalog: ServeCatalog,
  repo: ServedRepository,
  reference: string,
  head: boolean,
): Promise<number> {
  if (!isDigest(reference)) {
    sendError(
      res,
      400,
      {
        code: 'DIGEST_INVALID',
        message: 'provided digest did not match uploaded content',
        detail: { digest: reference },
      },
      head,
    );
    return -1;
  }
  const desc: Descriptor | undefined = repo.digests.get(reference as Digest);
  const member = desc ? catalog.target.bundle.blobMember(desc.digest) : undefined;
  if (!desc || !member) {
    sendError(
      res,
      404,
      {
        code: 'BLOB_UNKNOWN',
        message: 'blob unknown to registry',
        detail: { name: repo.name, digest: reference },
      },
      head,
    );
    return -1;
  }
  const size = member.size;
  res.setHeader('Docker-Content-Digest', desc.digest);
  res.setHeader('ETag', `"${desc.digest}"`);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Cache-Control', 'max-age=31536000');
  const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, size);
  if (range === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${size}`);
    sendError(
      res,
      416,
      {
        code: 'RANGE_INVALID',
        message: `requested range not satisfiable: the blob has ${size} bytes`,
        detail: { range: req.headers.range },
      },
      head,
    );
    return -1;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size;
  res.statusCode = range ? 206 : 200;
  if (range) res.setHeader('Content-Range', `bytes ${start}-${end - 1}/${size}`);
  res.setHeader('Content-Length', end - start);
  if (head || end === start) {
    res.end();
    return 0;
  }
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error('client went away'));
  };
  res.once('close', onClose);
  const stream = await catalog.target.fetchRange({ ...desc, size }, start, end, {
    signal: controller.signal,
  });
  try {
    await pipeline(stream, res);
  } catch {
    // The client closed the connection or the read failed: the response is cut short, which
    // the client notices (Content-Length, digest); nothing else to do.
    res.destroy();
  } finally {
    res.off('close', onClose);
  }
  return end - start;
}
