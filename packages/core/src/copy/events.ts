import type { Descriptor } from '../model/index.ts';

/** Counters of one copy (a `copy` call or a `copyGraph` call). */
export interface CopyStats {
  blobs: {
    /** Blobs whose bytes moved. */
    copied: number;
    /** Blobs already at the destination, or being copied there by another copy. */
    skipped: number;
    /** Blobs made present by a cross-repository mount. */
    mounted: number;
    /** Bytes moved (blobs only). */
    bytes: number;
  };
  manifests: { copied: number; skipped: number };
}

export type CopyEventType =
  | 'blob-start'
  | 'blob-bytes'
  | 'blob-done'
  | 'blob-skipped'
  | 'blob-mounted'
  | 'manifest-done'
  | 'manifest-skipped';

export interface CopyEvent {
  type: CopyEventType;
  desc: Descriptor;
  /** Bytes of this node moved so far (`blob-bytes`), or its size once done/skipped/mounted. */
  bytes: number;
  /** The label given to the copy (per-image grouping), e.g. the source reference. */
  label?: string;
  /** `blob-mounted`: the repository the blob was mounted from. */
  from?: string;
  /** `*-skipped`: already at the destination, being copied there by another copy, or left out (`leaveOut`). */
  reason?: 'exists' | 'in-flight' | 'left-out';
  /** A snapshot of the counters of this copy after the event. */
  totals: CopyStats;
}

export type ProgressListener = (event: CopyEvent) => void;

export function emptyStats(): CopyStats {
  return { blobs: { copied: 0, skipped: 0, mounted: 0, bytes: 0 }, manifests: { copied: 0, skipped: 0 } };
}

export function snapshot(s: CopyStats): CopyStats {
  return { blobs: { ...s.blobs }, manifests: { ...s.manifests } };
}
