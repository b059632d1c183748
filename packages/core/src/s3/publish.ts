import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Part, S3Client } from '@aws-sdk/client-s3';
import { AbortedError, InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { fanOut, Limiter } from '../util/index.ts';
import { isS3Retryable, S3ChecksumError, S3Error, s3ErrorCode, s3RetryPause, toS3Error } from './errors.ts';
import { headObject, headObjectIfExists } from './head.ts';
import { META_PART_SIZE, META_SHA256 } from './meta.ts';
import { s3sdk } from './sdk.ts';
import { formatS3Url, joinS3Key, parseS3Url, type S3Url } from './url.ts';

const MiB = 1024 * 1024;
/** S3 limits: parts of 5 MiB to 5 GiB (the last may be smaller), at most 10,000 parts. */
export const S3_MIN_PART_SIZE = 5 * MiB;
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;
export const DEFAULT_PUBLISH_PART_SIZE = 64 * MiB;

export interface PublishProgress {
  file: string;
  key: string;
  phase: 'hashing' | 'uploading' | 'done' | 'skipped';
  bytesDone: number;
  bytesTotal: number;
  partsDone: number;
  partsTotal: number;
}

export interface PublishOptions {
  client: S3Client;
  /** Multipart part size (default 64 MiB; 5 MiB … 5 GiB; raised when a file needs more than 10,000 parts). */
  partSize?: number;
  /** Parallel part uploads when no `limiter` is given (default 4). */
  concurrency?: number;
  /** A shared limiter bounding concurrent requests (takes precedence over `concurrency`). */
  limiter?: Limiter;
  /**
   * Object metadata (`x-amz-meta-*`), e.g. `{ 'lading-sums-sha256': <hex of SHA256SUMS> }`.
   * Lading adds `lading-sha256` (the object's own sha256) and `lading-part-size`.
   */
  metadata?: Record<string, string>;
  contentType?: string;
  /**
   * Attempts per part on throttling, 5xx, network errors and rejected checksums (default 3). The
   * SDK does not retry a request with a streamed body, so these are the only retries of a part:
   * a part is sent at most `attempts` times.
   */
  attempts?: number;
  signal?: AbortSignal;
  onProgress?: (p: PublishProgress) => void;
}

export interface PublishedObject {
  file: string;
  bucket: string;
  key: string;
  url: string;
  size: number;
  /** sha256 (hex) of the file, also stored as `lading-sha256` metadata. */
  sha256: string;
  etag: string;
  partSize: number;
  parts: number;
  /** Parts sent by this call. */
  uploadedParts: number;
  /** Parts found already uploaded (resume) and verified against the local file. */
  reusedParts: number;
  /** The unfinished multipart upload this call resumed, if any. */
  resumedUploadId?: string;
  /** The object already existed with the same size and sha256: nothing was sent. */
  skipped: boolean;
}

interface LocalPart {
  n: number;
  start: number;
  size: number;
  md5: Buffer;
  sha256: Buffer;
}

interface Plan {
  sha256: string;
  parts: LocalPart[];
}

/**
 * Upload files to `s3://bucket/prefix` as `prefix/<file name>` (README.md, Commands), one after the
 * other, each with parallel parts. See `publishFile`.
 */
export async function publishFiles(
  files: string[],
  dest: string | S3Url,
  opts: PublishOptions,
): Promise<PublishedObject[]> {
  const base = typeof dest === 'string' ? parseS3Url(dest) : dest;
  const names = new Set<string>();
  for (const f of files) {
    const name = basename(f);
    if (names.has(name)) throw new InvalidInputError(`two files would both be published as "${name}"`);
    names.add(name);
  }
  const limiter = opts.limiter ?? new Limiter(opts.concurrency ?? 4);
  const out: PublishedObject[] = [];
  for (const file of files) {
    out.push(
      await publishFile(
        file,
        { bucket: base.bucket, key: joinS3Key(base.key, basename(file)) },
        { ...opts, limiter },
      ),
    );
  }
  return out;
}

/**
 * Upload one file to exactly `dest` (bucket + full key).
 *
 * 1. HeadObject: an object with the same size and `lading-sha256` is left alone (`skipped`).
 * 2. One sequential read of the file computes its sha256 and every part's SHA-256 and MD5.
 * 3. Files up to one part: PutObject. Larger: multipart. Resume: an unfinished multipart upload
 *    of the same key (ListMultipartUploads) whose listed parts (ListParts) all have the planned
 *    size and the local part's SHA-256 checksum (or, when the store keeps no checksums, an MD5
 *    ETag) is continued, sending only the missing parts. Anything else starts a new upload.
 * 4. Every part is sent with `Content-MD5` and, when the store acknowledged SHA-256 checksums
 *    on CreateMultipartUpload, `x-amz-checksum-sha256`, so the store rejects damaged parts.
 *    Bodies are ranged read streams of the file; nothing is held in memory.
 * 5. CompleteMultipartUpload, then HeadObject checks the size.
 *
 * An aborted or failed upload is left in place (not aborted) so that the next call resumes it;
 * a bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans up ones never resumed.
 * `@aws-sdk/lib-storage`'s Upload is not used: it cannot resume or reuse verified parts.
 */
export async function publishFile(file: string, dest: S3Url, opts: PublishOptions): Promise<PublishedObject> {
  const { client, signal } = opts;
  const loc = { bucket: dest.bucket, key: dest.key };
  if (dest.key === '' || dest.key.endsWith('/')) {
    throw new InvalidInputError(`${formatS3Url(dest)} names a prefix, not an object key`);
  }
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new InvalidInputError(`${file} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const partSize = choosePartSize(size, opts.partSize ?? DEFAULT_PUBLISH_PART_SIZE);
  const limiter = opts.limiter ?? new Limiter(opts.concurrency ?? 4);
  const progress = (
    phase: PublishProgress['phase'],
    bytesDone: number,
    partsDone: number,
    partsTotal: number,
  ) => opts.onProgress?.({ file, key: dest.key, phase, bytesDone, bytesTotal: size, partsDone, partsTotal });

  const existing = await headObjectIfExists(client, dest, signal ? { signal } : {});
  progress('hashing', 0, 0, 0);
  const plan = await hashFile(file, size, partSize, signal);
  const result: PublishedObject = {
    file,
    bucket: dest.bucket,
    key: dest.key,
    url: formatS3Url(dest),
    size,
    sha256: plan.sha256,
    etag: existing?.etag ?? '',
    partSize,
    parts: plan.parts.length,
    uploadedParts: 0,
    reusedParts: 0,
    skipped: false,
  };
  if (existing && existing.size === size && existing.metadata[META_SHA256] === plan.sha256) {
    result.skipped = true;
    progress('skipped', size, plan.parts.length, plan.parts.length);
    return result;
  }
  const metadata: Record<string, string> = {
    ...opts.metadata,
    [META_SHA256]: plan.sha256,
    [META_PART_SIZE]: String(partSize),
  };
  const attempts = opts.attempts ?? 3;

  if (plan.parts.length <= 1) {
    const part = plan.parts[0] ?? { n: 1, start: 0, size: 0, md5: md5Of(), sha256: sha256Of() };
    const out = await withRetry(attempts, loc, signal, () =>
      limiter.run(async () => {
        const body = size === 0 ? '' : createReadStream(file, { start: 0, end: size - 1 });
        try {
          return await client.send(
            new (await s3sdk()).PutObjectCommand({
              Bucket: dest.bucket,
              Key: dest.key,
              Body: body,
              ContentLength: size,
              ContentMD5: part.md5.toString('base64'),
              ChecksumSHA256: part.sha256.toString('base64'),
              ContentType: opts.contentType ?? 'application/octet-stream',
              Metadata: metadata,
            }),
            signal ? { abortSignal: signal } : {},
          );
        } finally {
          if (typeof body !== 'string') body.destroy();
        }
      }, signal),
    );
    if (out.ChecksumSHA256 !== undefined && out.ChecksumSHA256 !== part.sha256.toString('base64')) {
      throw new S3ChecksumError(loc, 'the store computed a different SHA-256 for the uploaded object');
    }
    result.etag = out.ETag ?? '';
    result.uploadedParts = 1;
    await checkStored(client, dest, size, signal);
    progress('done', size, 1, 1);
    return result;
  }

  // Multipart: resume an unfinished upload of this key when its parts are ours, else start one.
  const resumable = await findResumable(client, dest, plan, signal);
  let uploadId: string;
  let sha256Parts: boolean;
  const done = new Map<number, { etag: string; checksum?: string }>();
  if (resumable) {
    uploadId = resumable.uploadId;
    sha256Parts = resumable.sha256;
    for (const [n, v] of resumable.done) done.set(n, v);
    result.resumedUploadId = uploadId;
    result.reusedParts = done.size;
  } else {
    try {
      const created = await client.send(
        new (await s3sdk()).CreateMultipartUploadCommand({
          Bucket: dest.bucket,
          Key: dest.key,
          ContentType: opts.contentType ?? 'application/octet-stream',
          Metadata: metadata,
          ChecksumAlgorithm: 'SHA256',
        }),
        signal ? { abortSignal: signal } : {},
      );
      if (!created.UploadId)
        throw new S3Error('S3_FAILED', loc, 'CreateMultipartUpload returned no UploadId');
      uploadId = created.UploadId;
      // A store that ignores the algorithm does not echo it: then parts carry Content-MD5 only.
      sha256Parts = created.ChecksumAlgorithm === 'SHA256';
    } catch (err) {
      throw toS3Error(err, loc, signal);
    }
  }

  let bytesDone = plan.parts.filter((p) => done.has(p.n)).reduce((s, p) => s + p.size, 0);
  progress('uploading', bytesDone, done.size, plan.parts.length);
  const missing = plan.parts.filter((p) => !done.has(p.n));
  try {
    await fanOut(
      missing,
      async (part, inner) => {
        throwIfAborted(inner);
        const r = await uploadPart(client, dest, uploadId, file, part, sha256Parts, attempts, inner);
        done.set(part.n, r);
        result.uploadedParts++;
        bytesDone += part.size;
        progress('uploading', bytesDone, done.size, plan.parts.length);
      },
      { limiter, ...(signal ? { signal } : {}) },
    );
  } catch (err) {
    if (signal?.aborted)
      throw new AbortedError(`${formatS3Url(dest)}: upload aborted`, { cause: signal.reason });
    throw toS3Error(err, loc, signal);
  }
  throwIfAborted(signal);

  const parts: Part[] = plan.parts.map((p) => {
    const d = done.get(p.n)!;
    const part: Part = { PartNumber: p.n, ETag: d.etag };
    if (sha256Parts) part.ChecksumSHA256 = d.checksum ?? p.sha256.toString('base64');
    return part;
  });
  try {
    const out = await client.send(
      new (await s3sdk()).CompleteMultipartUploadCommand({
        Bucket: dest.bucket,
        Key: dest.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
      signal ? { abortSignal: signal } : {},
    );
    const composite = `${createHash('sha256')
      .update(Buffer.concat(plan.parts.map((p) => p.sha256)))
      .digest('base64')}-${plan.parts.length}`;
    if (out.ChecksumSHA256?.includes('-') && out.ChecksumSHA256 !== composite) {
      throw new S3ChecksumError(
        loc,
        'the completed object has a different composite SHA-256 than the local file',
      );
    }
    result.etag = out.ETag ?? '';
  } catch (err) {
    throw toS3Error(err, loc, signal);
  }
  await checkStored(client, dest, size, signal);
  progress('done', size, plan.parts.length, plan.parts.length);
  return result;
}

function choosePartSize(size: number, requested: number): number {
  if (!Number.isInteger(requested) || requested < S3_MIN_PART_SIZE || requested > S3_MAX_PART_SIZE) {
    throw new InvalidInputError(`part size ${requested} is outside S3's limits (5 MiB … 5 GiB)`, {
      hint: 'choose a part size between 5MiB and 5GiB',
    });
  }
  if (Math.ceil(size / requested) <= S3_MAX_PARTS) return requested;
  // Deterministic for a given size, so a resumed upload computes the same parts.
  return Math.ceil(size / S3_MAX_PARTS / MiB) * MiB;
}

function md5Of(data: Buffer = Buffer.alloc(0)): Buffer {
  return createHash('md5').update(data).digest();
}

function sha256Of(data: Buffer = Buffer.alloc(0)): Buffer {
  return createHash('sha256').update(data).digest();
}

/** One sequential pass: the file's sha256 and each part's SHA-256 and MD5. */
async function hashFile(file: string, size: number, partSize: number, signal?: AbortSignal): Promise<Plan> {
  const whole = createHash('sha256');
  const parts: LocalPart[] = [];
  let pos = 0;
  let partStart = 0;
  let md5 = createHash('md5');
  let sha = createHash('sha256');
  const finishPart = () => {
    parts.push({
      n: parts.length + 1,
      start: partStart,
      size: pos - partStart,
      md5: md5.digest(),
      sha256: sha.digest(),
    });
    partStart = pos;
    md5 = createHash('md5');
    sha = createHash('sha256');
  };
  const stream = createReadStream(file, { highWaterMark: MiB, ...(signal ? { signal } : {}) });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const room = partStart + partSize - pos;
        const piece = chunk.subarray(off, off + room);
        whole.update(piece);
        md5.update(piece);
        sha.update(piece);
        pos += piece.length;
        off += piece.length;
        if (pos - partStart === partSize) finishPart();
      }
    }
  } catch (err) {
    throwIfAborted(signal);
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (pos !== size) throw new InvalidInputError(`${file} changed size while it was being read`);
  if (pos > partStart || parts.length === 0) finishPart();
  if (size === 0) parts.length = 0;
  return { sha256: whole.digest('hex'), parts };
}

async function withRetry<T>(
  attempts: number,
  loc: { bucket: string; key: string },
  signal: AbortSignal | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retry =
        !signal?.aborted && attempt < attempts && (isS3Retryable(err) || s3ErrorCode(err) === 'BadDigest');
      if (!retry) throw toS3Error(err, loc, signal);
      await s3RetryPause(attempt, signal);
    }
  }
}

async function uploadPart(
  client: S3Client,
  dest: S3Url,
  uploadId: string,
  file: string,
  part: LocalPart,
  sha256Parts: boolean,
  attempts: number,
  signal: AbortSignal,
): Promise<{ etag: string; checksum?: string }> {
  const loc = { bucket: dest.bucket, key: dest.key };
  const sha = part.sha256.toString('base64');
  const out = await withRetry(attempts, loc, signal, async () => {
    // A fresh stream per attempt: a consumed body cannot be sent again.
    const body = createReadStream(file, { start: part.start, end: part.start + part.size - 1 });
    try {
      return await client.send(
        new (await s3sdk()).UploadPartCommand({
          Bucket: dest.bucket,
          Key: dest.key,
          UploadId: uploadId,
          PartNumber: part.n,
          Body: body,
          ContentLength: part.size,
          ContentMD5: part.md5.toString('base64'),
          ...(sha256Parts ? { ChecksumSHA256: sha } : {}),
        }),
        { abortSignal: signal },
      );
    } finally {
      body.destroy();
    }
  });
  if (!out.ETag) throw new S3Error('S3_FAILED', loc, `UploadPart ${part.n} returned no ETag`);
  if (sha256Parts && out.ChecksumSHA256 !== undefined && out.ChecksumSHA256 !== sha) {
    throw new S3ChecksumError(loc, `the store computed a different SHA-256 for part ${part.n}`);
  }
  return sha256Parts ? { etag: out.ETag, checksum: sha } : { etag: out.ETag };
}

interface Resumable {
  uploadId: string;
  sha256: boolean;
  done: Map<number, { etag: string; checksum?: string }>;
}

/** The most recent unfinished upload of this key whose listed parts all match the local file. */
async function findResumable(
  client: S3Client,
  dest: S3Url,
  plan: Plan,
  signal: AbortSignal | undefined,
): Promise<Resumable | undefined> {
  const loc = { bucket: dest.bucket, key: dest.key };
  const sendOpts = signal ? { abortSignal: signal } : {};
  const candidates: Array<{ uploadId: string; initiated: number }> = [];
  try {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const out = await client.send(
        new (await s3sdk()).ListMultipartUploadsCommand({
          Bucket: dest.bucket,
          Prefix: dest.key,
          ...(keyMarker ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
        }),
        sendOpts,
      );
      for (const u of out.Uploads ?? []) {
        if (u.Key === dest.key && u.UploadId) {
          candidates.push({ uploadId: u.UploadId, initiated: u.Initiated?.getTime() ?? 0 });
        }
      }
      if (!out.IsTruncated || (!out.NextKeyMarker && !out.NextUploadIdMarker)) break;
      keyMarker = out.NextKeyMarker;
      uploadIdMarker = out.NextUploadIdMarker;
    }
  } catch (err) {
    // A store without ListMultipartUploads (s3rver, some S3-compatible stores): nothing to resume,
    // the upload starts from the first part.
    if (s3ErrorCode(err) === 'NotImplemented' && !signal?.aborted) return undefined;
    throw toS3Error(err, loc, signal);
  }
  candidates.sort((a, b) => b.initiated - a.initiated);
  for (const c of candidates) {
    let algorithm: string | undefined;
    const listed: Part[] = [];
    try {
      let marker: string | undefined;
      for (;;) {
        const out = await client.send(
          new (await s3sdk()).ListPartsCommand({
            Bucket: dest.bucket,
            Key: dest.key,
            UploadId: c.uploadId,
            ...(marker ? { PartNumberMarker: marker } : {}),
          }),
          sendOpts,
        );
        algorithm ??= out.ChecksumAlgorithm;
        listed.push(...(out.Parts ?? []));
        if (!out.IsTruncated || !out.NextPartNumberMarker) break;
        marker = out.NextPartNumberMarker;
      }
    } catch (err) {
      const mapped = toS3Error(err, loc, signal);
      if (mapped instanceof S3Error && mapped.code === 'S3_NO_SUCH_UPLOAD') continue;
      throw mapped;
    }
    const done = new Map<number, { etag: string; checksum?: string }>();
    let mismatch = false;
    for (const p of listed) {
      const local = p.PartNumber === undefined ? undefined : plan.parts[p.PartNumber - 1];
      if (!local) continue; // beyond our parts: not named in Complete, so harmless
      if (p.Size !== local.size || !p.ETag) {
        mismatch = true;
        break;
      }
      const sha = local.sha256.toString('base64');
      const md5hex = local.md5.toString('hex');
      const matches =
        p.ChecksumSHA256 !== undefined ? p.ChecksumSHA256 === sha : p.ETag.replace(/"/g, '') === md5hex;
      if (!matches) {
        mismatch = true;
        break;
      }
      done.set(
        local.n,
        p.ChecksumSHA256 !== undefined ? { etag: p.ETag, checksum: p.ChecksumSHA256 } : { etag: p.ETag },
      );
    }
    if (!mismatch && done.size > 0) return { uploadId: c.uploadId, sha256: algorithm === 'SHA256', done };
  }
  return undefined;
}

async function checkStored(client: S3Client, dest: S3Url, size: number, signal: AbortSignal | undefined) {
  const info = await headObject(client, dest, signal ? { signal } : {});
  if (info.size !== size) {
    throw new S3ChecksumError(dest, `the stored object is ${info.size} bytes, the file is ${size}`);
  }
}
