import {
  type BlobCopier,
  copyVerified,
  type Descriptor,
  type Fetcher,
  isManifestOrIndexType,
  MediaType,
  type OciLayout,
  WriteGatherer,
} from '@lading/core';

/**
 * Layers go from the source registry into the bundle in one pass. The image copy (registry →
 * content cache) brings manifests, indexes and configs only (copy's `leaveOut: defers`), and the
 * layers of each image are remembered with the repository that serves them (`remember`). Once the bundle's layout is known, the bundle writer pulls each one (`copier()`):
 * each chunk is written into the bundle and into the cache at the same time, hashed once (the
 * cache's writer commits a layer only when it verified), so a re-run after an interruption
 * downloads only what is still missing.
 */
export class DeferredLayers {
  private readonly sources = new Map<string, { fetcher: Fetcher; ref: string }>();
  /** Bytes pulled from registries by `copier()` (retries included). */
  downloaded = 0;

  /** Would the image copy skip this blob? Layers and other non-manifest blobs that are not configs. */
  static defers(desc: Descriptor): boolean {
    return (
      !isManifestOrIndexType(desc.mediaType) &&
      desc.mediaType !== MediaType.dockerConfig &&
      !/config/i.test(desc.mediaType)
    );
  }

  /** Where to pull these blobs from when the cache lacks them (the first source named wins). */
  remember(descs: readonly Descriptor[], fetcher: Fetcher, ref: string): void {
    for (const d of descs) {
      if (DeferredLayers.defers(d) && !this.sources.has(d.digest))
        this.sources.set(d.digest, { fetcher, ref });
    }
  }

  /** The bundle writer's copier: from the cache when it has the blob, else source → bundle + cache. */
  copier(cache: OciLayout): BlobCopier {
    return async (desc, write, opts) => {
      const source = this.sources.get(desc.digest);
      const writer = source ? await cache.writer(desc, opts) : undefined;
      if (!source || !writer) return copyVerified(cache, desc, write, opts);
      try {
        const raw = await source.fetcher.fetch(desc, opts);
        try {
          // Chunks are gathered once into WRITE_CHUNK pieces that go to the bundle and to the
          // cache as they are (neither gathers again); the cache's writer hashes them and commits
          // the layer only when size and digest match — the bundle's copy is the same bytes.
          let at = 0;
          const both = new WriteGatherer(async (piece) => {
            const here = at;
            at += piece.length;
            await Promise.all([writer.write(piece), write(piece, here)]);
          });
          for await (const chunk of raw as AsyncIterable<Buffer>) {
            this.downloaded += chunk.length;
            await both.add(chunk);
          }
          await both.flush();
        } finally {
          raw.destroy();
        }
        await writer.commit();
      } catch (err) {
        await writer.abort();
        throw err;
      }
    };
  }
}
