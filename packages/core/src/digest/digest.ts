import { createHash, type Hash } from 'node:crypto';
import { InvalidInputError } from '../errors/index.ts';

/** A content digest, `algorithm:hex` (OCI image spec, descriptor.md#digests). */
export type Digest = `${string}:${string}`;

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export class InvalidDigestError extends InvalidInputError {
  override readonly code = 'INVALID_DIGEST';
  readonly value: string;
  constructor(value: string, reason: string) {
    super(`invalid digest "${value}": ${reason}`, {
      hint: 'a digest looks like sha256:<64 lowercase hex characters>',
    });
    this.value = value;
  }
}

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Parse and validate a digest; only sha256 and sha512 are accepted. */
export function parseDigest(value: string): ParsedDigest {
  const i = value.indexOf(':');
  if (i <= 0) throw new InvalidDigestError(value, 'missing "algorithm:" prefix');
  const algorithm = value.slice(0, i);
  const hex = value.slice(i + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidDigestError(value, `unsupported algorithm "${algorithm}" (sha256 or sha512)`);
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidDigestError(value, `expected ${HEX_LENGTH[algorithm]} lowercase hex characters`);
  }
  return { algorithm, hex };
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Validate and return the digest typed as such. */
export function asDigest(value: string): Digest {
  parseDigest(value);
  return value as Digest;
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): {
  hash: Hash;
  digest(): Digest;
} {
  const hash = createHash(algorithm);
  return { hash, digest: () => `${algorithm}:${hash.digest('hex')}` as Digest };
}

/** Digest of bytes held in memory (manifests, configs, small metadata only). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** The hex part of a digest (the file name under blobs/<alg>/). */
export function digestHex(digest: Digest): string {
  return parseDigest(digest).hex;
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return parseDigest(digest).algorithm;
}
