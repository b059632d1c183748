import {
  AbortedError,
  type LadingErrorOptions,
  NotFoundError,
  RemoteError,
  VerificationError,
} from '../errors/index.ts';
import { ProxyError } from './proxy.ts';

/**
 * Typed errors of the registry client. Each names the registry host and, where known, the
 * repository and the ref/digest, carries the HTTP status and the registry's own error code and
 * message (from its `{"errors":[…]}` body), and a hint with the likely fix.
 */

/** One entry of a Distribution error body (`{"errors":[{"code","message","detail"}]}`). */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** Where an error happened. */
export interface RegistryErrorContext {
  /** Registry host, e.g. `127.0.0.1:5000` or `docker.io`. */
  registry: string;
  repository?: string;
  /** Tag or digest the operation was about. */
  ref?: string;
  /** HTTP status, when the registry answered. */
  status?: number;
  /** The registry's error entries, when its body had any. */
  errors?: RegistryErrorEntry[];
}

export interface RegistryErrorOptions extends LadingErrorOptions, RegistryErrorContext {}

/** The fields every registry error carries. */
export interface RegistryErrorFields {
  readonly registry: string;
  readonly repository: string | undefined;
  readonly ref: string | undefined;
  readonly status: number | undefined;
  /** The registry's first error code (e.g. `MANIFEST_UNKNOWN`), if it sent one. */
  readonly registryCode: string | undefined;
  /** The registry's own error message(s), if it sent any. */
  readonly registryMessage: string | undefined;
  readonly errors: RegistryErrorEntry[];
}

function where(o: RegistryErrorContext): string {
  const repo = o.repository ? `${o.registry}/${o.repository}` : o.registry;
  if (!o.ref) return repo;
  return `${repo}${/^[a-z0-9]+:[a-f0-9]+$/.test(o.ref) ? '@' : ':'}${o.ref}`;
}

function registryText(o: RegistryErrorContext): string {
  const msgs = (o.errors ?? []).map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).filter(Boolean);
  return msgs.length > 0 ? ` (registry says: ${msgs.join('; ')})` : '';
}

function assign(target: RegistryErrorFields, o: RegistryErrorOptions): void {
  const t = target as { -readonly [K in keyof RegistryErrorFields]: RegistryErrorFields[K] };
  t.registry = o.registry;
  t.repository = o.repository;
  t.ref = o.ref;
  t.status = o.status;
  t.errors = o.errors ?? [];
  t.registryCode = o.errors?.[0]?.code;
  t.registryMessage = o.errors?.length ? o.errors.map((e) => e.message).join('; ') : undefined;
}

function fullMessage(what: string, o: RegistryErrorOptions): string {
  const status = o.status ? ` (HTTP ${o.status})` : '';
  return `${where(o)}: ${what}${status}${registryText(o)}`;
}

/** Any failure talking to a registry that has no more specific class. */
export class RegistryError extends RemoteError implements RegistryErrorFields {
  override readonly code: string = 'REGISTRY_ERROR';
  declare readonly registry: string;
  declare readonly repository: string | undefined;
  declare readonly ref: string | undefined;
  declare readonly status: number | undefined;
  declare readonly registryCode: string | undefined;
  declare readonly registryMessage: string | undefined;
  declare readonly errors: RegistryErrorEntry[];
  constructor(what: string, o: RegistryErrorOptions) {
    super(fullMessage(what, o), o);
    assign(this, o);
  }
}

/** 401/403: missing or wrong credentials, or no permission for the repository. */
export class AuthError extends RegistryError {
  override readonly code: string = 'REGISTRY_AUTH_FAILED';
  constructor(what: string, o: RegistryErrorOptions) {
    super(what, {
      ...o,
      hint:
        o.hint ??
        (o.status === 403
          ? 'the credentials are valid but lack permission for this repository; check the account rights'
          : 'check the credentials: docker login / podman login for this registry, or pass --username with --password-stdin'),
    });
  }
}

/** The TLS handshake failed: untrusted or invalid certificate, or the registry speaks plain HTTP. */
export class TlsError extends RegistryError {
  override readonly code: string = 'REGISTRY_TLS_FAILED';
  /** The registry answered the TLS handshake in plain HTTP: a plain-HTTP flag helps, not a CA. */
  readonly speaksPlainHttp: boolean;
  constructor(what: string, o: RegistryErrorOptions & { speaksPlainHttp?: boolean }) {
    super(what, {
      ...o,
      hint: o.hint ?? 'pass --ca-file with the registry CA, or --insecure for testing',
    });
    this.speaksPlainHttp = o.speaksPlainHttp === true;
  }
}

/** The registry could not be reached or kept failing (connection refused, DNS, 5xx after retries). */
export class RegistryUnavailableError extends RegistryError {
  override readonly code: string = 'REGISTRY_UNAVAILABLE';
  /** Another attempt may succeed (see isTransientError). */
  readonly transient = true;
  constructor(what: string, o: RegistryErrorOptions) {
    super(what, {
      ...o,
      hint:
        o.hint ??
        'check that the registry address is right and the registry is up (and HTTPS_PROXY/NO_PROXY)',
    });
  }
}

/** The registry stopped answering or sending/reading data within the timeout. */
export class RegistryTimeoutError extends RegistryUnavailableError {
  override readonly code: string = 'REGISTRY_TIMEOUT';
  constructor(what: string, o: RegistryErrorOptions) {
    super(what, {
      ...o,
      hint: o.hint ?? 'the registry or the network stalled; retry later or raise the timeout',
    });
  }
}

/** The registry answered with something that breaks the Distribution API (bad headers or body). */
export class RegistryProtocolError extends RegistryError {
  override readonly code: string = 'REGISTRY_PROTOCOL_ERROR';
}

function notFoundFields<T extends RegistryErrorFields>(self: T, o: RegistryErrorOptions): void {
  assign(self, o);
}

/** A 404 from a registry: the typed fields of RegistryError on a NotFoundError. */
export abstract class RegistryNotFoundError extends NotFoundError implements RegistryErrorFields {
  declare readonly registry: string;
  declare readonly repository: string | undefined;
  declare readonly ref: string | undefined;
  declare readonly status: number | undefined;
  declare readonly registryCode: string | undefined;
  declare readonly registryMessage: string | undefined;
  declare readonly errors: RegistryErrorEntry[];
  constructor(what: string, hint: string, o: RegistryErrorOptions) {
    super(fullMessage(what, o), { ...o, hint: o.hint ?? hint });
    notFoundFields(this, o);
  }
}

/** 404 for a manifest, by tag or digest. */
export class ManifestUnknownError extends RegistryNotFoundError {
  override readonly code: string = 'MANIFEST_UNKNOWN';
  constructor(o: RegistryErrorOptions) {
    super(
      'manifest not found',
      'check the tag or digest and the repository path; list tags to see what exists',
      o,
    );
  }
}

/** 404 for a blob. */
export class BlobUnknownError extends RegistryNotFoundError {
  override readonly code: string = 'BLOB_UNKNOWN';
  constructor(o: RegistryErrorOptions) {
    super(
      'blob not found',
      'the registry does not hold this blob in this repository; push it or check the source',
      o,
    );
  }
}

/** 404 for the repository itself (tag listing of a repository that does not exist). */
export class RepositoryUnknownError extends RegistryNotFoundError {
  override readonly code: string = 'NAME_UNKNOWN';
  constructor(o: RegistryErrorOptions) {
    super('repository not found', 'check the repository path (and the registry prefix)', o);
  }
}

/** The registry refused uploaded content because its digest or size did not match (400 DIGEST_INVALID/SIZE_INVALID). */
export class UploadRejectedError extends VerificationError implements RegistryErrorFields {
  override readonly code: string = 'UPLOAD_REJECTED';
  declare readonly registry: string;
  declare readonly repository: string | undefined;
  declare readonly ref: string | undefined;
  declare readonly status: number | undefined;
  declare readonly registryCode: string | undefined;
  declare readonly registryMessage: string | undefined;
  declare readonly errors: RegistryErrorEntry[];
  constructor(o: RegistryErrorOptions) {
    super(fullMessage('the registry rejected the upload: content does not match its digest or size', o), {
      ...o,
      hint: o.hint ?? 'the content differs from its descriptor; fetch it again from a trusted source',
    });
    notFoundFields(this, o);
  }
}

/** Parse a Distribution error body; never throws. */
export function parseErrorBody(body: string | undefined): RegistryErrorEntry[] {
  if (!body) return [];
  try {
    const json = JSON.parse(body) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => {
        const out: RegistryErrorEntry = {
          code: typeof e.code === 'string' ? e.code : 'UNKNOWN',
          message: typeof e.message === 'string' ? e.message : '',
        };
        if (e.detail !== undefined) out.detail = e.detail;
        return out;
      });
  } catch {
    return [];
  }
}

export type ResourceKind = 'manifest' | 'blob' | 'tags' | 'upload' | 'registry';

/**
 * The typed error for an unexpected HTTP status. `kind` tells what the request was about, so a 404
 * becomes ManifestUnknown / BlobUnknown / RepositoryUnknown.
 */
export function errorFromStatus(
  status: number,
  kind: ResourceKind,
  ctx: RegistryErrorContext,
  body?: string,
): RegistryError | NotFoundError | VerificationError {
  const errors = ctx.errors ?? parseErrorBody(body);
  const o: RegistryErrorOptions = { ...ctx, status, errors };
  const codes = new Set(errors.map((e) => e.code));
  if (status === 401) return new AuthError('authentication required or refused', o);
  if (status === 403) return new AuthError('access denied', o);
  if (status === 404) {
    if (codes.has('NAME_UNKNOWN') || kind === 'tags') return new RepositoryUnknownError(o);
    if (codes.has('BLOB_UNKNOWN') || codes.has('BLOB_UPLOAD_UNKNOWN') || kind === 'blob' || kind === 'upload')
      return new BlobUnknownError(o);
    if (kind === 'manifest' || codes.has('MANIFEST_UNKNOWN')) return new ManifestUnknownError(o);
    return new RegistryError('not found', o);
  }
  if (status === 400 && (codes.has('DIGEST_INVALID') || codes.has('SIZE_INVALID'))) {
    return new UploadRejectedError(o);
  }
  if (status === 429) return new RegistryUnavailableError('too many requests (rate limited)', o);
  if (status >= 500) return new RegistryUnavailableError(`server error`, o);
  return new RegistryError(`unexpected HTTP status ${status}`, o);
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

function errCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether a thrown network error is a TLS problem. */
export function isTlsFailure(err: unknown): boolean {
  const code = errCode(err);
  if (code && TLS_CODES.has(code)) return true;
  const msg = String((err as Error)?.message ?? '');
  return /certificate|wrong version number|SSL routines|TLS/i.test(msg) && code !== 'UND_ERR_ABORTED';
}

/** Whether the TLS failure means the server speaks plain HTTP on that port. */
export function isPlainHttpServer(err: unknown): boolean {
  const msg = String((err as Error)?.message ?? '');
  return (
    errCode(err) === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    /wrong version number|packet length too long/i.test(msg)
  );
}

/** Map a network-level failure (no HTTP answer) to a typed error. */
export function errorFromNetwork(err: unknown, ctx: RegistryErrorContext, signal?: AbortSignal): Error {
  if (
    err instanceof RegistryError ||
    err instanceof NotFoundError ||
    err instanceof VerificationError ||
    err instanceof ProxyError
  ) {
    return err;
  }
  if (err instanceof AbortedError) return err;
  if (signal?.aborted) return new AbortedError(`${where(ctx)}: operation aborted`, { cause: signal.reason });
  const code = errCode(err);
  const detail = (err as Error)?.message ?? String(err);
  if (code === 'UND_ERR_ABORTED' || (err as Error)?.name === 'AbortError') {
    return new AbortedError(`${where(ctx)}: operation aborted`, { cause: err });
  }
  if (isTlsFailure(err)) {
    if (isPlainHttpServer(err)) {
      return new TlsError(`TLS handshake failed: the registry seems to speak plain HTTP (${detail})`, {
        ...ctx,
        cause: err,
        hint: 'this registry serves plain HTTP: reach it without TLS with --plain-http (push, install, mirror-config) or --plain-http-host HOST (create, images)',
        speaksPlainHttp: true,
      });
    }
    return new TlsError(`TLS certificate not trusted (${code ?? detail}: ${detail})`, { ...ctx, cause: err });
  }
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new RegistryTimeoutError(`timed out (${detail})`, { ...ctx, cause: err });
  }
  if (code === 'LADING_UPLOAD_STALLED') {
    return new RegistryTimeoutError(`upload stalled: ${detail}`, { ...ctx, cause: err });
  }
  return new RegistryUnavailableError(`request failed: ${code ? `${code} ` : ''}${detail}`, {
    ...ctx,
    cause: err,
  });
}
