import {
  AbortedError,
  isTransientCode,
  NotFoundError,
  RemoteError,
  VerificationError,
} from '../errors/index.ts';
import { ProxyError } from '../registry/proxy.ts';
import { RetryPolicy } from '../registry/retry.ts';
import { formatS3Url } from './url.ts';

/** Where an S3 failure happened: what a person needs to find the object. */
export interface S3Location {
  bucket: string;
  key?: string;
}

function where(loc: S3Location): string {
  return loc.key === undefined ? `s3://${loc.bucket}` : formatS3Url({ bucket: loc.bucket, key: loc.key });
}

/** An S3 request failed: credentials, bucket, network, the store itself (exit 4). */
export class S3Error extends RemoteError {
  override readonly code: string;
  readonly bucket: string;
  readonly key: string | undefined;
  /** The store's error code (`NoSuchBucket`, `InvalidAccessKeyId`, …) or a network error code. */
  readonly s3Code: string | undefined;
  readonly status: number | undefined;
  constructor(
    code: string,
    loc: S3Location,
    message: string,
    opts: { hint?: string; cause?: unknown; s3Code?: string; status?: number } = {},
  ) {
    super(`${where(loc)}: ${message}`, { hint: opts.hint, cause: opts.cause });
    this.code = code;
    this.bucket = loc.bucket;
    this.key = loc.key;
    this.s3Code = opts.s3Code;
    this.status = opts.status;
  }
}

/** The object (or a multipart upload) does not exist (exit 4). */
export class S3NotFoundError extends NotFoundError {
  override readonly code = 'S3_NO_SUCH_KEY';
  readonly bucket: string;
  readonly key: string | undefined;
  constructor(loc: S3Location, message = 'no such object', cause?: unknown) {
    super(`${where(loc)}: ${message}`, {
      hint: 'check the key (list the bucket with `aws s3 ls s3://BUCKET/PREFIX/`) and --endpoint',
      cause,
    });
    this.bucket = loc.bucket;
    this.key = loc.key;
  }
}

/** Bytes in the store differ from what was sent or what was expected (exit 3). */
export class S3ChecksumError extends VerificationError {
  override readonly code = 'S3_CHECKSUM_MISMATCH';
  readonly bucket: string;
  readonly key: string | undefined;
  constructor(loc: S3Location, message: string, cause?: unknown) {
    super(`${where(loc)}: ${message}`, {
      hint: 'the object was changed or corrupted in transit or at rest; publish it again from the original file',
      cause,
    });
    this.bucket = loc.bucket;
    this.key = loc.key;
  }
}

const AUTH_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
  'AuthorizationHeaderMalformed',
  'CredentialsProviderError',
  'Forbidden',
]);

const CHECKSUM_CODES = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentSHA256Mismatch']);

/** The SDK's names for a timed-out request, transient like the network codes. */
const SDK_TIMEOUTS = new Set(['TimeoutError', 'RequestTimeout']);

/** A request that never got an answer: the one transient list, the SDK's timeouts. */
function isNetworkFailure(code: string): boolean {
  return isTransientCode(code) || SDK_TIMEOUTS.has(code);
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

/** The store's error code of an SDK error (or a Node network error code). */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as SdkErrorShape | undefined;
  if (!e || typeof e !== 'object') return undefined;
  return e.Code ?? (typeof e.code === 'string' ? e.code : undefined) ?? e.name;
}

export function s3Status(err: unknown): number | undefined {
  const e = err as SdkErrorShape | undefined;
  return e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
}

/** Whether the error came from a request aborted through its signal. */
export function isS3Abort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const e = err as SdkErrorShape | undefined;
  return e?.name === 'AbortError' || e?.code === 'ABORT_ERR';
}

/** Whether a failed request may succeed when sent again (throttling, 5xx, network). */
export function isS3Retryable(err: unknown): boolean {
  const code = s3ErrorCode(err) ?? '';
  const status = s3Status(err);
  if (isNetworkFailure(code)) return true;
  if (
    ['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeTooSkewed', 'InternalError'].includes(code)
  ) {
    return code !== 'RequestTimeTooSkewed';
  }
  return status !== undefined && status >= 500;
}

/**
 * Turn anything the SDK threw into a typed Lading error naming the bucket and key:
 * auth → S3Error (S3_AUTH), NoSuchBucket → S3Error (S3_NO_SUCH_BUCKET), NoSuchKey / 404 →
 * S3NotFoundError, checksum mismatches → S3ChecksumError (exit 3), abort → AbortedError.
 */
export function toS3Error(err: unknown, loc: S3Location, signal?: AbortSignal): Error {
  if (err instanceof S3Error || err instanceof S3NotFoundError || err instanceof S3ChecksumError) return err;
  if (err instanceof AbortedError || err instanceof ProxyError) return err;
  if (isS3Abort(err, signal)) return new AbortedError(`${where(loc)}: aborted`, { cause: err });
  const code = s3ErrorCode(err) ?? 'Unknown';
  const status = s3Status(err);
  const detail = (err as SdkErrorShape | undefined)?.message ?? String(err);
  const base = { cause: err, s3Code: code, ...(status === undefined ? {} : { status }) };
  if (code === 'NoSuchBucket') {
    return new S3Error('S3_NO_SUCH_BUCKET', { bucket: loc.bucket }, `bucket "${loc.bucket}" does not exist`, {
      ...base,
      hint: 'check the bucket name, the region (AWS_REGION) and --endpoint; create the bucket first',
    });
  }
  if (code === 'NoSuchKey' || code === 'NotFound' || (status === 404 && code !== 'NoSuchUpload')) {
    return new S3NotFoundError(loc, 'no such object', err);
  }
  if (code === 'NoSuchUpload') {
    return new S3Error('S3_NO_SUCH_UPLOAD', loc, 'the multipart upload no longer exists', {
      ...base,
      hint: 'it was completed or aborted elsewhere (or removed by a lifecycle rule); run the command again',
    });
  }
  if (AUTH_CODES.has(code) || status === 401 || status === 403) {
    const what =
      code === 'AccessDenied' || (status === 403 && !AUTH_CODES.has(code))
        ? 'access denied'
        : code === 'CredentialsProviderError'
          ? 'no AWS credentials found'
          : `the credentials were refused (${code})`;
    return new S3Error('S3_AUTH', loc, what, {
      ...base,
      hint:
        'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or AWS_PROFILE and ~/.aws/credentials; ' +
        'the identity needs s3:GetObject/s3:PutObject/s3:ListBucketMultipartUploads on the bucket',
    });
  }
  if (CHECKSUM_CODES.has(code)) {
    return new S3ChecksumError(loc, `the store rejected the data: its checksum did not match (${code})`, err);
  }
  if (code === 'PreconditionFailed' || status === 412) {
    return new S3Error('S3_CHANGED', loc, 'the object changed while it was being read', {
      ...base,
      hint: 'someone replaced the object; run the command again',
    });
  }
  if (isNetworkFailure(code) || code === 'ENOTFOUND') {
    return new S3Error('S3_UNREACHABLE', loc, `cannot reach the S3 endpoint (${code}): ${detail}`, {
      ...base,
      hint: 'check --endpoint, the network and proxy settings (HTTPS_PROXY, NO_PROXY)',
    });
  }
  return new S3Error(
    'S3_FAILED',
    loc,
    `request failed (${code}${status ? `, HTTP ${status}` : ''}): ${detail}`,
    {
      ...base,
    },
  );
}

/** The pauses between S3 attempts: the one retry policy (full jitter from 200 ms). */
const S3_RETRY = new RetryPolicy({ baseDelayMs: 200 });

/** Wait before attempt `attempt + 1`; returns early (without throwing) when the signal fires. */
export async function s3RetryPause(attempt: number, signal?: AbortSignal): Promise<void> {
  await S3_RETRY.wait(S3_RETRY.delayMs(attempt) ?? 0, signal).catch(() => undefined);
}
