import { z } from 'zod';
import { type Digest, digestOf } from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import { type Descriptor, descriptorSchema } from './descriptor.ts';
import { isIndexType, isManifestType, MediaType } from './media-types.ts';

/** Manifests and indexes are small JSON documents; larger ones are refused (Distribution: 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

const manifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export class InvalidManifestError extends InvalidInputError {
  override readonly code = 'INVALID_MANIFEST';
  readonly subject: string;
  constructor(subject: string, reason: string) {
    super(`invalid manifest ${subject}: ${reason}`, {
      hint: 'the source serves a manifest Lading cannot read; check the reference or the source registry',
    });
    this.subject = subject;
  }
}

export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

function parseJson(bytes: Uint8Array, subject: string): unknown {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new InvalidManifestError(subject, `larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidManifestError(subject, `not JSON (${(err as Error).message})`);
  }
}

function issues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Parse and validate a manifest or index. The media type comes from the descriptor (or the
 * registry's Content-Type) and must agree with the document's own `mediaType` when it has one.
 */
export function parseManifest(
  bytes: Uint8Array,
  mediaType: string | undefined,
  subject = 'manifest',
): ParsedManifest {
  const json = parseJson(bytes, subject);
  if (typeof json !== 'object' || json === null) throw new InvalidManifestError(subject, 'not a JSON object');
  const own = (json as { mediaType?: unknown }).mediaType;
  if (own !== undefined && typeof own !== 'string')
    throw new InvalidManifestError(subject, 'mediaType is not a string');
  if (own !== undefined && mediaType !== undefined && own !== mediaType && isManifestOrIndex(mediaType)) {
    throw new InvalidManifestError(
      subject,
      `its mediaType ${own} differs from its descriptor's ${mediaType}`,
    );
  }
  let type = (own as string | undefined) ?? mediaType;
  if (!type || !isManifestOrIndex(type)) {
    // OCI allows omitting mediaType; tell the two apart by shape.
    if ('manifests' in json) type = MediaType.ociIndex;
    else if ('config' in json) type = MediaType.ociManifest;
    else throw new InvalidManifestError(subject, `unsupported media type ${type ?? '(none)'}`);
  }
  if (isIndexType(type)) {
    const r = indexSchema.safeParse(json);
    if (!r.success) throw new InvalidManifestError(subject, issues(r.error));
    return { kind: 'index', mediaType: type, index: r.data as ImageIndex };
  }
  const r = manifestSchema.safeParse(json);
  if (!r.success) throw new InvalidManifestError(subject, issues(r.error));
  return { kind: 'manifest', mediaType: type, manifest: r.data as ImageManifest };
}

function isManifestOrIndex(t: string): boolean {
  return isManifestType(t) || isIndexType(t);
}

/** Serialise JSON canonically enough for reproducible output (stable key order as given). */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** A descriptor for bytes held in memory. */
export function descriptorFor(
  bytes: Uint8Array,
  mediaType: string,
  extra: Partial<Descriptor> = {},
): Descriptor {
  return { mediaType, digest: digestOf(bytes) as Digest, size: bytes.length, ...extra };
}

/**
 * The children of a node in the content graph: config + layers (+ subject) of a manifest,
 * the manifests (+ subject) of an index, nothing for a blob. `subject: false` leaves the subject
 * out: a supply-chain artifact's own graph, without the image it is about.
 */
export function successors(node: ParsedManifest | undefined, opts: { subject?: boolean } = {}): Descriptor[] {
  if (!node) return [];
  const withSubject = opts.subject !== false;
  if (node.kind === 'index') {
    const out = [...node.index.manifests];
    if (withSubject && node.index.subject) out.push(node.index.subject);
    return out;
  }
  const out = [node.manifest.config, ...node.manifest.layers];
  if (withSubject && node.manifest.subject) out.push(node.manifest.subject);
  return out;
}
