import { Transform } from 'node:stream';
import {
  type BlobCopier,
  type CallOptions,
  copyVerified,
  type Descriptor,
  type Fetcher,
  isManifestOrIndexType,
  MediaType,
  type OciLayout,
  type Target,
  VerifyingStream,
} from '@lading/core';

/**
 * Layers go from the source registry into the bundle in one pass. The image copy (registry →
 * content cache) brings manifests, indexes and configs only: to it, the cache seems to hold every
 * layer already (`target()`), and the layers it skipped are remembered with the repository that
 * serves them. Once the bundle's layout is known, the bundle writer pulls each one (`copier()`):
 * the bytes are written into the bundle and into the cache at the same time, verified once while
 * they flow (the cache commits a layer only when it verified), so a re-run after an interruption
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

  /** The cache as the image copy of `ref` (served by `fetcher`) sees it. */
  target(cache: OciLayout, fetcher: Fetcher, ref: string): Target {
    const exists = async (desc: Descriptor, opts: CallOptions = {}): Promise<boolean> => {
      if (!DeferredLayers.defers(desc)) return cache.exists(desc, opts);
      this.remember([desc], fetcher, ref);
      return true;
    };
    return {
      exists,
      fetch: (desc, opts) => cache.fetch(desc, opts),
      push: (desc, content, opts) => cache.push(desc, content, opts),
      resolve: (reference, opts) => cache.resolve(reference, opts),
      tag: (desc, reference, opts) => cache.tag(desc, reference, opts),
    };
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
      if (!source || (await cache.exists(desc, opts))) return copyVerified(cache, desc, write, opts);
      const raw = await source.fetcher.fetch(desc, opts);
      let at = 0;
      const tap = new Transform({
        transform: (chunk: Buffer, _enc, cb) => {
          const here = at;
          at += chunk.length;
          this.downloaded += chunk.length;
          write(chunk, here).then(() => cb(null, chunk), cb);
        },
      });
      const verify = new VerifyingStream(
        { digest: desc.digest, size: desc.size },
        `${desc.digest} from ${source.ref}`,
      );
      // A small blob can fail its check before the cache starts reading: keep the error.
      let failed: Error | undefined;
      verify.on('error', (err) => {
        failed ??= err;
      });
      raw.on('error', (err) => tap.destroy(err));
      tap.on('error', (err) => verify.destroy(err));
      raw.pipe(tap).pipe(verify);
      try {
        // The cache does not hash again what `verify` already checks; it renames the layer into
        // place only after `verify` ended without an error.
        await cache.push(desc, verify, opts);
      } catch (err) {
        throw failed ?? err;
      } finally {
        raw.destroy();
        tap.destroy();
      }
      if (failed) throw failed;
      // The cache got the layer meanwhile (another build on the same cache): it did not read
      // ours; write the bundle's copy from the cache instead.
      if (at !== desc.size || !verify.writableFinished) await copyVerified(cache, desc, write, opts);
    };
  }
}
