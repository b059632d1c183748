import {
  type CopyEvent,
  copy,
  type Descriptor,
  fanOut,
  type Limiter,
  type OciLayout,
  PlatformNotFoundError,
  parseManifest,
  parsePlatform,
} from '@lading/core';
import type { FetchedChart } from './charts.ts';
import { FallbackFetcher } from './fallback.ts';
import { checkPinnedIndex, PinnedIndexesFilterError, PinnedIndexFilterError } from './plan.ts';
import { ImagePlatformError, type PlatformMiss } from './platform-error.ts';
import type { ResolvedRequest } from './resolve.ts';
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
  /**
   * Everywhere it is asked for, for messages: `lading.yaml:12` for a spec image, `chart podinfo,
   * values worker.image` for a discovered one.
   */
  where: string[];
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
      where: [img.place],
    });
  }
  for (const chart of charts) {
    const label = `${chart.name}:${chart.version}`;
    for (const ci of chart.images) {
      let req = out.get(ci.image);
      if (!req) {
        req = { ref: ci.image, platforms: spec.platforms, from: [], listed: false, where: [] };
        out.set(ci.image, req);
      }
      if (!req.from.includes(label)) req.from.push(label);
      if (!req.where.includes(ci.where)) req.where.push(ci.where);
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
 * its layers, which the bundle writer pulls). A resolved request is copied by the digest its tag
 * named when it was resolved (a tag moved since then does not change what is pulled).
 */
export async function pullImage(
  req: ImageRequest | ResolvedRequest,
  opts: PullOptions,
): Promise<PulledImage> {
  const open = opts.sources.open(req.ref);
  const { repository } = open;
  const upstream = 'upstream' in req ? req.upstream : undefined;
  const so = opts.signal ? { signal: opts.signal } : {};
  const result = await copy(repository, upstream?.digest ?? open.reference, opts.cache, req.ref, {
    ...so,
    // resolved already: the copy does not ask the registry again
    ...(upstream ? { resolved: upstream } : {}),
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
 * The first failure aborts the others and is thrown (results keep the request order) — except an
 * image that has none of the platforms asked for, or a digest-pinned index the filter narrows:
 * those are collected, the others go on, and all of them are reported at the end in one error
 * (ImagePlatformError first, then PinnedIndexFilterError / PinnedIndexesFilterError).
 */
export async function pullImages(
  reqs: ReadonlyArray<ImageRequest | ResolvedRequest>,
  opts: PullOptions,
): Promise<PulledImage[]> {
  const misses: Array<PlatformMiss | undefined> = new Array(reqs.length);
  const pinned: Array<PinnedIndexFilterError | undefined> = new Array(reqs.length);
  const pulled = await fanOut(
    reqs,
    async (r, signal, i) => {
      try {
        return await pullImage(r, { ...opts, signal });
      } catch (err) {
        if (err instanceof PinnedIndexFilterError) {
          pinned[i] = err;
          return undefined;
        }
        if (!(err instanceof PlatformNotFoundError)) throw err;
        misses[i] = { ref: r.ref, where: r.where, wanted: err.wanted, available: err.available };
        return undefined;
      }
    },
    opts.signal ? { signal: opts.signal } : {},
  );
  const missed = misses.filter((m): m is PlatformMiss => m !== undefined);
  if (missed.length > 0) throw new ImagePlatformError(missed);
  const narrowed = pinned.filter((p): p is PinnedIndexFilterError => p !== undefined);
  if (narrowed.length === 1) throw narrowed[0];
  if (narrowed.length > 1) throw new PinnedIndexesFilterError(narrowed);
  return pulled as PulledImage[];
}
