import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { AbortedError, InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { type AtomicFile, openAtomic } from '../util/atomic-file.ts';
import { fanOut, Limiter } from '../util/index.ts';
import { isS3Retryable, S3ChecksumError, S3Error, s3RetryPause, toS3Error } from './errors.ts';
import { headObject } from './head.ts';
import { META_SHA256 } from './meta.ts';
import { s3sdk } from './sdk.ts';
import { formatS3Url, parseS3Url, type S3Url } from './url.ts';

const MiB = 1024 * 1024;
export const DEFAULT_FETCH_PART_SIZE = 16 * MiB;

export interface FetchProgress {
  key: string;
  bytesDone: number;
  bytesTotal: number;
}

export interface FetchOptions {
  client: S3Client;
  /** Parallel ranged GETs when no `limiter` is given (default 4). */
  concurrency?: number;
  limiter?: Limiter;
  /** Size of each ranged GET (default 16 MiB). */
  partSize?: number;
  /** The object's sha256, hex or `sha256:<hex>` (e.g. from a parts `.sha256` file). */
  expectedSha256?: string;
  /**
   * Attempts per range when its body breaks off (default 3); a retry continues where it stopped.
   * A request that fails outright was already retried by the SDK (`maxAttempts`), and is not
   * retried again here: a range is sent at most max(attempts, maxAttempts) times, never their product.
   */
  attempts?: number;
  signal?: AbortSignal;
  onProgress?: (p: FetchProgress) => void;
}

export interface FetchResult {
  bucket: string;
  key: string;
  url: string;
  output: string;
  size: number;
  /** sha256 (hex) of the bytes written to `output`. */
  sha256: string;
  etag: string;
  /**
   * What the sha256 was checked against: `expected` (the caller's expectedSha256), `metadata`
   * (the `lading-sha256` that publish stored on the object), or `none` (neither was available:
   * only the size was checked; the bundle's own signature and SHA256SUMS still are).
   */
  verifiedAgainst: 'expected' | 'metadata' | 'none';
}

/**
 * Download `s3://bucket/key` to `output` with parallel ranged GETs.
 *
 * Ranges are written at their offsets into `.<name>.tmp-<pid>-<random>` beside `output`; every GET
 * carries `If-Match: <etag>` so a replaced object fails the fetch instead of mixing versions.
 * Hashing runs in order alongside the downloads: as each range completes in sequence, its bytes
 * are read back from the temporary file (the page cache, in practice) and hashed, so memory stays
 * bounded (one 1 MiB buffer) whatever the order in which ranges arrive. The sha256 is checked
 * against `expectedSha256`, else the object's `lading-sha256` metadata (written by publish:
 * it catches corruption at rest or in transit; tampering is caught by the bundle's signature).
 * Only a complete, verified file is renamed to `output`; on any failure nothing is left there.
 */
export async function fetchObject(
  src: string | S3Url,
  output: string,
  opts: FetchOptions,
): Promise<FetchResult> {
  const url = typeof src === 'string' ? parseS3Url(src, { requireKey: true }) : src;
  const { client, signal } = opts;
  const loc = { bucket: url.bucket, key: url.key };
  const partSize = opts.partSize ?? DEFAULT_FETCH_PART_SIZE;
  if (!Number.isInteger(partSize) || partSize < 1)
    throw new InvalidInputError(`invalid part size ${partSize}`);
  const expected = normaliseSha256(opts.expectedSha256);
  const attempts = opts.attempts ?? 3;
  const limiter = opts.limiter ?? new Limiter(opts.concurrency ?? 4);

  const info = await headObject(client, url, signal ? { signal } : {});
  const size = info.size;
  const wanted = expected ?? info.metadata[META_SHA256];
  const verifiedAgainst: FetchResult['verifiedAgainst'] = expected
    ? 'expected'
    : info.metadata[META_SHA256]
      ? 'metadata'
      : 'none';

  let file: AtomicFile;
  try {
    file = await openAtomic(output, { flags: 'wx+' });
  } catch (err) {
    throw new InvalidInputError(`cannot write ${output}: ${(err as Error).message}`, { cause: err });
  }
  const fh = file.handle;

  const ranges: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < size; start += partSize)
    ranges.push({ start, end: Math.min(size, start + partSize) });
  const completed: Array<Promise<void>> = [];
  const resolvers: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  for (let i = 0; i < ranges.length; i++) {
    completed.push(
      new Promise<void>((resolve, reject) => {
        resolvers[i] = { resolve, reject };
      }),
    );
    completed[i]!.catch(() => undefined);
  }

  let bytesDone = 0;
  const hash = createHash('sha256');
  // The ranges download in parallel (through the limiter); one more task hashes them in order
  // as they complete. fanOut aborts the rest on the first failure.
  const hashTask = ranges.length;
  const tasks = [...ranges.keys(), hashTask];

  try {
    try {
      await fanOut(
        tasks,
        async (i, inner) => {
          if (i !== hashTask) {
            try {
              await limiter.run(async () => {
                throwIfAborted(inner);
                await downloadRange(client, url, info.etag, ranges[i]!, fh, attempts, inner, (n) => {
                  bytesDone += n;
                  opts.onProgress?.({ key: url.key, bytesDone, bytesTotal: size });
                });
              }, inner);
              resolvers[i]!.resolve();
            } catch (err) {
              resolvers[i]!.reject(err);
              throw err;
            }
            return;
          }
          const buf = Buffer.allocUnsafe(Math.min(MiB, Math.max(size, 1)));
          for (let r = 0; r < ranges.length; r++) {
            await completed[r];
            const { start, end } = ranges[r]!;
            for (let pos = start; pos < end; ) {
              throwIfAborted(inner);
              const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
              if (bytesRead === 0)
                throw new S3Error('S3_FAILED', loc, `short read of the temporary file at ${pos}`);
              hash.update(buf.subarray(0, bytesRead));
              pos += bytesRead;
            }
          }
        },
        signal ? { signal } : {},
      );
    } catch (err) {
      if (signal?.aborted)
        throw new AbortedError(`${formatS3Url(url)}: fetch aborted`, { cause: signal.reason });
      throw toS3Error(err, loc, signal);
    }
    const sha256 = hash.digest('hex');
    if (wanted !== undefined && sha256 !== wanted) {
      throw new S3ChecksumError(
        loc,
        `downloaded content has sha256 ${sha256}, expected ${wanted}` +
          (verifiedAgainst === 'metadata' ? ' (the object’s lading-sha256 metadata)' : ''),
      );
    }
    await file.commit();
    return {
      bucket: url.bucket,
      key: url.key,
      url: formatS3Url(url),
      output,
      size,
      sha256,
      etag: info.etag,
      verifiedAgainst,
    };
  } catch (err) {
    await file.discard();
    throw err;
  }
}

function normaliseSha256(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const hex = v.startsWith('sha256:') ? v.slice('sha256:'.length) : v;
  if (!/^[a-f0-9]{64}$/.test(hex)) {
    throw new InvalidInputError(`invalid expected sha256 "${v}"`, {
      hint: 'give 64 lowercase hex characters',
    });
  }
  return hex;
}

async function downloadRange(
  client: S3Client,
  url: S3Url,
  etag: string,
  range: { start: number; end: number },
  fh: FileHandle,
  attempts: number,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<void> {
  const loc = { bucket: url.bucket, key: url.key };
  let pos = range.start;
  for (let attempt = 1; ; attempt++) {
    try {
      // The SDK already retried a failed request (maxAttempts): not again here. This loop only
      // retries a body that broke off, which the SDK cannot see.
      const out = await client
        .send(
          new (await s3sdk()).GetObjectCommand({
            Bucket: url.bucket,
            Key: url.key,
            Range: `bytes=${pos}-${range.end - 1}`,
            ...(etag ? { IfMatch: etag } : {}),
          }),
          { abortSignal: signal },
        )
        .catch((err: unknown) => {
          throw toS3Error(err, loc, signal);
        });
      const body = out.Body as Readable | undefined;
      if (!body) throw new S3Error('S3_FAILED', loc, 'GetObject returned no body');
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (pos + chunk.length > range.end) {
            throw new S3ChecksumError(
              loc,
              `the store sent more than the requested range ${range.start}-${range.end - 1}`,
            );
          }
          let off = 0;
          while (off < chunk.length) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos + off);
            off += bytesWritten;
          }
          pos += chunk.length;
          onBytes(chunk.length);
        }
      } finally {
        body.destroy();
      }
      if (pos !== range.end) {
        throw Object.assign(new Error(`range ended early at ${pos} of ${range.end}`), { code: 'ECONNRESET' });
      }
      return;
    } catch (err) {
      if (signal.aborted || attempt >= attempts || !isS3Retryable(err)) throw toS3Error(err, loc, signal);
      await s3RetryPause(attempt, signal);
    }
  }
}
