import { InvalidInputError } from '../errors/index.ts';

/**
 * Why a reference was rejected. The values are the names of the errors Docker's reference library
 * (and go-digest, for the digest kinds) returns, so behaviour can be compared case by case.
 */
export const ReferenceErrorReason = {
  /** `ErrNameEmpty`: the input is empty. */
  NameEmpty: 'ErrNameEmpty',
  /** `ErrNameContainsUppercase`: the repository path has uppercase letters. */
  NameContainsUppercase: 'ErrNameContainsUppercase',
  /** `ErrNameTooLong`: the repository path is longer than 255 characters. */
  NameTooLong: 'ErrNameTooLong',
  /** `ErrReferenceInvalidFormat`: the string does not match the reference grammar. */
  ReferenceInvalidFormat: 'ErrReferenceInvalidFormat',
  /** `ErrTagInvalidFormat`: a tag given on its own (withTag) is not a valid tag. */
  TagInvalidFormat: 'ErrTagInvalidFormat',
  /** `ErrDigestInvalidFormat`: the digest is malformed (wrong length, uppercase hex, ...). */
  DigestInvalidFormat: 'ErrDigestInvalidFormat',
  /** `ErrDigestUnsupported` (go-digest): well-formed digest with an unknown algorithm. */
  DigestUnsupported: 'ErrDigestUnsupported',
  /** `ErrNameNotCanonical`: parseNamed was given a name that is not fully qualified. */
  NameNotCanonical: 'ErrNameNotCanonical',
  /**
   * A 64-character hex string used as a name (an image ID); Docker rejects it with
   * "invalid repository name (...), cannot specify 64-byte hexadecimal strings".
   */
  NameIsIdentifier: 'ErrNameIsIdentifier',
} as const;
export type ReferenceErrorReason = (typeof ReferenceErrorReason)[keyof typeof ReferenceErrorReason];

const HINT =
  'a valid reference looks like nginx:1.27.3, registry.example.com:5000/team/app:v1 or app@sha256:<64 hex>';

/** An image reference that Docker would not accept. Tell kinds apart by `reason`, not by message. */
export class InvalidReferenceError extends InvalidInputError {
  override readonly code = 'INVALID_REFERENCE';
  /** What is wrong, named after Docker's error kinds. */
  readonly reason: ReferenceErrorReason;
  /** The input as given. */
  readonly reference: string;

  constructor(reference: string, reason: ReferenceErrorReason, detail: string, hint: string = HINT) {
    super(`invalid image reference ${JSON.stringify(reference)}: ${detail}`, { hint });
    this.reason = reason;
    this.reference = reference;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), reason: this.reason, reference: this.reference };
  }
}
