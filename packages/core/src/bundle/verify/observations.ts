import type { Digest } from '../../digest/index.ts';
import type { ParsedManifest } from '../../model/index.ts';
import type { PartDigest } from '../source.ts';
import type { ProblemKind } from './report.ts';

/**
 * What the hashing of a bundle hands to the checks: data only, in the order a streaming pass
 * meets it, however the bytes were actually read.
 */

/** A member hashed. */
export interface HashedMember {
  name: string;
  /** The name of an earlier member it duplicates (same name, or differing only in case). */
  earlier: string | undefined;
  isMeta: boolean;
  /** The digest its name gives (`blobs/<alg>/<hex>`), for a blob. */
  blobDigest: Digest | undefined;
  size: number;
  /** sha256 hex of its data. */
  hex: string;
  /** The hex of the algorithm in a non-sha256 blob name (`blobs/sha512/…`). */
  namedHex?: string | undefined;
  /** The bytes of a metadata member (its first occurrence). */
  data?: Buffer | undefined;
}

export type Observation =
  | { type: 'member'; member: HashedMember }
  | { type: 'problem'; member: string; kind: ProblemKind; message: string }
  /** A part of a split bundle, hashed whole. */
  | { type: 'part'; part: PartDigest };

export interface HashedBundle {
  /** In stored order: each part where a streaming pass would have finished reading it. */
  observations: Observation[];
  /** Blobs small enough to be manifests, whose content matches their name, parsed. */
  manifests: Map<string, ParsedManifest>;
  /** Members the archive (or a file of it) ends inside. */
  truncated: Set<string>;
  /** Why hashing stopped before the end (bad signature, too many unlisted members). */
  stopped: string | undefined;
  /** Regular-file members hashed. */
  members: number;
  /** Member data bytes hashed. */
  bytes: number;
}
