import { Transform, type TransformCallback } from 'node:stream';
import { VerificationError } from '../errors/index.ts';
import { createDigester, type Digest, digestAlgorithm } from './digest.ts';

/** What the bytes must be: a digest and, when known, an exact size. */
export interface Expected {
  digest: Digest;
  size?: number;
}

export class SizeMismatchError extends VerificationError {
  override readonly code = 'SIZE_MISMATCH';
  readonly digest: Digest;
  readonly expected: number;
  readonly actual: number;
  readonly source: string;
  readonly early: boolean;
  constructor(digest: Digest, expected: number, actual: number, source: string, early: boolean) {
    super(
      early
        ? `${source}: more than the declared ${expected} bytes arrived for ${digest}`
        : `${source}: ${digest} is ${actual} bytes, its descriptor says ${expected}`,
      { hint: 'the source serves content that differs from its descriptor; re-fetch it or check the source' },
    );
    this.digest = digest;
    this.expected = expected;
    this.actual = actual;
    this.source = source;
    this.early = early;
  }
}

export class DigestMismatchError extends VerificationError {
  override readonly code = 'DIGEST_MISMATCH';
  readonly expected: Digest;
  readonly actual: Digest;
  readonly source: string;
  constructor(expected: Digest, actual: Digest, source: string) {
    super(`${source}: content digest is ${actual}, expected ${expected}`, {
      hint: 'the content was changed or corrupted; fetch it again from a trusted source',
    });
    this.expected = expected;
    this.actual = actual;
    this.source = source;
  }
}

/**
 * A pass-through stream that hashes what flows through it, fails as soon as more bytes than
 * `expected.size` arrive, and fails at the end when the size or digest differ. Nothing is
 * buffered beyond the current chunk.
 */
export class VerifyingStream extends Transform {
  readonly expected: Expected;
  readonly source: string;
  private readonly digester;
  private seen = 0;

  constructor(expected: Expected, source = 'content') {
    super();
    this.expected = expected;
    this.source = source;
    this.digester = createDigester(digestAlgorithm(expected.digest));
  }

  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    const { size, digest } = this.expected;
    if (size !== undefined && this.seen > size) {
      cb(new SizeMismatchError(digest, size, this.seen, this.source, true));
      return;
    }
    this.digester.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { size, digest } = this.expected;
    if (size !== undefined && this.seen !== size) {
      cb(new SizeMismatchError(digest, size, this.seen, this.source, false));
      return;
    }
    const actual = this.digester.digest();
    if (actual !== digest) {
      cb(new DigestMismatchError(digest, actual, this.source));
      return;
    }
    cb();
  }
}

/** Hash a stream to completion without keeping it: digest and size. */
export async function digestStream(
  stream: AsyncIterable<Uint8Array>,
  algorithm: 'sha256' | 'sha512' = 'sha256',
): Promise<{ digest: Digest; size: number }> {
  const d = createDigester(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    d.hash.update(chunk);
    size += chunk.length;
  }
  return { digest: d.digest(), size };
}
