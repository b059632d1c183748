import type { KeyObject } from 'node:crypto';
import type { HashPool } from '../../digest/index.ts';
import type { BundleSignature } from '../lading-json.ts';
import type { BundleSourceKind, PartDigest } from '../source.ts';

/** The shape of what `verifyBundle` returns and takes (see `verify/index.ts`). */

export type ProblemKind =
  | 'digest'
  | 'missing'
  | 'extra'
  | 'unsafe'
  | 'truncated'
  | 'signature'
  | 'order'
  | 'schema'
  | 'duplicate'
  /** `lading-load verify --image-key`: a carried upstream signature does not verify with the site's key. */
  | 'upstream-signature';

export interface VerifyProblem {
  /** The member (or part file) at fault. */
  member: string;
  kind: ProblemKind;
  message: string;
}

export interface ArtifactReport {
  ref: string;
  digest: string;
  mediaType: string;
  ok: boolean;
  problems: string[];
  /** Blobs of its graph a differential bundle leaves out (expected at the target). */
  expectedAtTarget: string[];
  /** Images whose platform filter wrote a new index: the digest upstream (lading.json). */
  upstreamDigest?: string;
  /** Supply-chain artifacts carried with it (lading.json extras[]). */
  extras?: number;
  /** Upstream signatures checked at build time (lading.json signatures[]). */
  signatures?: BundleSignature[];
}

export interface FileReport {
  path: string;
  ok: boolean;
  problems: string[];
}

export interface PartReport {
  name: string;
  ok: boolean;
  sha256: string | null;
  problems: string[];
}

export interface VerifyReport {
  ok: boolean;
  bundle: { name: string | null; version: string | null; path: string; kind: BundleSourceKind };
  signature: { ok: boolean; keyFingerprint: string };
  /** Regular-file members seen. */
  members: number;
  /** Member data bytes hashed. */
  bytes: number;
  images: ArtifactReport[];
  charts: ArtifactReport[];
  files: FileReport[];
  /** Split bundles only. */
  parts: PartReport[];
  /** Differential bundles: blobs referenced but left out, expected at the target. */
  expectedAtTarget: string[];
  since: { name: string; version: string; digest: string } | null;
  /** `sha256:<hex>` of the SHA256SUMS member as stored (what the signature covers), when present. */
  sumsDigest: string | null;
  problems: VerifyProblem[];
}

export interface VerifyProgress {
  /** The member being hashed (on the parallel path: the member or file a worker last reported on). */
  member: string;
  /** Members done so far. */
  members: number;
  /**
   * Bytes of the source verified so far. On the parallel path (local tar or split bundle): the
   * small members read by the walk, then the share of the workers' hashing done, scaled so that
   * it ends at `totalBytes` (a split bundle is hashed twice, by member and by part).
   */
  bytes: number;
  /** Total bytes of the source. */
  totalBytes: number;
}

export interface VerifyOptions {
  /** The release public key: SPKI PEM text, a path to a PEM file, or a KeyObject. */
  publicKey: string | Uint8Array | KeyObject;
  signal?: AbortSignal;
  onProgress?: (p: VerifyProgress) => void;
  /**
   * Tar and split bundles: called with the sha256 of each file (the tar, or each part) as it
   * streams past — hashed in the same pass (costs CPU, no second read). Not called for a
   * directory, nor for a file the pass did not read to its end.
   */
  onFile?: (file: PartDigest) => void;
  /**
   * Local tar and split bundles hash their large members (and whole files, for `onFile` and
   * the parts of a split bundle) in worker threads, in parallel: in this pool when given (the
   * caller closes it), else in one of min(4, cores) workers made for this call and closed.
   */
  hashPool?: HashPool;
}
