import type { S3Client } from '@aws-sdk/client-s3';
import { S3Error, S3NotFoundError, s3Status, toS3Error } from './errors.ts';
import { s3sdk } from './sdk.ts';
import type { S3Url } from './url.ts';

/** What HeadObject tells about an object. */
export interface S3ObjectInfo {
  size: number;
  /** Quoted ETag, as the store sends it (used with If-Match so a replaced object is noticed). */
  etag: string;
  /** User metadata (`x-amz-meta-*`), keys lower-case. */
  metadata: Record<string, string>;
  contentType: string | undefined;
}

/**
 * HeadObject with typed errors. A HEAD answer has no body, so a 404 does not say whether the
 * bucket or the key is missing: on a 404 this asks HeadBucket to tell them apart.
 */
export async function headObject(
  client: S3Client,
  url: S3Url,
  opts: { signal?: AbortSignal } = {},
): Promise<S3ObjectInfo> {
  try {
    const out = await client.send(
      new (await s3sdk()).HeadObjectCommand({ Bucket: url.bucket, Key: url.key }),
      opts.signal ? { abortSignal: opts.signal } : {},
    );
    return {
      size: out.ContentLength ?? 0,
      etag: out.ETag ?? '',
      metadata: lowerKeys(out.Metadata ?? {}),
      contentType: out.ContentType,
    };
  } catch (err) {
    const mapped = toS3Error(err, url, opts.signal);
    if (mapped instanceof S3NotFoundError) throw await whichMissing(client, url, err, opts.signal);
    throw mapped;
  }
}

/** Like headObject, but undefined when the object does not exist (a missing bucket still throws). */
export async function headObjectIfExists(
  client: S3Client,
  url: S3Url,
  opts: { signal?: AbortSignal } = {},
): Promise<S3ObjectInfo | undefined> {
  try {
    return await headObject(client, url, opts);
  } catch (err) {
    if (err instanceof S3NotFoundError) return undefined;
    throw err;
  }
}

async function whichMissing(
  client: S3Client,
  url: S3Url,
  cause: unknown,
  signal?: AbortSignal,
): Promise<Error> {
  try {
    await client.send(
      new (await s3sdk()).HeadBucketCommand({ Bucket: url.bucket }),
      signal ? { abortSignal: signal } : {},
    );
  } catch (err) {
    if (s3Status(err) === 404) {
      return new S3Error(
        'S3_NO_SUCH_BUCKET',
        { bucket: url.bucket },
        `bucket "${url.bucket}" does not exist`,
        {
          cause: err,
          s3Code: 'NoSuchBucket',
          status: 404,
          hint: 'check the bucket name, the region (AWS_REGION) and --endpoint; create the bucket first',
        },
      );
    }
    // Cannot tell (HeadBucket may be denied while objects are readable): report the object.
  }
  return new S3NotFoundError(url, 'no such object', cause);
}

function lowerKeys(m: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) out[k.toLowerCase()] = v;
  return out;
}
