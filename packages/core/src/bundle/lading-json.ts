import { z } from 'zod';
import type { Digest } from '../digest/index.ts';
import { digestSchema } from '../model/index.ts';

/** `lading.json`, the bundle manifest (DESIGN.md §2), schemaVersion 1. Extend, never rename. */

const imageEntry = z.object({
  ref: z.string().min(1),
  digest: digestSchema,
  upstreamDigest: digestSchema,
  mediaType: z.string(),
  platforms: z.array(z.string()),
  size: z.number().int().nonnegative(),
  /** Charts that asked for this image (discovery), when any. */
  from: z.array(z.string()).optional(),
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
