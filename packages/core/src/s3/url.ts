import { InvalidInputError } from '../errors/index.ts';

/** An object or prefix in a bucket: `s3://bucket/key`. */
export interface S3Url {
  bucket: string;
  /** Object key or prefix; '' for the bucket root. Never starts with '/'. */
  key: string;
}

export class InvalidS3UrlError extends InvalidInputError {
  override readonly code = 'INVALID_S3_URL';
  readonly value: string;
  constructor(value: string, reason: string) {
    super(`invalid S3 URL "${value}": ${reason}`, {
      hint: 'an S3 location looks like s3://bucket/key (or s3://bucket/prefix/ for a destination)',
    });
    this.value = value;
  }
}

// S3 bucket naming rules, relaxed to what S3-compatible stores (Ceph RGW, MinIO) also accept:
// 3–63 characters (up to 255 for legacy names), letters, digits, '.', '-', '_'.
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/;

export function isS3Url(value: string): boolean {
  return value.startsWith('s3://');
}

/**
 * Parse `s3://bucket/key-or-prefix`. With `requireKey`, the URL must name an object (a non-empty
 * key not ending in '/').
 */
export function parseS3Url(value: string, opts: { requireKey?: boolean } = {}): S3Url {
  if (!isS3Url(value)) throw new InvalidS3UrlError(value, 'it must start with s3://');
  const rest = value.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (bucket.length === 0) throw new InvalidS3UrlError(value, 'the bucket name is empty');
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new InvalidS3UrlError(value, `"${bucket}" is not a valid bucket name`);
  }
  if (key.startsWith('/')) throw new InvalidS3UrlError(value, 'the key must not start with "/"');
  if (Buffer.byteLength(key) > 1024) throw new InvalidS3UrlError(value, 'the key is longer than 1024 bytes');
  if ([...key].some((c) => c.charCodeAt(0) < 0x20))
    throw new InvalidS3UrlError(value, 'the key holds control characters');
  if (opts.requireKey && (key === '' || key.endsWith('/'))) {
    throw new InvalidS3UrlError(value, 'it names a prefix, not an object (s3://bucket/path/to/object)');
  }
  return { bucket, key };
}

export function formatS3Url(url: S3Url): string {
  return `s3://${url.bucket}/${url.key}`;
}

/** The key of `name` under a prefix: '' → name, 'a/b' or 'a/b/' → 'a/b/name' (README.md, Commands). */
export function joinS3Key(prefix: string, name: string): string {
  if (prefix === '') return name;
  return prefix.endsWith('/') ? `${prefix}${name}` : `${prefix}/${name}`;
}
