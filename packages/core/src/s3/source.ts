import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { collectParts, parsePartName } from '../bundle/format.ts';
import { InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { isS3Retryable, S3Error, S3NotFoundError, s3RetryPause, toS3Error } from './errors.ts';
import { headObject, type S3ObjectInfo } from './head.ts';
import { s3sdk } from './sdk.ts';
import { formatS3Url, parseS3Url, type S3Url } from './url.ts';

const MiB = 1024 * 1024;

export interface OpenS3Options {
  client: S3Client;
  signal?: AbortSignal;
  /** Bytes per ranged GET of a sequential stream (default 32 MiB); a failed GET resumes where it stopped. */
  chunkSize?: number;
  /**
   * Attempts per ranged GET when its body breaks off (default 3). A request that fails outright
   * was already retried by the SDK (`maxAttempts`) and is not retried again here.
   */
  attempts?: number;
}

/**
 * Ranged, streaming reads of one S3 object, or of the objects of a split bundle read as their
 * concatenation. Same shape as `MultiPartFile` (bundle/parts.ts), so a bundle reader can read an
 * `s3://` bundle without a local copy. Every GET carries `If-Match` with the ETag seen when it was
 * opened: a replaced object fails the read (S3_CHANGED) instead of mixing versions.
 */
export interface S3ObjectSource {
  /** `s3://bucket/key` of each object, in order (one entry for an unsplit bundle). */
  readonly paths: readonly string[];
  readonly partSizes: readonly number[];
  /** Total size: the sum of the objects. */
  readonly size: number;
  /** Split bundles on S3: not checked here (the `.sha256` object can be fetched and compared). */
  readonly checksumFile: string | undefined;
  /** The first object's HeadObject answer (ETag, metadata such as `lading-sums-sha256`). */
  readonly info: S3ObjectInfo;
  /** `length` bytes at `offset` (fewer only past the end), across object boundaries. */
  read(offset: number, length: number, opts?: { signal?: AbortSignal }): Promise<Buffer>;
  /** Stream bytes [start, end) (end EXCLUSIVE, default: the size), as sequential ranged GETs. */
  createReadStream(start?: number, end?: number, opts?: { signal?: AbortSignal }): Readable;
  close(): Promise<void>;
}

interface Obj {
  url: S3Url;
  size: number;
  etag: string;
}

class S3Source implements S3ObjectSource {
  readonly paths: readonly string[];
  readonly partSizes: readonly number[];
  readonly size: number;
  readonly checksumFile: string | undefined = undefined;
  readonly info: S3ObjectInfo;
  private readonly objects: readonly Obj[];
  private readonly starts: number[];
  private readonly client: S3Client;
  private readonly chunkSize: number;
  private readonly attempts: number;

  constructor(client: S3Client, objects: Obj[], info: S3ObjectInfo, chunkSize: number, attempts: number) {
    this.client = client;
    this.objects = objects;
    this.info = info;
    this.chunkSize = chunkSize;
    this.attempts = attempts;
    this.paths = objects.map((o) => formatS3Url(o.url));
    this.partSizes = objects.map((o) => o.size);
    this.starts = [];
    let s = 0;
    for (const o of objects) {
      this.starts.push(s);
      s += o.size;
    }
    this.size = s;
  }

  private objectAt(offset: number): number {
    let lo = 0;
    let hi = this.objects.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private checkRange(start: number, end: number): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new RangeError(`invalid range [${start}, ${end})`);
    }
  }

  /** Bytes [start, end) of the whole, object by object, chunk by chunk, resuming after errors. */
  private async *bytes(start: number, end: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
    let pos = start;
    const stop = Math.min(end, this.size);
    while (pos < stop) {
      const i = this.objectAt(pos);
      const o = this.objects[i]!;
      const inObj = pos - this.starts[i]!;
      const n = Math.min(o.size - inObj, stop - pos, this.chunkSize);
      if (n <= 0) {
        pos = this.starts[i]! + o.size;
        continue;
      }
      let got = 0;
      for (let attempt = 1; got < n; attempt++) {
        throwIfAborted(signal);
        try {
          // A failed request was already retried by the SDK (maxAttempts); this loop retries
          // only a body that broke off, so attempts never multiply.
          const out = await this.client
            .send(
              new (await s3sdk()).GetObjectCommand({
                Bucket: o.url.bucket,
                Key: o.url.key,
                Range: `bytes=${inObj + got}-${inObj + n - 1}`,
                ...(o.etag ? { IfMatch: o.etag } : {}),
              }),
              signal ? { abortSignal: signal } : {},
            )
            .catch((err: unknown) => {
              throw toS3Error(err, o.url, signal);
            });
          const body = out.Body as Readable | undefined;
          if (!body) throw new S3Error('S3_FAILED', o.url, 'GetObject returned no body');
          try {
            for await (const chunk of body as AsyncIterable<Buffer>) {
              const take = chunk.length > n - got ? chunk.subarray(0, n - got) : chunk;
              got += take.length;
              yield take;
              if (got >= n) break;
            }
          } finally {
            body.destroy();
          }
          if (got < n) throw Object.assign(new Error('the response ended early'), { code: 'ECONNRESET' });
        } catch (err) {
          if (signal?.aborted || attempt >= this.attempts || !isS3Retryable(err))
            throw toS3Error(err, o.url, signal);
          await s3RetryPause(attempt, signal);
        }
      }
      pos += n;
    }
  }

  async read(offset: number, length: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    this.checkRange(offset, offset + length);
    const chunks: Buffer[] = [];
    for await (const c of this.bytes(offset, offset + length, opts.signal)) chunks.push(c);
    return Buffer.concat(chunks);
  }

  createReadStream(start = 0, end = this.size, opts: { signal?: AbortSignal } = {}): Readable {
    this.checkRange(start, end);
    return Readable.from(this.bytes(start, end, opts.signal), { objectMode: false });
  }

  async close(): Promise<void> {
    // Nothing is held open between requests; the client belongs to the caller.
  }
}

/**
 * Open `s3://bucket/key` for ranged, streaming reads. A key ending in `.000` (or a key that does
 * not exist while `KEY.000` does) opens the consecutive parts of a split bundle
 * (`KEY.000`, `KEY.001`, … as published) read as one.
 */
export async function openS3Object(src: string | S3Url, opts: OpenS3Options): Promise<S3ObjectSource> {
  const url = typeof src === 'string' ? parseS3Url(src, { requireKey: true }) : src;
  const { client, signal } = opts;
  const chunkSize = opts.chunkSize ?? 32 * MiB;
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new InvalidInputError(`invalid chunk size ${chunkSize}`);
  const attempts = opts.attempts ?? 3;
  const so = signal ? { signal } : {};
  let first: S3Url = url;
  let info: S3ObjectInfo;
  try {
    info = await headObject(client, url, so);
  } catch (err) {
    if (!(err instanceof S3NotFoundError) || parsePartName(url.key) !== undefined) throw err;
    first = { bucket: url.bucket, key: `${url.key}.000` };
    try {
      info = await headObject(client, first, so);
    } catch (err2) {
      if (err2 instanceof S3NotFoundError) throw err;
      throw err2;
    }
  }
  const objects: Obj[] = [{ url: first, size: info.size, etag: info.etag }];
  const m = parsePartName(first.key);
  if (m && m.index === 0) {
    const found = await listParts(client, { bucket: first.bucket, key: m.base }, signal);
    // Parts after a gap are left out: verify then names the missing part from the parts file.
    const { parts } = collectParts(m.base, m.width, found.keys());
    for (const key of parts.slice(1)) objects.push(found.get(key) as Obj);
  }
  return new S3Source(client, objects, info, chunkSize, attempts);
}

async function listParts(client: S3Client, base: S3Url, signal?: AbortSignal): Promise<Map<string, Obj>> {
  const out = new Map<string, Obj>();
  let token: string | undefined;
  try {
    do {
      const page = await client.send(
        new (await s3sdk()).ListObjectsV2Command({
          Bucket: base.bucket,
          Prefix: `${base.key}.`,
          ...(token ? { ContinuationToken: token } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
      for (const c of page.Contents ?? []) {
        if (!c.Key) continue;
        out.set(c.Key, { url: { bucket: base.bucket, key: c.Key }, size: c.Size ?? 0, etag: c.ETag ?? '' });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    throw toS3Error(err, base, signal);
  }
  return out;
}
