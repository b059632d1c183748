import type { Digest } from '../digest/index.ts';
import { InvalidReferenceError, ReferenceErrorReason } from './errors.ts';
import { DIGEST_SYNTAX_RE, TAG_RE } from './grammar.ts';
import { DEFAULT_TAG, familiarize } from './normalize.ts';
import type { Reference, Repository } from './types.ts';

function suffix(ref: Reference): string {
  return (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`);
}

/** `registry/repository` (Docker's `Name()`), e.g. `docker.io/library/nginx`. */
export function referenceName(ref: Repository): string {
  return ref.registry === '' ? ref.repository : `${ref.registry}/${ref.repository}`;
}

/**
 * The full reference (Docker's `String()`): `docker.io/library/nginx:1.27.3`,
 * `docker.io/library/nginx@sha256:…`, `docker.io/library/nginx:1.27.3@sha256:…`.
 */
export function formatReference(ref: Reference): string {
  return referenceName(ref) + suffix(ref);
}

/**
 * The short form Docker shows (Docker's `FamiliarString`): `nginx:1.27.3`, `user/app@sha256:…`,
 * `localhost:5000/app:1`. Docker Hub's registry and its `library/` namespace are left out.
 */
export function familiarName(ref: Reference): string {
  return familiarize(ref.registry, ref.repository) + suffix(ref);
}

/** The short form of the name alone, without tag or digest (Docker's `FamiliarName`). */
export function familiarRepository(ref: Repository): string {
  return familiarize(ref.registry, ref.repository);
}

/** Docker's `TagNameOnly`: add the tag `latest` when neither tag nor digest is given. */
export function withDefaultTag(ref: Reference): Reference {
  if (ref.tag !== undefined || ref.digest !== undefined) return ref;
  return { ...ref, tag: DEFAULT_TAG };
}

/**
 * Docker's `WithTag`: the reference with the tag replaced (a digest is kept).
 *
 * @throws InvalidReferenceError with reason `ErrTagInvalidFormat`
 */
export function withTag(ref: Reference, tag: string): Reference {
  if (!TAG_RE.test(tag)) {
    throw new InvalidReferenceError(
      `${referenceName(ref)}:${tag}`,
      ReferenceErrorReason.TagInvalidFormat,
      `tag ${JSON.stringify(tag)} is invalid: up to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`,
      'a valid tag looks like 1.27.3, v2-alpine or latest',
    );
  }
  return { ...ref, tag };
}

/**
 * Docker's `WithDigest`: the reference with the digest replaced (a tag is kept). Like Docker this
 * checks the digest's syntax only (algorithm:hex, at least 32 hex characters).
 *
 * @throws InvalidReferenceError with reason `ErrDigestInvalidFormat`
 */
export function withDigest(ref: Reference, digest: string): Reference {
  if (!DIGEST_SYNTAX_RE.test(digest)) {
    throw new InvalidReferenceError(
      `${referenceName(ref)}@${digest}`,
      ReferenceErrorReason.DigestInvalidFormat,
      `digest ${JSON.stringify(digest)} is not of the form algorithm:hex (at least 32 hex characters)`,
      'a digest looks like sha256:<64 lowercase hex characters>',
    );
  }
  return { ...ref, digest: digest as Digest };
}

/** Docker's `TrimNamed`: the repository without tag and digest. */
export function trimReference(ref: Reference): Repository {
  return { registry: ref.registry, repository: ref.repository };
}
