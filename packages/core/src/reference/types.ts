import type { Digest } from '../digest/index.ts';

/**
 * A parsed, normalised image reference (Docker's normalisation; `parseReference` is public API, docs/CONVENTIONS.md).
 *
 * `registry` is Docker's "domain" (`docker.io`, `localhost:5000`, `[::1]:5000`) and `repository`
 * Docker's "path" (`library/nginx`). `tag` and `digest` are present only when the input had them;
 * use `withDefaultTag` to get Docker's implicit `latest`.
 */
export interface Reference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** A repository without tag or digest. */
export interface Repository {
  registry: string;
  repository: string;
}

/** What `parseAnyReference` returns for a bare digest or image ID: no name at all. */
export interface DigestOnlyReference {
  digest: Digest;
  registry?: undefined;
  repository?: undefined;
  tag?: undefined;
}

export type AnyReference = Reference | DigestOnlyReference;
