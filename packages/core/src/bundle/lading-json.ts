import { z } from 'zod';
import type { Digest } from '../digest/index.ts';
import { digestSchema } from '../model/index.ts';

/** `lading.json`, the bundle manifest (docs/bundle-format.md §6), schemaVersion 1. Extend, never rename. */

const extraEntry = z.object({
  kind: z.enum(['sig', 'att', 'sbom', 'referrer']),
  digest: digestSchema,
  mediaType: z.string(),
  size: z.number().int().nonnegative(),
  artifactType: z.string().optional(),
  /** cosign tag scheme: `sha256-<hex>.sig|.att|.sbom` (pushed under the same tag). */
  tag: z.string().optional(),
  /** The manifest of the image it is about (a referrer's `subject`; the digest a cosign tag names). */
  subject: digestSchema,
});

const signatureEntry = z.object({
  /** Index of the spec's `verify:` rule that asked for it. */
  rule: z.number().int().nonnegative(),
  /** The manifest digest the signature covers. */
  digest: digestSchema,
  /** sha256 fingerprint of the key that verified it (DER SubjectPublicKeyInfo). */
  key: digestSchema,
  /** The manifest carrying the signature (an `extras[]` entry). */
  signature: digestSchema,
  scheme: z.enum(['cosign', 'sigstore-bundle']),
});

const imageEntry = z.object({
  ref: z.string().min(1),
  digest: digestSchema,
  upstreamDigest: digestSchema,
  mediaType: z.string(),
  platforms: z.array(z.string()),
  size: z.number().int().nonnegative(),
  /** Charts that asked for this image (discovery), when any. */
  from: z.array(z.string()).optional(),
  /**
   * Supply-chain artifacts carried with the image (docs/bundle-format.md §6.2): cosign tag-scheme `.sig`,
   * `.att`, `.sbom` manifests and OCI referrers, each about one manifest of the image (`subject`).
   */
  extras: z.array(extraEntry).optional(),
  /** Upstream signatures checked at build time by the spec's `verify:` rules. */
  signatures: z.array(signatureEntry).optional(),
  /**
   * A platform filter wrote a new index: the upstream index's own bytes are carried too (blob
   * `upstreamDigest`), so anyone can check the bundled index is a subset of what was signed.
   */
  upstreamIndex: z.object({ mediaType: z.string(), size: z.number().int().nonnegative() }).optional(),
});

const chartEntry = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  source: z.string(),
  digest: digestSchema,
  /** The chart archive (.tgz) layer inside the Helm OCI artifact. */
  archiveDigest: digestSchema.optional(),
  images: z.array(z.string()),
  /** Values paths where each discovered image was found (used for relocation at install). */
  imagePaths: z
    .array(z.object({ image: z.string(), path: z.string(), kind: z.enum(['map', 'string', 'annotation']) }))
    .optional(),
});

const releaseEntry = z.object({
  name: z.string().min(1),
  chart: z.string().min(1),
  namespace: z.string().optional(),
  values: z.array(z.string()).default([]),
  profiles: z.record(z.string(), z.array(z.string())).optional(),
});

const fileEntry = z.object({
  path: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
});

const sinceEntry = z.object({
  name: z.string(),
  version: z.string(),
  /** sha256 of the base bundle's SHA256SUMS member. */
  digest: digestSchema,
  /** Blobs this bundle expects to exist at the target already (left out of it). */
  omittedBlobs: z.array(digestSchema).optional(),
});

export const ladingJsonSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string().min(1),
  version: z.string().min(1),
  created: z.string(),
  builder: z.object({ name: z.string(), version: z.string() }),
  platforms: z.array(z.string()),
  images: z.array(imageEntry),
  charts: z.array(chartEntry),
  releases: z.array(releaseEntry),
  files: z.array(fileEntry),
  since: sinceEntry.nullable().optional(),
});

export type LadingJson = z.infer<typeof ladingJsonSchema>;
export type BundleImage = z.infer<typeof imageEntry> & { digest: Digest; upstreamDigest: Digest };
export type BundleChart = z.infer<typeof chartEntry>;
export type BundleRelease = z.infer<typeof releaseEntry>;
export type BundleFile = z.infer<typeof fileEntry>;
export type BundleSince = z.infer<typeof sinceEntry>;
export type BundleExtra = z.infer<typeof extraEntry>;
export type BundleSignature = z.infer<typeof signatureEntry>;
