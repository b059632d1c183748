import { z } from 'zod';
import { type Digest, isDigest } from '../digest/index.ts';
import type { Platform } from './platform.ts';

/** OCI content descriptor (descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
}

export const platformSchema = z.object({
  architecture: z.string().min(1),
  os: z.string().min(1),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

export const digestSchema = z.string().refine(isDigest, { message: 'not a valid sha256/sha512 digest' });

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
  data: z.string().optional(),
});

/** A short human name for a descriptor in messages. */
export function describeDescriptor(d: Pick<Descriptor, 'mediaType' | 'digest'>): string {
  return `${d.digest} (${d.mediaType})`;
}

/** A minimal copy of a descriptor: mediaType, digest, size (plus platform/annotations if set). */
export function plainDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType) out.artifactType = d.artifactType;
  if (d.platform) out.platform = d.platform;
  if (d.annotations) out.annotations = d.annotations;
  return out;
}
