/**
 * What `lading-load diff OLD NEW` reports, as `--json` gives it. Digests are full;
 * the human view shortens them.
 */

/** One side of the comparison. */
export interface DiffSide {
  /** As given: a path or `s3://bucket/key`. */
  bundle: string;
  name: string;
  version: string;
  created: string;
  /** Verified with --key before the comparison. */
  verified: boolean;
  /** Fingerprint of the key it verified with. */
  keyFingerprint?: string;
  /** sha256 of SHA256SUMS: the bundle's identity. */
  sumsDigest: string;
  /** A differential bundle: its base (lading.json `since`). */
  since?: { name: string; version: string; digest: string; omittedBlobs: number };
}

export interface DiffImage {
  ref: string;
  digest: string;
  upstreamDigest: string;
  platforms: string[];
  size: number;
}

export interface MovedImage {
  ref: string;
  old: { digest: string; upstreamDigest: string; platforms: string[] };
  new: { digest: string; upstreamDigest: string; platforms: string[] };
  /** Upstream unchanged, bundled digest changed: the platform filter wrote another index. */
  upstreamSame: boolean;
}

export interface DiffChart {
  name: string;
  version: string;
  digest: string;
}

export interface ChangedChart {
  name: string;
  old: { version: string; digest: string };
  new: { version: string; digest: string };
}

export interface DiffRelease {
  name: string;
  chart: string;
  namespace?: string;
  values: string[];
}

export interface ChangedRelease {
  name: string;
  /** One line per changed field: `chart web → web-v2`, `values + values/ha.yaml`. */
  changes: string[];
}

/** A values file a release of either bundle names, compared as text. */
export interface ValuesDiff {
  path: string;
  status: 'added' | 'removed' | 'changed';
  /** Unified diff (`--- a/PATH`, `+++ b/PATH`, hunks); absent for binary or oversized files. */
  patch?: string;
  /** Why there is no patch. */
  note?: string;
}

export interface DiffFile {
  path: string;
  digest: string;
  size: number;
}

export interface ChangedFile {
  path: string;
  old: { digest: string; size: number };
  new: { digest: string; size: number };
}

/** A supply-chain artifact carried with an image (lading.json `images[].extras[]`). */
export interface DiffExtra {
  kind: string;
  digest: string;
  subject: string;
  tag?: string;
  artifactType?: string;
}

/** An upstream signature checked at build time (lading.json `images[].signatures[]`). */
export interface DiffSignature {
  digest: string;
  key: string;
  signature: string;
  scheme: string;
}

export interface SetChange<T> {
  ref: string;
  added: T[];
  removed: T[];
}

export interface BundleDiff {
  old: DiffSide;
  new: DiffSide;
  /** Both SHA256SUMS are the same: the bundles are identical. */
  identical: boolean;
  /** NEW is a differential bundle whose base is OLD (its `since.digest` is OLD's SHA256SUMS digest). */
  newBasedOnOld: boolean;
  platforms: { added: string[]; removed: string[] };
  images: { added: DiffImage[]; removed: DiffImage[]; moved: MovedImage[]; unchanged: number };
  charts: { added: DiffChart[]; removed: DiffChart[]; changed: ChangedChart[]; unchanged: number };
  releases: {
    added: DiffRelease[];
    removed: DiffRelease[];
    changed: ChangedRelease[];
    unchanged: number;
    values: ValuesDiff[];
  };
  files: { added: DiffFile[]; removed: DiffFile[]; changed: ChangedFile[]; unchanged: number };
  /**
   * Supply-chain extras and upstream signature results per image reference. `recorded` says
   * whether each bundle's lading.json has these fields at all (bundles made before they existed
   * do not): a difference against a bundle that records none is not a real change.
   */
  extras: { recorded: { old: boolean; new: boolean }; changes: SetChange<DiffExtra>[] };
  signatures: { recorded: { old: boolean; new: boolean }; changes: SetChange<DiffSignature>[] };
  /**
   * Blobs NEW holds that OLD neither holds nor lists as left out (`since.omittedBlobs`): what a
   * differential bundle of NEW against OLD would carry.
   */
  bytes: { newBlobs: number; newBytes: number; totalBlobs: number; totalBytes: number };
}
