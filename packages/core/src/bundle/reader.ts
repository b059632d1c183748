import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type Digest, parseDigest } from '../digest/index.ts';
import { InvalidInputError, throwIfAborted, VerificationError } from '../errors/index.ts';
import { type ImageIndex, MediaType, parseManifest } from '../model/index.ts';
import { BLOBS_DIR, Member } from './format.ts';
import { type LadingJson, ladingJsonSchema } from './lading-json.ts';
import {
  type BundleInput,
  type BundleSource,
  bundleInputName,
  openSource,
  type SourceMember,
} from './source.ts';
import { parseSums } from './sums.ts';

/**
 * Opening a bundle for reading (push, serve, inspect): one pass over the tar headers — seeking
 * past the data — gives every member's offset and size; the metadata members are read and
 * parsed; blobs are read later by byte range. Opening does not verify: `verifyBundle` does.
 */

/** Metadata members are read whole; anything bigger than this is refused. */
export const MAX_METADATA_BYTES = 16 * 1024 * 1024;

/** The bundle is not a well-formed Lading bundle (exit 2). */
export class BundleFormatError extends InvalidInputError {
  override readonly code = 'BUNDLE_MALFORMED';
  readonly member: string;
  constructor(source: string, member: string, reason: string, cause?: unknown) {
    super(`${source}: ${member}: ${reason}`, {
      hint: 'the file is not a Lading bundle or it was damaged; run lading-load verify on it',
      cause,
    });
    this.member = member;
  }
}

/** The member name of a blob: `blobs/<algorithm>/<hex>`. */
export function blobMemberName(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${BLOBS_DIR}${algorithm}/${hex}`;
}

/** The digest a blob member name stands for, or undefined when it is not a blob name. */
export function digestOfBlobMember(name: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(name);
  if (!m) return undefined;
  const d = `${m[1]}:${m[2]}`;
  try {
    parseDigest(d);
    return d as Digest;
  } catch {
    return undefined;
  }
}

/** Parse lading.json; throws a message-only Error on failure (callers wrap it). */
export function parseLadingJson(bytes: Uint8Array): LadingJson {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`);
  }
  const r = ladingJsonSchema.safeParse(json);
  if (!r.success) {
    throw new Error(
      `does not match the lading.json schema: ${r.error.issues
        .slice(0, 10)
        .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
        .join('; ')}`,
    );
  }
  return r.data;
}

/** Parse index.json as an OCI image index. */
export function parseIndexJson(bytes: Uint8Array): ImageIndex {
  const parsed = parseManifest(bytes, MediaType.ociIndex, Member.index);
  if (parsed.kind !== 'index') throw new Error('is not an OCI image index');
  return parsed.index;
}

export interface OpenBundleOptions {
  signal?: AbortSignal;
  /**
   * `sha256:<hex>` of the SHA256SUMS that verification found (`VerifyReport.sumsDigest`): the
   * bundle opened must be that one — its SHA256SUMS, lading.json and index.json the verified
   * bytes — else BundleChangedError (a file swapped or changed between verify and use). The
   * opened source then reads through the same open files.
   */
  expectSumsDigest?: string;
}

/** The bundle opened is not the one that was verified a moment ago (exit 3). */
export class BundleChangedError extends VerificationError {
  override readonly code = 'BUNDLE_CHANGED_SINCE_VERIFY';
  readonly path: string;
  constructor(path: string, what: string) {
    super(`${path} changed after it was verified: ${what}`, {
      hint: 'something replaced or modified the bundle while it was in use; make the folder writable only by you and verify again',
    });
    this.path = path;
  }
}

export class Bundle {
  readonly path: string;
  readonly source: BundleSource;
  /** Every member (directories left out), in stored order, by name. */
  readonly members: ReadonlyMap<string, SourceMember>;
  readonly ladingJson: LadingJson;
  readonly indexJson: ImageIndex;
  /** The SHA256SUMS bytes as stored (what the signature covers). */
  readonly sumsBytes: Buffer;
  /** SHA256SUMS: member path → sha256 hex. */
  readonly sums: ReadonlyMap<string, string>;
  /** SHA256SUMS.sig, DER; empty for an unsigned bundle. */
  readonly signature: Buffer;

  constructor(init: {
    path: string;
    source: BundleSource;
    members: ReadonlyMap<string, SourceMember>;
    ladingJson: LadingJson;
    indexJson: ImageIndex;
    sumsBytes: Buffer;
    sums: ReadonlyMap<string, string>;
    signature: Buffer;
  }) {
    this.path = init.path;
    this.source = init.source;
    this.members = init.members;
    this.ladingJson = init.ladingJson;
    this.indexJson = init.indexJson;
    this.sumsBytes = init.sumsBytes;
    this.sums = init.sums;
    this.signature = init.signature;
  }

  member(name: string): SourceMember | undefined {
    return this.members.get(name);
  }

  /** The member holding a blob, when the bundle has it. */
  blobMember(digest: Digest): SourceMember | undefined {
    return this.members.get(blobMemberName(digest));
  }

  hasBlob(digest: Digest): boolean {
    return this.blobMember(digest) !== undefined;
  }

  /** A stream over bytes [start, end) of a member; no extraction. */
  openMember(name: string, start?: number, end?: number, opts: { signal?: AbortSignal } = {}): Readable {
    const m = this.members.get(name);
    if (!m) throw new BundleFormatError(this.path, name, 'no such member');
    return this.source.openRange(m, start, end, opts);
  }

  /** A whole small member in memory (metadata, manifests); refuses anything above `limit`. */
  async readMember(name: string, opts: { limit?: number; signal?: AbortSignal } = {}): Promise<Buffer> {
    throwIfAborted(opts.signal);
    const m = this.members.get(name);
    if (!m) throw new BundleFormatError(this.path, name, 'no such member');
    const limit = opts.limit ?? MAX_METADATA_BYTES;
    if (m.size > limit) {
      throw new BundleFormatError(
        this.path,
        name,
        `is ${m.size} bytes, more than the ${limit} allowed for it`,
      );
    }
    return this.source.readRange(m, 0, m.size);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

async function readRequired(
  source: BundleSource,
  members: ReadonlyMap<string, SourceMember>,
  name: string,
): Promise<Buffer> {
  const m = members.get(name);
  if (!m) throw new BundleFormatError(source.path, name, 'missing (not a Lading bundle?)');
  if (m.size > MAX_METADATA_BYTES) {
    throw new BundleFormatError(
      source.path,
      name,
      `is ${m.size} bytes, more than ${MAX_METADATA_BYTES} allowed`,
    );
  }
  return source.readRange(m, 0, m.size);
}

/**
 * Open a bundle (tar file, first part of a split bundle, or extracted directory): index its
 * members and parse lading.json, index.json, SHA256SUMS and the signature. Throws
 * BundleNotFoundError, TarFormatError / BundleFormatError (exit 2), TarTruncatedError,
 * UnsafeTarEntryError (exit 3), or MissingPartError from parts.ts for a split bundle with a part missing.
 * `input` may also be `{ reader, name }` (an `s3://` object; see `openSource`).
 */
export async function openBundle(input: BundleInput, opts: OpenBundleOptions = {}): Promise<Bundle> {
  const path = bundleInputName(input);
  const source = await openSource(input, opts);
  try {
    const list = await source.index(opts);
    const members = new Map<string, SourceMember>();
    for (const m of list) members.set(m.name, m);
    const ladingBytes = await readRequired(source, members, Member.manifest);
    const indexBytes = await readRequired(source, members, Member.index);
    const sumsBytes = await readRequired(source, members, Member.sums);
    const sums = new Map<string, string>();
    for (const e of parseSums(sumsBytes, `${path}: ${Member.sums}`)) sums.set(e.path, e.hex);
    if (opts.expectSumsDigest !== undefined) {
      // Before anything is parsed: the bytes are the verified ones, or nothing is used.
      const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      if (`sha256:${hex(sumsBytes)}` !== opts.expectSumsDigest) {
        throw new BundleChangedError(
          path,
          `its ${Member.sums} is sha256:${hex(sumsBytes)}, the verified one ${opts.expectSumsDigest} (another bundle was put in its place)`,
        );
      }
      for (const [name, bytes] of [
        [Member.manifest, ladingBytes],
        [Member.index, indexBytes],
      ] as const) {
        if (sums.get(name) !== hex(bytes)) {
          throw new BundleChangedError(path, `${name} no longer matches ${Member.sums}`);
        }
      }
    }
    let ladingJson: LadingJson;
    try {
      ladingJson = parseLadingJson(ladingBytes);
    } catch (err) {
      throw new BundleFormatError(path, Member.manifest, (err as Error).message, err);
    }
    let indexJson: ImageIndex;
    try {
      indexJson = parseIndexJson(indexBytes);
    } catch (err) {
      throw new BundleFormatError(path, Member.index, (err as Error).message, err);
    }
    // An unsigned bundle (built with --unsigned) opens with an empty signature: inspect shows it,
    // verification rejects it.
    const signature = members.has(Member.signature)
      ? await readRequired(source, members, Member.signature)
      : Buffer.alloc(0);
    return new Bundle({ path, source, members, ladingJson, indexJson, sumsBytes, sums, signature });
  } catch (err) {
    await source.close();
    throw err;
  }
}
