import {
  type Descriptor,
  fetchAll,
  matchesAny,
  type OciLayout,
  parseManifest,
  parsePlatform,
  retryTransient,
} from '@lading/core';
import type { ImageRequest } from './images.ts';
import type { SourceRegistries } from './sources.ts';

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
      const visit = async (d: Descriptor): Promise<void> => {
        sizes.set(d.digest, d.size);
        const bytes = await retryTransient(() => fetchAll(repository, d, { ...so, source: req.ref }), so);
        const parsed = parseManifest(bytes, d.mediaType, req.ref);
        if (parsed.kind === 'index') {
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
