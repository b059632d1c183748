import { Readable } from 'node:stream';
import {
  bytesStream,
  type CallOptions,
  type Descriptor,
  type Fetcher,
  isManifestOrIndexType,
  MediaType,
  type OciLayout,
  type ReadOnlyStorage,
} from '@lading/core';

/**
 * Where create's bundle takes its blobs from: documents held in memory (an upstream index kept
 * beside a filtered one), else the content cache, else the registry that serves the image. The
 * image copy (registry → cache) brings manifests, indexes and configs only (`leavesOut`); a layer
 * the cache lacks streams from its registry straight into the bundle, and into the cache on the
 * way (committed only when its digest matched), so a re-run after an interruption, or the next
 * build, downloads only what is still missing. The bundle verifies every blob it takes.
 */
export class FallbackFetcher implements ReadOnlyStorage {
  private readonly cache: OciLayout;
  private readonly sources = new Map<string, Fetcher>();
  private readonly held = new Map<string, Buffer>();
  /** Bytes pulled from registries (retries included). */
  downloaded = 0;

  constructor(cache: OciLayout) {
    this.cache = cache;
  }

  /** Does the image copy leave this blob to the bundle? Layers and other blobs that are not configs. */
  static leavesOut(desc: Descriptor): boolean {
    return (
      !isManifestOrIndexType(desc.mediaType) &&
      desc.mediaType !== MediaType.dockerConfig &&
      !/config/i.test(desc.mediaType)
    );
  }

  /** Where to pull these blobs from when the cache lacks them (the first source named wins). */
  remember(descs: readonly Descriptor[], fetcher: Fetcher): void {
    for (const d of descs) if (!this.sources.has(d.digest)) this.sources.set(d.digest, fetcher);
  }

  /** Serve these documents from memory. */
  hold(documents: ReadonlyMap<string, Buffer>): void {
    for (const [digest, bytes] of documents) this.held.set(digest, bytes);
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    return this.held.has(desc.digest) || this.sources.has(desc.digest) || this.cache.exists(desc, opts);
  }

  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    const held = this.held.get(desc.digest);
    if (held) return bytesStream(held);
    const source = this.sources.get(desc.digest);
    const writer = source ? await this.cache.writer(desc, opts) : undefined;
    if (!source || !writer) return this.cache.fetch(desc, opts);
    let raw: Readable;
    try {
      raw = await source.fetch(desc, opts);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    const self = this;
    // the cache's writer hashes and commits at the end; the bundle verifies the same bytes
    return Readable.from(
      (async function* () {
        let ok = false;
        try {
          for await (const chunk of raw as AsyncIterable<Buffer>) {
            self.downloaded += chunk.length;
            await writer.write(chunk);
            yield chunk;
          }
          await writer.commit();
          ok = true;
        } finally {
          raw.destroy();
          if (!ok) await writer.abort();
        }
      })(),
      { objectMode: false },
    );
  }
}
