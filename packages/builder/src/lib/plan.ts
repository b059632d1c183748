import {
  type Descriptor,
  fetchAll,
  formatPlatform,
  InvalidInputError,
  matchesAny,
  type OciLayout,
  parseManifest,
  parsePlatform,
  parseReference,
  retryTransient,
} from '@lading/core';
import type { ImageRequest } from './images.ts';
import type { SourceRegistries } from './sources.ts';

/**
 * A platform filter on an index pinned by digest: the bundle would hold a new index with another
 * digest, and the pinned one would not exist at the site (registries refuse an index whose
 * children are absent, so the upstream index cannot travel sparse). Exit 2, naming the kept
 * platform manifests to pin instead.
 */
export class PinnedIndexFilterError extends InvalidInputError {
  override readonly code = 'PINNED_INDEX_FILTERED';
  constructor(ref: string, kept: Array<{ ref: string; platform: string }>, total: number) {
    super(
      `${ref} is pinned by digest to an index of ${total} platform manifests, and the platform filter keeps ${kept.length}: the filtered index would get a new digest and the pinned one would not exist at the site`,
      {
        hint: `pin the platform manifests instead: ${kept.map((k) => `${k.ref} (${k.platform})`).join(', ')}; or list every platform of this image on it`,
      },
    );
  }
}

/**
 * Before downloading: how many bytes the images need and how many of them the cache lacks (for
 * the free-space check and the progress total). Reads manifests only; a platform filter is
 * applied as the copy will apply it.
 */
export interface PullPlan {
  /** Sum of the sizes of every distinct blob of every image. */
  totalBytes: number;
  /** Bytes of those blobs not yet in the cache. */
  missingBytes: number;
  blobs: number;
  /** Of `totalBytes` and `missingBytes`: the layers'. */
  layerBytes: number;
  missingLayerBytes: number;
}

export async function planPull(
  reqs: readonly ImageRequest[],
  sources: SourceRegistries,
  cache: OciLayout,
  signal?: AbortSignal,
): Promise<PullPlan> {
  const so = signal ? { signal } : {};
  const sizes = new Map<string, number>();
  const layers = new Set<string>();
  await Promise.all(
    reqs.map(async (req) => {
      const { repository, reference } = sources.open(req.ref);
      const root = await repository.resolve(reference, so);
      const wanted = req.platforms?.map(parsePlatform);
      const pinned = parseReference(req.ref).digest !== undefined;
      const visit = async (d: Descriptor): Promise<void> => {
        sizes.set(d.digest, d.size);
        const bytes = await retryTransient(() => fetchAll(repository, d, { ...so, source: req.ref }), so);
        const parsed = parseManifest(bytes, d.mediaType, req.ref);
        if (parsed.kind === 'index') {
          if (wanted && d.digest === root.digest && pinned) {
            const kept = parsed.index.manifests.filter((c) => matchesAny(wanted, c.platform));
            if (kept.length > 0 && kept.length < parsed.index.manifests.length) {
              const repo = req.ref.slice(0, req.ref.lastIndexOf('@'));
              throw new PinnedIndexFilterError(
                req.ref,
                kept.map((c) => ({
                  ref: `${repo}@${c.digest}`,
                  platform: c.platform ? formatPlatform(c.platform) : '?',
                })),
                parsed.index.manifests.length,
              );
            }
          }
          for (const child of parsed.index.manifests) {
            if (wanted && !matchesAny(wanted, child.platform)) continue;
            await visit(child);
          }
        } else {
          for (const b of [parsed.manifest.config, ...parsed.manifest.layers]) sizes.set(b.digest, b.size);
          for (const b of parsed.manifest.layers) layers.add(b.digest);
        }
      };
      await visit({ mediaType: root.mediaType, digest: root.digest, size: root.size });
    }),
  );
  let totalBytes = 0;
  let missingBytes = 0;
  let layerBytes = 0;
  let missingLayerBytes = 0;
  for (const [digest, size] of sizes) {
    const layer = layers.has(digest);
    totalBytes += size;
    if (layer) layerBytes += size;
    if (
      !(await cache.exists(
        { mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size },
        so,
      ))
    ) {
      missingBytes += size;
      if (layer) missingLayerBytes += size;
    }
  }
  return { totalBytes, missingBytes, blobs: sizes.size, layerBytes, missingLayerBytes };
}
