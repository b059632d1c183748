/**
 * Image references, parsed and normalised exactly as Docker does
 * (github.com/distribution/reference).
 */

export { InvalidReferenceError, ReferenceErrorReason } from './errors.ts';
export {
  familiarName,
  familiarRepository,
  formatReference,
  referenceName,
  trimReference,
  withDefaultTag,
  withDigest,
  withTag,
} from './format.ts';
export { REPOSITORY_NAME_MAX_LENGTH } from './grammar.ts';
export {
  DEFAULT_REGISTRY,
  DEFAULT_TAG,
  LEGACY_DEFAULT_REGISTRY,
  OFFICIAL_REPOSITORY_PREFIX,
} from './normalize.ts';
export {
  isNamedReference,
  parseAnyReference,
  parseNamed,
  parseReference,
  parseRepository,
} from './parse.ts';
export type { AnyReference, DigestOnlyReference, Reference, Repository } from './types.ts';
