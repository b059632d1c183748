import { ReferenceErrorReason } from './errors.ts';

/**
 * Digest validation as Docker performs it on the digest part of a reference (go-digest's
 * `Digest.Validate` with the algorithms Docker links in).
 *
 * Difference from `parseDigest` in ../digest: go-digest also knows `sha384` (96 hex characters),
 * so a reference such as `repo@sha384:<96 hex>` parses here as it does in Docker, although Lading
 * itself only hashes with sha256 and sha512 and will refuse such a digest when it verifies content.
 */
const HEX_LENGTH: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

/** go-digest's general digest shape, used to tell "unsupported" from "malformed". */
const GENERIC_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const LOWER_HEX_RE = /^[a-f0-9]+$/;

export interface DigestProblem {
  reason: ReferenceErrorReason;
  detail: string;
}

/** Return what is wrong with a digest, or undefined when Docker would accept it. */
export function checkDigest(value: string): DigestProblem | undefined {
  const i = value.indexOf(':');
  if (i <= 0 || i + 1 === value.length) {
    return { reason: ReferenceErrorReason.DigestInvalidFormat, detail: `digest "${value}" is malformed` };
  }
  const algorithm = value.slice(0, i);
  const encoded = value.slice(i + 1);
  const length = HEX_LENGTH.get(algorithm);
  if (length === undefined) {
    if (!GENERIC_DIGEST_RE.test(value)) {
      return { reason: ReferenceErrorReason.DigestInvalidFormat, detail: `digest "${value}" is malformed` };
    }
    return {
      reason: ReferenceErrorReason.DigestUnsupported,
      detail: `digest algorithm "${algorithm}" is not supported (sha256, sha384 or sha512)`,
    };
  }
  if (encoded.length !== length || !LOWER_HEX_RE.test(encoded)) {
    return {
      reason: ReferenceErrorReason.DigestInvalidFormat,
      detail: `digest "${value}" must have ${length} lowercase hex characters after "${algorithm}:"`,
    };
  }
  return undefined;
}
