import {
  type CopyEvent,
  copy,
  type Descriptor,
  fanOut,
  type Limiter,
  type OciLayout,
  parseManifest,
  parsePlatform,
} from '@lading/core';
import type { FetchedChart } from './charts.ts';
import { FallbackFetcher } from './fallback.ts';
import { checkPinnedIndex } from './plan.ts';
import type { SourceRegistries } from './sources.ts';
import type { Spec } from './spec/index.ts';

/** An image the bundle takes: from the spec's `images:` and from its charts, each once. */
export interface ImageRequest {
  /** Normalised full reference: `docker.io/library/nginx:1.27.3`. */
  ref: string;
  /** Platform filter for this image (its own, else the spec's); undefined = every platform. */
  platforms: string[] | undefined;
  /** Charts that asked for it (`name:version`), sorted; empty for images listed in the spec only. */
  from: string[];
  /** Listed in the spec's `images:`. */
  listed: boolean;
}

/** Spec images first (in spec order), then chart images in chart order; duplicates merged. */
export function collectImages(
  spec: Pick<Spec, 'images' | 'platforms'>,
  charts: readonly FetchedChart[],
): ImageRequest[] {
  const out = new Map<string, ImageRequest>();
  for (const img of spec.images) {
    out.set(img.normalized, {
      ref: img.normalized,
      platforms: img.platforms ?? spec.platforms,
      from: [],
      listed: true,
    });
  }
  for (const chart of charts) {
    const label = `${chart.name}:${chart.version}`;
    for (const ci of chart.images) {
      let req = out.get(ci.image);
      if (!req) {
        req = { ref: ci.image, platforms: spec.platforms, from: [], listed: false };
        out.set(ci.image, req);
      }
      if (!req.from.includes(label)) req.from.push(label);
    }
  }
  for (const r of out.values()) r.from.sort();
  return [...out.values()];
}

export interface PulledImage {
  ref: string;
  /** The root stored in the bundle (a new index when the platform filter dropped entries). */
  descriptor: Descriptor;
  digest: string;
  upstreamDigest: string;
  mediaType: string;
  platforms: string[];
  /** Every node of the image: root, child manifests, configs, layers. */
  blobs: Descriptor[];
  /** Sum of the sizes of `blobs`. */
  size: number;
  from: string[];
  /** Bytes downloaded for this image by the copy (0 when the cache had everything; layers left to the bundle not counted). */
  downloaded: number;
}

export interface PullOptions {
  sources: SourceRegistries;
  cache: OciLayout;
  /** The one limiter shared by every image and blob. */
  limiter: Limiter;
  signal?: AbortSignal;
  onEvent?: (e: CopyEvent) => void;
  /** Called when an image is complete in the cache. */
  onImage?: (img: PulledImage) => void;
  /** Leave layers to the bundle, which takes them through this fetcher; the copy brings the rest. */
  blobSource?: FallbackFetcher;
}

/**
 * Copy one image registry → cache, tagged with its full reference there (with `blobSource`: all but
 * its layers, which the bundle writer pulls).
 */
export async function pullImage(req: ImageRequest, opts: PullOptions): Promise<PulledImage> {
  const { repository, reference } = opts.sources.open(req.ref);
  const so = opts.signal ? { signal: opts.signal } : {};
  const result = await copy(repository, reference, opts.cache, req.ref, {
    ...so,
    ...(opts.blobSource ? { leaveOut: FallbackFetcher.leavesOut } : {}),
    // the cache is local: list every node even below manifests it already holds
    walkExisting: true,
    limiter: opts.limiter,
    label: req.ref,
    ...(req.platforms ? { platforms: req.platforms.map(parsePlatform) } : {}),
    ...(opts.onEvent ? { onProgress: opts.onEvent } : {}),
  });
  await checkPinnedIndex(
    req,
    result,
    opts.cache,
    async () => {
      const up = await repository.getManifest(result.upstreamDigest, so);
      const parsed = parseManifest(up.bytes, up.descriptor.mediaType, req.ref);
      return parsed.kind === 'index' ? parsed.index.manifests.length : 1;
    },
    opts.signal,
  );
  const blobs = result.nodes;
  // Name the source of every layer (the copy left them out, or skipped a whole graph whose root
  // the cache holds), so the bundle writer can pull what the cache lacks.
  opts.blobSource?.remember(blobs, repository);
  const img: PulledImage = {
    ref: req.ref,
    descriptor: { mediaType: result.mediaType, digest: result.digest, size: result.descriptor.size },
    digest: result.digest,
    upstreamDigest: result.upstreamDigest,
    mediaType: result.mediaType,
    platforms: result.platforms,
    blobs,
    size: blobs.reduce((n, b) => n + b.size, 0),
    from: req.from,
    downloaded: result.blobs.bytes,
  };
  opts.onImage?.(img);
  return img;
}

/**
 * Pull every image concurrently; the shared limiter bounds the transfers across all of them.
 * The first failure aborts the others and is thrown (results keep the request order).
 */
export async function pullImages(reqs: readonly ImageRequest[], opts: PullOptions): Promise<PulledImage[]> {
  return fanOut(
    reqs,
    (r, signal) => pullImage(r, { ...opts, signal }),
    opts.signal ? { signal: opts.signal } : {},
  );
}
