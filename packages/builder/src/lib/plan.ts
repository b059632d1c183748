import {
  type Descriptor,
  fetchAll,
  formatPlatform,
  InvalidInputError,
  parseManifest,
  parseReference,
  type ReadOnlyStorage,
} from '@lading/core';
import type { ImageRequest } from './images.ts';

/**
 * A platform filter on an index pinned by digest: the bundle would hold a new index with another
 * digest, and the pinned one would not exist at the site (registries refuse an index whose
 * children are absent, so the upstream index cannot travel sparse). Exit 2, naming the kept
 * platform manifests to pin instead.
 */
export class PinnedIndexFilterError extends InvalidInputError {
  override readonly code = 'PINNED_INDEX_FILTERED';
  readonly ref: string;
  constructor(
    ref: string,
    kept: Array<{ ref: string; platform: string }>,
    total: number,
    /** Message and hint of a subclass that reports several. */
    several?: { message: string; hint: string },
  ) {
    super(
      several?.message ??
        `${ref} is pinned by digest to an index of ${total} platform manifests, and the platform filter keeps ${kept.length}: the filtered index would get a new digest and the pinned one would not exist at the site`,
      {
        hint:
          several?.hint ??
          `pin the platform manifests instead: ${kept.map((k) => `${k.ref} (${k.platform})`).join(', ')}; or list every platform of this image on it`,
      },
    );
    this.ref = ref;
  }
}

/**
 * Several digest-pinned indexes that the platform filter narrowed (exit 2): every one, each with
 * the platform manifests to pin instead. Still a PinnedIndexFilterError (the first one's fields).
 */
export class PinnedIndexesFilterError extends PinnedIndexFilterError {
  readonly failures: PinnedIndexFilterError[];
  constructor(failures: PinnedIndexFilterError[]) {
    super((failures[0] as PinnedIndexFilterError).ref, [], 0, {
      message: `${failures.length} images are pinned by digest to an index the platform filter narrows:\n${failures.map((f) => `  ${f.message}`).join('\n')}`,
      hint: failures.map((f) => f.hint).join('\n  '),
    });
    this.failures = failures;
  }
}

/**
 * A digest-pinned index that the platform filter narrowed (the copy wrote a new index): refused,
 * naming the kept platform manifests to pin instead. Checked right after the image copy, which
 * brought manifests and configs only: before any layer moves.
 */
export async function checkPinnedIndex(
  req: ImageRequest,
  copied: { descriptor: Descriptor; digest: string; upstreamDigest: string },
  cache: ReadOnlyStorage,
  upstreamChildren: () => Promise<number>,
  signal?: AbortSignal,
): Promise<void> {
  if (!req.platforms || copied.digest === copied.upstreamDigest) return;
  if (parseReference(req.ref).digest === undefined) return;
  const bytes = await fetchAll(cache, copied.descriptor, { ...(signal ? { signal } : {}), source: req.ref });
  const parsed = parseManifest(bytes, copied.descriptor.mediaType, req.ref);
  if (parsed.kind !== 'index') return;
  const repo = req.ref.slice(0, req.ref.lastIndexOf('@'));
  throw new PinnedIndexFilterError(
    req.ref,
    parsed.index.manifests.map((c) => ({
      ref: `${repo}@${c.digest}`,
      platform: c.platform ? formatPlatform(c.platform) : '?',
    })),
    await upstreamChildren(),
  );
}
