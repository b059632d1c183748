import { type BundleInput, partsChecksumSignatureName } from '@lading/core/bundle';
import { InvalidInputError } from '@lading/core/errors';
import {
  formatS3Url,
  isS3Url,
  openS3Object,
  parseS3Url,
  type S3Client,
  type S3ObjectInfo,
} from '@lading/core/s3';
import { Flags } from '@oclif/core';
import { readSmallObject, s3ClientFor, splitBaseKey } from './s3.ts';

/**
 * "Open a bundle from a path or s3://": the flags and the one helper that `verify` and `push`
 * share. A local BUNDLE (tar, first part of a split bundle, extracted directory) is passed
 * through as a path; an `s3://bucket/key` BUNDLE becomes a streaming reader over the object (or
 * the objects `key.000`, `key.001`, … of a split bundle, with `key.sha256`) — no local copy.
 */

/** `--endpoint` and `--region`: only used when BUNDLE is `s3://bucket/key`. */
export const bundleLocationFlags = {
  endpoint: Flags.string({
    helpValue: 'URL',
    description:
      'S3-compatible endpoint for an s3:// BUNDLE (MinIO, Ceph RGW), e.g. https://s3.site.internal:9000; ' +
      'path-style addressing is used with it. Default: AWS S3. Credentials come from the AWS chain ' +
      '(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, IMDS).',
  }),
  region: Flags.string({
    helpValue: 'REGION',
    description:
      'S3 region for an s3:// BUNDLE. Default: AWS_REGION or the profile’s region, else us-east-1.',
  }),
};

export interface BundleLocationOptions {
  /** `--endpoint` (s3:// only). */
  endpoint?: string | undefined;
  /** `--region` (s3:// only). */
  region?: string | undefined;
  /** Use this S3 client instead of building one from endpoint/region (tests); close() leaves it alone. */
  client?: S3Client | undefined;
  signal?: AbortSignal | undefined;
}

export interface BundleLocation {
  /** What the user gave: a path, or `s3://bucket/key` (for messages and reports). */
  display: string;
  kind: 'local' | 's3';
  /**
   * Give this to `verifyBundle`, `openBundle` or `BundleTarget.open`. It may be given to several
   * of them, one after the other (verify, then push), until `close()`.
   */
  input: BundleInput;
  /** s3:// bundles: where the bytes are. */
  s3?: {
    bucket: string;
    /** Every object read, in order (`…tar`, or `…tar.000`, `…tar.001`, …). */
    objects: string[];
    /** The parts checksum object of a split bundle (it may not exist). */
    partsChecksum: string | undefined;
    size: number;
    /** HeadObject of the first object (ETag, `lading-sha256`, `lading-sums-sha256` metadata). */
    info: S3ObjectInfo;
  };
  /** Release what was opened (the S3 client made here). */
  close(): Promise<void>;
}

/** Open BUNDLE (a path or `s3://bucket/key`) for verify / push. */
export async function openBundleLocation(
  bundle: string,
  opts: BundleLocationOptions = {},
): Promise<BundleLocation> {
  if (!isS3Url(bundle)) {
    if (opts.endpoint !== undefined || opts.region !== undefined) {
      throw new InvalidInputError(`--endpoint and --region apply only to an s3:// bundle, not ${bundle}`, {
        hint: 'give BUNDLE as s3://bucket/key, or drop --endpoint/--region',
      });
    }
    return { display: bundle, kind: 'local', input: bundle, close: async () => {} };
  }
  const url = parseS3Url(bundle, { requireKey: true });
  const { client, release } = await s3ClientFor(opts);
  try {
    const so = opts.signal ? { signal: opts.signal } : {};
    const reader = await openS3Object(url, { client, ...so });
    const firstKey = parseS3Url(reader.paths[0] as string).key;
    const base = splitBaseKey(firstKey);
    const sumsUrl = base !== undefined ? { bucket: url.bucket, key: `${base}.sha256` } : undefined;
    const input: BundleInput = {
      reader,
      name: bundle,
      ...(sumsUrl
        ? {
            partsChecksum: {
              name: formatS3Url(sumsUrl),
              read: (o?: { signal?: AbortSignal }) =>
                readSmallObject(client, sumsUrl, o?.signal ? { signal: o.signal } : so),
              readSignature: (o?: { signal?: AbortSignal }) =>
                readSmallObject(
                  client,
                  { bucket: sumsUrl.bucket, key: partsChecksumSignatureName(sumsUrl.key) },
                  o?.signal ? { signal: o.signal } : so,
                ),
            },
          }
        : {}),
    };
    return {
      display: bundle,
      kind: 's3',
      input,
      s3: {
        bucket: url.bucket,
        objects: [...reader.paths],
        partsChecksum: sumsUrl ? formatS3Url(sumsUrl) : undefined,
        size: reader.size,
        info: reader.info,
      },
      close: async () => {
        await reader.close();
        release();
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}
