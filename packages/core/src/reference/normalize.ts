/**
 * Docker's normalisation of "familiar" names (`nginx`, `user/app`) to fully qualified ones
 * (`docker.io/library/nginx`, `docker.io/user/app`), and back.
 */

/** Registry that names without one belong to (Docker Hub). */
export const DEFAULT_REGISTRY = 'docker.io';
/** Docker Hub's old "index" name; normalised to DEFAULT_REGISTRY. */
export const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
/** Namespace of Docker Hub's official images. */
export const OFFICIAL_REPOSITORY_PREFIX = 'library/';
/** Tag Docker assumes when neither tag nor digest is given. */
export const DEFAULT_TAG = 'latest';

const LOCALHOST = 'localhost';

/**
 * Lowercase as Go's strings.ToLower does for everything that can matter here: JavaScript maps
 * U+0130 (capital I with dot) to "i" plus a combining dot, Go to a plain "i".
 */
export function goToLower(s: string): string {
  return s.replace(/\u0130/g, 'i').toLowerCase();
}

/**
 * Split input into the registry Docker would use and the rest (path plus any tag and digest),
 * deciding only from the first "/"-separated component:
 * - no "/" at all: a Docker Hub official image (`nginx` → docker.io, `library/nginx`);
 * - `localhost`: always a registry;
 * - `index.docker.io`: Docker Hub;
 * - contains "." or ":" (`example.com`, `host:5000`, `[::1]:5000`): a registry;
 * - contains uppercase: a registry (paths are lowercase), e.g. `Foo/bar`;
 * - anything else: the first path component on Docker Hub (`user/app`).
 * On Docker Hub a single-component path gets the `library/` namespace.
 */
export function splitRegistry(input: string): { registry: string; remainder: string } {
  const slash = input.indexOf('/');
  if (slash === -1) {
    // Bare familiar names ("ubuntu", "ubuntu:22.04"); Docker treats even "localhost" or
    // "example.com" alone as an official image name.
    return { registry: DEFAULT_REGISTRY, remainder: OFFICIAL_REPOSITORY_PREFIX + input };
  }
  const first = input.slice(0, slash);
  const rest = input.slice(slash + 1);
  let registry: string;
  let remainder: string;
  if (first === LOCALHOST) {
    registry = first;
    remainder = rest;
  } else if (first === LEGACY_DEFAULT_REGISTRY) {
    registry = DEFAULT_REGISTRY;
    remainder = rest;
  } else if (first.includes('.') || first.includes(':') || goToLower(first) !== first) {
    registry = first;
    remainder = rest;
  } else {
    registry = DEFAULT_REGISTRY;
    remainder = input;
  }
  if (registry === DEFAULT_REGISTRY && !remainder.includes('/')) {
    remainder = OFFICIAL_REPOSITORY_PREFIX + remainder;
  }
  return { registry, remainder };
}

/**
 * Docker's familiar form of a name: Docker Hub's registry is dropped, and so is `library/` when
 * nothing but the image name follows it (`docker.io/library/foo/bar` stays `library/foo/bar`).
 */
export function familiarize(registry: string, repository: string): string {
  if (registry !== DEFAULT_REGISTRY) {
    return registry === '' ? repository : `${registry}/${repository}`;
  }
  if (repository.startsWith(OFFICIAL_REPOSITORY_PREFIX)) {
    const short = repository.slice(OFFICIAL_REPOSITORY_PREFIX.length);
    if (!short.includes('/')) return short;
  }
  return repository;
}
