/** A spec after validation and normalisation (docs/spec-file.md). Paths are absolute. */
export interface Spec {
  /** Absolute path of the spec file. */
  file: string;
  /** Its folder: relative paths in the spec resolve against it. */
  dir: string;
  apiVersion: 'lading/v1';
  name: string;
  version: string;
  /** Platform filter for every image; undefined = every platform. */
  platforms: string[] | undefined;
  images: SpecImage[];
  charts: SpecChart[];
  releases: SpecRelease[];
  files: SpecFile[];
  /** Carry supply-chain artifacts (`extras:`, default true); an image may override it. */
  extras: boolean;
  /** `verify:` rules, in order. */
  verify: SpecVerifyRule[];
}

export interface SpecVerifyRule {
  /** Position in `verify:`, for messages (`verify[0]`). */
  index: number;
  /** Globs over full normalised references. */
  images: string[];
  /** PEM public keys (checked when the spec is read). */
  keys: SpecFile[];
}

export interface SpecImage {
  /** As written in the spec. */
  ref: string;
  /** Normalised: `docker.io/library/nginx:1.27.3` (Docker's rules, `latest` when untagged). */
  normalized: string;
  /** Where the spec lists it, for messages: `lading.yaml:12`. */
  place: string;
  /** This image's own platform filter (overrides the spec's). */
  platforms?: string[];
  /** This image's own `extras:` (overrides the spec's). */
  extras?: boolean;
}

export type SpecChartSource =
  | { type: 'repo'; url: string }
  /** `ref` as written (oci://…), `repository` without the scheme (host/path/name). */
  | { type: 'oci'; ref: string; repository: string }
  | { type: 'path'; path: string; format: 'dir' | 'archive' };

export type SpecChartImages =
  | { mode: 'discover' }
  | { mode: 'none' }
  /** `places[i]`: where the spec lists `refs[i]` (`lading.yaml:20`). */
  | { mode: 'list'; refs: string[]; places: string[] };

export interface SpecChart {
  /** Unique in the spec; releases refer to it. For repo charts, the chart's name in the repository. */
  name: string;
  source: SpecChartSource;
  /** Exact version or semver range as written; undefined = the highest stable version (or the local chart's). */
  version: string | undefined;
  versionKind: 'exact' | 'range' | undefined;
  images: SpecChartImages;
  /** Where the spec lists it, for messages: `lading.yaml:18`. */
  place: string;
}

export interface SpecFile {
  /** Relative to the spec folder, `/`-separated: where it goes under files/ in the bundle. */
  path: string;
  /** Absolute path on disk. */
  source: string;
}

export interface SpecRelease {
  name: string;
  chart: string;
  namespace: string | undefined;
  values: SpecFile[];
  profiles: Record<string, SpecFile[]>;
}
