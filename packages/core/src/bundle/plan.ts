import type { KeyObject } from 'node:crypto';
import { type Digest, digestOf, parseDigest } from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import type { Descriptor, ImageIndex } from '../model/index.ts';
import { BLOBS_DIR, FILES_DIR, Member, OCI_LAYOUT_CONTENT } from './format.ts';
import { type BundleFile, type LadingJson, ladingJsonSchema } from './lading-json.ts';
import { buildSbom, type CycloneDxBom, serializeSbom } from './sbom.ts';
import { sign } from './signing.ts';
import { formatSums } from './sums.ts';
import { BLOCK, TAR_END_SIZE } from './tar-header.ts';
import { checkMemberPath, entryHeader, tarEntrySize } from './tar-writer.ts';

/**
 * The layout of a bundle, fixed before a byte of it is written (docs/bundle-format.md): blobs are named
 * by digest and every size is known, so the members, their order, every header and offset,
 * SHA256SUMS and its signature follow from the inputs alone. `planBundle` does no I/O; the
 * writer then fills each member at its offset, in any order.
 */

/** An extra file, already hashed: `name` under `files/`, `local` where its bytes are. */
export interface PlanFile {
  name: string;
  local: string;
  digest: Digest;
  size: number;
}

export interface BundlePlanInput {
  ladingJson: LadingJson;
  index: ImageIndex | Uint8Array;
  sbom?: CycloneDxBom | object | Uint8Array;
  files: readonly PlanFile[];
  /** Every blob; duplicates are stored once. sha256 only. */
  blobs: readonly Descriptor[];
  key?: KeyObject;
  /** Seconds (see `resolveEpoch`). */
  epoch: number;
}

/** What a member holds: bytes in memory, a local file, or a blob by digest. */
export type MemberData =
  | { kind: 'bytes'; bytes: Buffer }
  | { kind: 'file'; local: string; digest: Digest }
  | { kind: 'blob'; desc: Descriptor };

export interface PlannedMember {
  /** Position in the tar (0 = first member). */
  index: number;
  path: string;
  size: number;
  data: MemberData;
  header: Buffer;
  headerOffset: number;
  dataOffset: number;
  /** Zero bytes after the data, up to the next 512-byte block. */
  padding: number;
}

export interface BundlePlan {
  members: PlannedMember[];
  /** Bytes of the whole tar (the end-of-archive blocks included). */
  size: number;
  /** The blobs, each once, sorted by digest. */
  blobs: Descriptor[];
  /** lading.json as written (its `files` filled in). */
  ladingJson: LadingJson;
  sums: Buffer;
  signature: Buffer | undefined;
  epoch: number;
}

export class UnsupportedBlobError extends InvalidInputError {
  override readonly code = 'UNSUPPORTED_BLOB';
  readonly digest: string;
  constructor(digest: string, reason: string) {
    super(`blob ${digest}: ${reason}`, {
      hint: 'bundles store sha256 blobs only (blobs/sha256/<hex>); re-pull the image with sha256 digests',
    });
    this.digest = digest;
  }
}

/**
 * The timestamp of a bundle, in seconds: `epoch` when given, else `SOURCE_DATE_EPOCH`, else
 * `fallback` (e.g. lading.json `created`), else now. A malformed SOURCE_DATE_EPOCH is an error.
 */
export function resolveEpoch(
  epoch?: number | Date,
  fallback?: string | Date,
  env: NodeJS.ProcessEnv = process.env,
): number {
  if (epoch !== undefined) {
    const s = epoch instanceof Date ? Math.floor(epoch.getTime() / 1000) : epoch;
    if (!Number.isSafeInteger(s) || s < 0) throw new InvalidInputError(`invalid epoch ${String(epoch)}`);
    return s;
  }
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) {
      throw new InvalidInputError(`SOURCE_DATE_EPOCH="${sde}" is not a whole number of seconds`, {
        hint: 'set SOURCE_DATE_EPOCH to seconds since 1970, e.g. $(git log -1 --format=%ct)',
      });
    }
    return Number(sde);
  }
  if (fallback !== undefined) {
    const t = fallback instanceof Date ? fallback.getTime() : Date.parse(fallback);
    if (Number.isFinite(t) && t >= 0) return Math.floor(t / 1000);
  }
  return Math.floor(Date.now() / 1000);
}

/** A name for `files/` checked (relative, no `.`/`..`, not a folder); a leading `./` dropped. */
export function checkFileName(name: string): string {
  const n = name.replace(/^\.\//, '');
  try {
    checkMemberPath(`${FILES_DIR}${n}`);
  } catch {
    throw new InvalidInputError(`file name ${JSON.stringify(name)} cannot go into the bundle`, {
      hint: 'files are named by relative paths without "." or ".." components',
    });
  }
  if (n.endsWith('/')) throw new InvalidInputError(`file name ${JSON.stringify(name)} names a folder`);
  return n;
}

/** The blob member path of a digest: `blobs/sha256/<hex>`. */
export function blobPath(digest: string): string {
  return `${BLOBS_DIR}sha256/${parseDigest(digest).hex}`;
}

function jsonBytes(value: unknown, pretty: boolean): Buffer {
  return Buffer.from(pretty ? `${JSON.stringify(value, null, 2)}\n` : JSON.stringify(value));
}

function hexOf(data: Uint8Array): string {
  return digestOf(data).slice('sha256:'.length);
}

/** Each blob once, sorted by digest; sha256 only; two descriptors of a digest must agree on its size. */
export function uniqueBlobs(descriptors: readonly Descriptor[]): Descriptor[] {
  const byDigest = new Map<string, Descriptor>();
  for (const d of descriptors) {
    let algorithm: string;
    try {
      algorithm = parseDigest(d.digest).algorithm;
    } catch (err) {
      throw new UnsupportedBlobError(String(d.digest), (err as Error).message);
    }
    if (algorithm !== 'sha256') {
      throw new UnsupportedBlobError(d.digest, `${algorithm} digests are not supported in bundles`);
    }
    if (!Number.isSafeInteger(d.size) || d.size < 0)
      throw new UnsupportedBlobError(d.digest, `invalid size ${d.size}`);
    const seen = byDigest.get(d.digest);
    if (seen && seen.size !== d.size) {
      throw new UnsupportedBlobError(
        d.digest,
        `two descriptors disagree on its size (${seen.size} and ${d.size})`,
      );
    }
    if (!seen) byDigest.set(d.digest, d);
  }
  return [...byDigest.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

/** Fix every member of the bundle, its header and its offset. No I/O. */
export function planBundle(input: BundlePlanInput): BundlePlan {
  const { epoch } = input;
  const blobs = uniqueBlobs(input.blobs);
  const files = input.files;
  const ladingJson: LadingJson = {
    ...input.ladingJson,
    files: files.map((f): BundleFile => ({ path: f.name, digest: f.digest, size: f.size })),
  };
  const checked = ladingJsonSchema.safeParse(ladingJson);
  if (!checked.success) {
    throw new InvalidInputError(
      `lading.json is invalid: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { hint: 'this is a bug in the caller that assembled lading.json' },
    );
  }
  const ociLayout = Buffer.from(OCI_LAYOUT_CONTENT);
  const ladingBytes = jsonBytes(ladingJson, true);
  const indexBytes =
    input.index instanceof Uint8Array ? Buffer.from(input.index) : jsonBytes(input.index, false);
  const sbomBytes =
    input.sbom instanceof Uint8Array
      ? Buffer.from(input.sbom)
      : serializeSbom(input.sbom ?? buildSbom(ladingJson, { epoch }));

  const sums = Buffer.from(
    formatSums([
      { path: Member.ociLayout, hex: hexOf(ociLayout) },
      { path: Member.manifest, hex: hexOf(ladingBytes) },
      { path: Member.index, hex: hexOf(indexBytes) },
      { path: Member.sbom, hex: hexOf(sbomBytes) },
      ...files.map((f) => ({ path: FILES_DIR + f.name, hex: parseDigest(f.digest).hex })),
      ...blobs.map((b) => ({ path: blobPath(b.digest), hex: parseDigest(b.digest).hex })),
    ]),
  );
  const signature = input.key ? sign(sums, input.key) : undefined;

  const bytes = (path: string, b: Buffer) => ({
    path,
    size: b.length,
    data: { kind: 'bytes', bytes: b } as MemberData,
  });
  const listed = [
    bytes(Member.ociLayout, ociLayout),
    bytes(Member.manifest, ladingBytes),
    bytes(Member.sums, sums),
    ...(signature ? [bytes(Member.signature, signature)] : []),
    bytes(Member.index, indexBytes),
    bytes(Member.sbom, sbomBytes),
    ...files.map((f) => ({
      path: FILES_DIR + f.name,
      size: f.size,
      data: { kind: 'file', local: f.local, digest: f.digest } as MemberData,
    })),
    ...blobs.map((b) => ({
      path: blobPath(b.digest),
      size: b.size,
      data: { kind: 'blob', desc: b } as MemberData,
    })),
  ];
  let offset = 0;
  const members = listed.map((e, index): PlannedMember => {
    const header = entryHeader(e.path, e.size, epoch);
    const placed = {
      ...e,
      index,
      header,
      headerOffset: offset,
      dataOffset: offset + header.length,
      padding: (BLOCK - (e.size % BLOCK)) % BLOCK,
    };
    offset += tarEntrySize(e.path, e.size);
    return placed;
  });
  return { members, size: offset + TAR_END_SIZE, blobs, ladingJson, sums, signature, epoch };
}
