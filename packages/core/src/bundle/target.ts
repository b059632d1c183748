import type { Readable } from 'node:stream';
import type { CallOptions, ReadOnlyTarget, TagLister } from '../content/index.ts';
import { type Digest, isDigest, SizeMismatchError } from '../digest/index.ts';
import { ExitCode, NotFoundError, throwIfAborted } from '../errors/index.ts';
import {
  Annotation,
  type Descriptor,
  descriptorFor,
  isManifestOrIndexType,
  MAX_MANIFEST_BYTES,
  parseManifest,
} from '../model/index.ts';
import { type Bundle, blobMemberName, type OpenBundleOptions, openBundle } from './reader.ts';
import type { BundleInput } from './source.ts';

/** A reference or blob the bundle does not hold (exit 2: the bundle is local input). */
export class BundleContentNotFoundError extends NotFoundError {
  override readonly code = 'BUNDLE_CONTENT_NOT_FOUND';
  override readonly exitCode: ExitCode = ExitCode.usage;
  readonly subject: string;
  constructor(bundle: string, subject: string, hint: string) {
    super(`${bundle}: ${subject} is not in the bundle`, { hint });
    this.subject = subject;
  }
}

/** An image or chart the bundle offers: its reference and root descriptor (from index.json). */
export interface BundleRef {
  ref: string;
  descriptor: Descriptor;
}

/**
 * The bundle as a read-only Target: resolve by reference (`org.opencontainers.image.ref.name`,
 * or `io.containerd.image.name`) or by digest, and fetch blobs as ranged reads straight from
 * the tar — nothing is extracted. Streams are raw; callers verify them (`fetchVerified`).
 */
export class BundleTarget implements ReadOnlyTarget, TagLister {
  readonly bundle: Bundle;

  constructor(bundle: Bundle) {
    this.bundle = bundle;
  }

  /** Open a bundle path (or `{ reader, name }`, see `openSource`) as a target. Close it when done. */
  static async open(path: BundleInput, opts: OpenBundleOptions = {}): Promise<BundleTarget> {
    return new BundleTarget(await openBundle(path, opts));
  }

  /** Every image and chart in index.json, in order. */
  refs(): BundleRef[] {
    const out: BundleRef[] = [];
    for (const d of this.bundle.indexJson.manifests) {
      const ref = d.annotations?.[Annotation.refName] ?? d.annotations?.[Annotation.containerdName];
      if (ref) out.push({ ref, descriptor: d });
    }
    return out;
  }

  async *tags(opts: CallOptions = {}): AsyncIterable<string> {
    for (const r of this.refs()) {
      throwIfAborted(opts.signal);
      yield r.ref;
    }
  }

  async resolve(reference: string, opts: CallOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal);
    const manifests = this.bundle.indexJson.manifests;
    const byRef =
      manifests.find((d) => d.annotations?.[Annotation.refName] === reference) ??
      manifests.find((d) => d.annotations?.[Annotation.containerdName] === reference);
    if (byRef) return byRef;
    if (isDigest(reference)) {
      const top = manifests.find((d) => d.digest === reference);
      if (top) return top;
      // A child manifest: read it (small) to learn its media type.
      const m = this.bundle.blobMember(reference);
      if (m && m.size <= MAX_MANIFEST_BYTES) {
        const bytes = await this.bundle.readMember(blobMemberName(reference), {
          limit: MAX_MANIFEST_BYTES,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        try {
          const parsed = parseManifest(bytes, undefined, reference);
          return descriptorFor(bytes, parsed.mediaType);
        } catch {
          // not a manifest: fall through to not found
        }
      }
    }
    throw new BundleContentNotFoundError(
      this.bundle.path,
      reference,
      `the bundle holds: ${
        this.refs()
          .map((r) => r.ref)
          .slice(0, 20)
          .join(', ') || '(nothing)'
      }`,
    );
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    return this.bundle.hasBlob(desc.digest);
  }

  /** The blob's bytes as a stream read from the tar. Fails early when the size differs. */
  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    return this.fetchRange(desc, 0, undefined, opts);
  }

  /** Bytes [start, end) of a blob (serve answers Range requests with this). */
  async fetchRange(desc: Descriptor, start = 0, end?: number, opts: CallOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const m = this.bundle.blobMember(desc.digest);
    if (!m) {
      const omitted = this.bundle.ladingJson.since?.omittedBlobs?.includes(desc.digest) ?? false;
      throw new BundleContentNotFoundError(
        this.bundle.path,
        `blob ${desc.digest}`,
        omitted
          ? `this differential bundle leaves it out: load the base bundle ${this.bundle.ladingJson.since?.name} ${this.bundle.ladingJson.since?.version} first`
          : 'the bundle is incomplete; run lading-load verify on it',
      );
    }
    if (desc.size !== m.size) {
      throw new SizeMismatchError(desc.digest, desc.size, m.size, `${this.bundle.path}: ${m.name}`, false);
    }
    return this.bundle.source.openRange(m, start, end ?? m.size, opts.signal ? { signal: opts.signal } : {});
  }

  /** Whether a media type is fetched from /manifests/ (for callers serving the bundle). */
  static isManifest(desc: Pick<Descriptor, 'mediaType'>): boolean {
    return isManifestOrIndexType(desc.mediaType);
  }

  /** The digests of every root (image and chart) in index.json. */
  roots(): Digest[] {
    return this.bundle.indexJson.manifests.map((d) => d.digest);
  }

  close(): Promise<void> {
    return this.bundle.close();
  }
}
