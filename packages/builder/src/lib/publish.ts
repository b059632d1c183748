import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  createS3Client,
  digestOf,
  formatS3Url,
  InvalidInputError,
  META_SUMS_SHA256,
  openBundle,
  openParts,
  type PublishedObject,
  type PublishProgress,
  parseS3Url,
  parseSize,
  parseSums,
  partsChecksumSignatureName,
  publishFiles,
  type S3ClientOptions,
} from '@lading/core';

/**
 * Files the parts checksum file lists besides the bundle (the standalone loader that
 * `create --with-loader` put beside it): they travel with the bundle, so they are published too.
 */
async function companions(checksumFile: string, have: readonly string[]): Promise<string[]> {
  const dir = dirname(checksumFile);
  const known = new Set(have.map((f) => basename(f)));
  const out: string[] = [];
  for (const e of parseSums(await readFile(checksumFile), basename(checksumFile))) {
    if (known.has(e.path)) continue;
    const path = join(dir, e.path);
    if (
      e.path.includes('/') ||
      !(await stat(path).then(
        (st) => st.isFile(),
        () => false,
      ))
    ) {
      throw new InvalidInputError(`${checksumFile} lists ${e.path}, which is not beside the bundle`, {
        hint: 'publish the folder create wrote as it is (bundle, parts, NAME.tar.sha256 and the loader)',
      });
    }
    out.push(path);
  }
  return out;
}

/** `lading-build publish`: a bundle (or its parts and parts file) to s3://bucket/prefix/. */
export interface PublishBundleOptions {
  bundle: string;
  destination: string;
  endpoint?: string;
  region?: string;
  profile?: string;
  partSize?: string | number;
  concurrency?: number;
  /** Explicit S3 credentials (tests); default: the AWS chain. */
  credentials?: S3ClientOptions['credentials'];
  signal?: AbortSignal;
  onProgress?: (p: PublishProgress) => void;
}

export interface PublishBundleResult {
  bundle: string;
  name: string;
  version: string;
  /** sha256 of the bundle's SHA256SUMS, stored as `lading-sums-sha256` metadata on every object. */
  sumsDigest: string;
  destination: string;
  objects: Array<{
    file: string;
    url: string;
    size: number;
    sha256: string;
    parts: number;
    uploadedParts: number;
    reusedParts: number;
    resumed: boolean;
    skipped: boolean;
  }>;
  bytes: number;
  /** Bytes actually sent by this run (resumed and unchanged objects excluded). */
  sentBytes: number;
  seconds: number;
}

export async function publishBundle(opts: PublishBundleOptions): Promise<PublishBundleResult> {
  const started = Date.now();
  const dest = parseS3Url(opts.destination);
  const bundle = await openBundle(opts.bundle, opts.signal ? { signal: opts.signal } : {});
  let files: string[];
  let name: string;
  let version: string;
  let sumsHex: string;
  try {
    if (bundle.source.kind === 'directory') {
      throw new InvalidInputError(
        `${opts.bundle} is an extracted folder; publish takes the bundle file or its first part`,
        {
          hint: 'publish the .tar (or .tar.000) that lading-build create wrote',
        },
      );
    }
    name = bundle.ladingJson.name;
    version = bundle.ladingJson.version;
    sumsHex = digestOf(bundle.sumsBytes).slice('sha256:'.length);
  } finally {
    await bundle.close();
  }
  const parts = await openParts(opts.bundle, opts.signal ? { signal: opts.signal } : {});
  try {
    files = [...parts.paths];
    if (parts.paths.length > 1 || parts.checksumFile) {
      if (!parts.checksumFile) {
        throw new InvalidInputError(`${opts.bundle}: the parts checksum file (NAME.tar.sha256) is missing`, {
          hint: 'a split bundle travels with its .sha256 file; re-split it with lading-build split',
        });
      }
      files.push(parts.checksumFile);
      files.push(...(await companions(parts.checksumFile, files)));
      const sig = partsChecksumSignatureName(parts.checksumFile);
      if (
        await stat(sig).then(
          (st) => st.isFile(),
          () => false,
        )
      )
        files.push(sig);
    }
  } finally {
    await parts.close();
  }
  const client = await createS3Client({
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
  let published: PublishedObject[];
  try {
    published = await publishFiles(files, dest, {
      client,
      ...(opts.partSize !== undefined ? { partSize: parseSize(opts.partSize) } : {}),
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      metadata: { [META_SUMS_SHA256]: sumsHex },
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
  } finally {
    client.destroy();
  }
  const objects = published.map((p) => ({
    file: p.file,
    url: p.url,
    size: p.size,
    sha256: p.sha256,
    parts: p.parts,
    uploadedParts: p.uploadedParts,
    reusedParts: p.reusedParts,
    resumed: p.resumedUploadId !== undefined,
    skipped: p.skipped,
  }));
  return {
    bundle: opts.bundle,
    name,
    version,
    sumsDigest: `sha256:${sumsHex}`,
    destination: formatS3Url(dest),
    objects,
    bytes: published.reduce((n, p) => n + p.size, 0),
    sentBytes: published.reduce(
      (n, p) => n + (p.skipped ? 0 : Math.max(0, p.size - p.reusedParts * p.partSize)),
      0,
    ),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
