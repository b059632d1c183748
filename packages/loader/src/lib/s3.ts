import { parsePartName } from '@lading/core/bundle';
import { InvalidInputError } from '@lading/core/errors';
import {
  createS3Client,
  headObjectIfExists,
  openS3Object,
  S3ChecksumError,
  type S3Client,
  type S3Url,
} from '@lading/core/s3';

/** S3 settings a command takes from its flags. */
export interface S3Settings {
  /** S3-compatible endpoint (MinIO, Ceph RGW …); path-style addressing is used with it. */
  endpoint?: string | undefined;
  region?: string | undefined;
  /** An existing client (tests); it is not destroyed by the caller's close(). */
  client?: S3Client | undefined;
}

/** A client for the settings, and how to release it (destroys only a client made here). */
export async function s3ClientFor(settings: S3Settings): Promise<{ client: S3Client; release(): void }> {
  if (settings.client) return { client: settings.client, release: () => {} };
  if (settings.endpoint !== undefined) {
    let u: URL;
    try {
      u = new URL(settings.endpoint);
    } catch {
      throw new InvalidInputError(`invalid --endpoint "${settings.endpoint}"`, {
        hint: 'give a URL such as https://s3.site.internal:9000',
      });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new InvalidInputError(
        `invalid --endpoint "${settings.endpoint}": it must be http:// or https://`,
      );
    }
  }
  const client = await createS3Client({
    ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
    ...(settings.region !== undefined ? { region: settings.region } : {}),
  });
  return { client, release: () => client.destroy() };
}

/** Small objects (the parts checksum file) are read whole; anything larger is refused. */
export const MAX_SMALL_OBJECT = 1024 * 1024;

/**
 * The bytes of a small object, or undefined when it does not exist (a missing bucket, refused
 * credentials and network failures still throw, typed, naming the bucket and key).
 */
export async function readSmallObject(
  client: S3Client,
  url: S3Url,
  opts: { signal?: AbortSignal } = {},
): Promise<Buffer | undefined> {
  const info = await headObjectIfExists(client, url, opts);
  if (!info) return undefined;
  if (info.size > MAX_SMALL_OBJECT) {
    throw new S3ChecksumError(url, `is ${info.size} bytes, more than a parts checksum file can be`);
  }
  const src = await openS3Object(url, { client, ...(opts.signal ? { signal: opts.signal } : {}) });
  try {
    return await src.read(0, src.size, opts);
  } finally {
    await src.close();
  }
}

/** `s3://bucket/a/b.tar.000` → the key of the split bundle's base (`a/b.tar`), or undefined. */
export function splitBaseKey(key: string): string | undefined {
  return parsePartName(key)?.base;
}
