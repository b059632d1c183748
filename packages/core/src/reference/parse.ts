import type { Digest } from '../digest/index.ts';
import { checkDigest } from './digest-rules.ts';
import { InvalidReferenceError, ReferenceErrorReason } from './errors.ts';
import { formatReference } from './format.ts';
import {
  DIGEST_SYNTAX_RE,
  IDENTIFIER_RE,
  NAME_RE,
  REFERENCE_RE,
  REPOSITORY_NAME_MAX_LENGTH,
  TAG_RE,
} from './grammar.ts';
import { goToLower, splitRegistry } from './normalize.ts';
import type { AnyReference, Reference, Repository } from './types.ts';

/**
 * Parse an image reference and normalise it as Docker does (Docker's `ParseNormalizedNamed`):
 * `nginx` → `{ registry: 'docker.io', repository: 'library/nginx' }`,
 * `index.docker.io/user/app:1` → `docker.io` + `user/app`, tag `1`,
 * `localhost:5000/a@sha256:…`, `[::1]:5000/a:tag`, and `name:tag@digest` with both kept.
 *
 * The tag is left undefined when not given (see `withDefaultTag`).
 *
 * Matches Docker case by case, with one deliberate difference: the empty string fails with
 * reason `ErrNameEmpty` (as Docker's `Parse` does) where `ParseNormalizedNamed` reports
 * `ErrReferenceInvalidFormat`. Like Docker, a first component that looks like a registry but is
 * not a valid host (`foo_bar.com/app`) yields an empty `registry` and the whole name as
 * `repository`.
 *
 * @throws InvalidReferenceError
 */
export function parseReference(input: string): Reference {
  if (input === '') {
    throw new InvalidReferenceError(input, ReferenceErrorReason.NameEmpty, 'the reference is empty');
  }
  if (IDENTIFIER_RE.test(input)) {
    throw new InvalidReferenceError(
      input,
      ReferenceErrorReason.NameIsIdentifier,
      'a 64-character hexadecimal string is an image ID, not a repository name',
      `refer to content by digest (repo@sha256:${input}), or spell a repository of that name with its registry (docker.io/${input})`,
    );
  }
  const { registry, remainder } = splitRegistry(input);
  const colon = remainder.indexOf(':');
  const remote = colon === -1 ? remainder : remainder.slice(0, colon);
  if (goToLower(remote) !== remote) {
    throw uppercaseError(input, remote);
  }
  return parseQualified(`${registry}/${remainder}`, input);
}

/**
 * Docker's `Parse` applied to the already qualified string; errors name the original input.
 */
function parseQualified(qualified: string, input: string): Reference {
  const m = REFERENCE_RE.exec(qualified);
  if (m === null) {
    const lowered = goToLower(qualified);
    if (lowered !== qualified && REFERENCE_RE.test(lowered)) {
      throw uppercaseError(input, undefined);
    }
    throw new InvalidReferenceError(input, ReferenceErrorReason.ReferenceInvalidFormat, diagnose(input));
  }
  const name = m[1] ?? '';
  const nameMatch = NAME_RE.exec(name);
  const registry = nameMatch?.[1] ?? '';
  const repository = nameMatch?.[2] ?? name;
  if (repository.length > REPOSITORY_NAME_MAX_LENGTH) {
    throw new InvalidReferenceError(
      input,
      ReferenceErrorReason.NameTooLong,
      `the repository name is ${repository.length} characters long; at most ${REPOSITORY_NAME_MAX_LENGTH} are allowed (registry not counted)`,
      'shorten the repository path, e.g. registry.example.com/team/app:1.0',
    );
  }
  const ref: Reference = { registry, repository };
  const tag = m[2];
  if (tag !== undefined && tag !== '') ref.tag = tag;
  const digest = m[3];
  if (digest !== undefined && digest !== '') {
    const problem = checkDigest(digest);
    if (problem !== undefined) {
      throw new InvalidReferenceError(
        input,
        problem.reason,
        problem.detail,
        'a digest looks like sha256:<64 lowercase hex characters>, e.g. nginx@sha256:0123…cdef',
      );
    }
    ref.digest = digest as Digest;
  }
  return ref;
}

function uppercaseError(input: string, remote: string | undefined): InvalidReferenceError {
  const what = remote === undefined ? 'the repository name' : `the repository name ${JSON.stringify(remote)}`;
  return new InvalidReferenceError(
    input,
    ReferenceErrorReason.NameContainsUppercase,
    `${what} must be lowercase`,
    `write the repository in lowercase, e.g. ${goToLower(input)}; only registry hosts and tags may contain uppercase`,
  );
}

/**
 * Say which part of an input that does not match the grammar is at fault. Only the message uses
 * this; the reason stays `ErrReferenceInvalidFormat`, as in Docker.
 */
function diagnose(input: string): string {
  let rest = input;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const digest = rest.slice(at + 1);
    if (!DIGEST_SYNTAX_RE.test(digest)) {
      return `digest ${JSON.stringify(digest)} is not of the form algorithm:hex (at least 32 hex characters)`;
    }
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    const tag = rest.slice(colon + 1);
    if (!TAG_RE.test(tag)) {
      return `tag ${JSON.stringify(tag)} is invalid: up to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`;
    }
    rest = rest.slice(0, colon);
  }
  if (rest === '') return 'the repository name is missing';
  if (/\s/.test(input)) return 'it contains whitespace';
  return (
    `the name ${JSON.stringify(rest)} is not valid: path components are lowercase letters and digits ` +
    `separated by ".", "_", "__" or "-", joined by "/"; a registry is host[:port] followed by "/"`
  );
}

/**
 * Docker's `ParseNamed`: like parseReference, but the input must already be fully qualified
 * (`docker.io/library/nginx:1.27`, not `nginx:1.27`), else reason `ErrNameNotCanonical`.
 *
 * @throws InvalidReferenceError
 */
export function parseNamed(input: string): Reference {
  const ref = parseReference(input);
  const canonical = formatReference(ref);
  if (canonical !== input) {
    throw new InvalidReferenceError(
      input,
      ReferenceErrorReason.NameNotCanonical,
      'the reference is not fully qualified',
      `write it as ${canonical}`,
    );
  }
  return ref;
}

/**
 * Docker's `ParseAnyReference`: a bare 64-hex image ID becomes the digest `sha256:<hex>`, a valid
 * digest on its own is returned as such, anything else is parsed with parseReference.
 *
 * @throws InvalidReferenceError
 */
export function parseAnyReference(input: string): AnyReference {
  if (IDENTIFIER_RE.test(input)) return { digest: `sha256:${input}` };
  if (checkDigest(input) === undefined) return { digest: input as Digest };
  return parseReference(input);
}

/** True when the reference has a name (is not digest-only). */
export function isNamedReference(ref: AnyReference): ref is Reference {
  return typeof ref.repository === 'string';
}

/**
 * Parse a repository name without tag or digest (`nginx`, `registry.example.com/team/app`),
 * normalised like parseReference.
 *
 * @throws InvalidReferenceError
 */
export function parseRepository(input: string): Repository {
  const ref = parseReference(input);
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new InvalidReferenceError(
      input,
      ReferenceErrorReason.ReferenceInvalidFormat,
      'expected a repository name without tag or digest',
      `use ${ref.registry === '' ? ref.repository : `${ref.registry}/${ref.repository}`}`,
    );
  }
  return { registry: ref.registry, repository: ref.repository };
}
