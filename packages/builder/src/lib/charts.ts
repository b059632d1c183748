import { Readable } from 'node:stream';
import {
  buildHelmArtifact,
  type ChartArchive,
  type ChartRepoOptions,
  type ChartVersionEntry,
  chartRefName,
  copy,
  type Descriptor,
  type DiscoveredImage,
  discoverChartImages,
  downloadChartBytes,
  fetchAll,
  fetchRepoIndex,
  findChartVersion,
  helmOciTag,
  InvalidChartError,
  type Keychain,
  type Limiter,
  loadLocalChart,
  type OciLayout,
  type ProgressListener,
  parseReference,
  readChartArchive,
  resolveChartLayer,
  selectVersion,
} from '@lading/core';
import { normalizeImageRef } from './refs.ts';
import type { SourceRegistries } from './sources.ts';
import type { SpecChart } from './spec/index.ts';

/**
 * Charts of a spec: fetched from an HTTP chart repository (index.yaml, semver, digest-checked
 * download), an OCI registry (Helm's media types) or a local folder / .tgz, and stored in the
 * content cache as Helm OCI artifacts tagged `charts/<name>:<version>`.
 */

export interface ChartFetchContext {
  cache: OciLayout;
  sources: SourceRegistries;
  keychain?: Keychain;
  caFiles?: string[];
  insecure?: boolean;
  limiter?: Limiter;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/** One image a chart needs, and where in the chart it was found. */
export interface ChartImage {
  image: string;
  path: string;
  kind: DiscoveredImage['kind'] | 'explicit';
  /**
   * Where it comes from, for messages: `chart podinfo, values worker.image`, `chart podinfo,
   * Chart.yaml annotations.artifacthub.io/images[0]`, or for a listed image `chart billing,
   * images at lading.yaml:21`.
   */
  where: string;
}

export interface FetchedChart {
  /** The chart's name (Chart.yaml), what `charts/<name>:<version>` uses. */
  name: string;
  /** The name the spec gave it (releases refer to this). */
  specName: string;
  version: string;
  /** Where it came from: the repo URL, the oci:// reference, or the local path. */
  source: string;
  /** The Helm OCI manifest in the cache. */
  descriptor: Descriptor;
  /** The chart archive layer (and config) descriptors. */
  archive: Descriptor;
  /** Every blob of the artifact: manifest, config, archive. */
  blobs: Descriptor[];
  chart: ChartArchive;
  /** Images the bundle takes for this chart (discovered, listed, or none). */
  images: ChartImage[];
  /** Image-like fields discovery could not turn into references. */
  skipped: Array<{ path: string; value: string; reason: string }>;
}

function repoHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/** Chart repository options: TLS trust from the flags, basic auth from the keychain (by host). */
export async function chartRepoOptions(
  url: string,
  ctx: Pick<ChartFetchContext, 'keychain' | 'caFiles' | 'insecure' | 'signal'>,
): Promise<ChartRepoOptions> {
  const opts: ChartRepoOptions = { url };
  if (ctx.caFiles && ctx.caFiles.length > 0) opts.caFile = ctx.caFiles;
  if (ctx.insecure) opts.insecure = true;
  if (ctx.signal) opts.signal = ctx.signal;
  const host = repoHost(url);
  if (host && ctx.keychain) {
    const cred = await ctx.keychain.get(host).catch(() => undefined);
    if (cred?.username && cred.password) {
      opts.username = cred.username;
      opts.password = cred.password;
    }
  }
  return opts;
}

async function pushBytes(cache: OciLayout, desc: Descriptor, bytes: Uint8Array, signal?: AbortSignal) {
  if (await cache.exists(desc, signal ? { signal } : {})) return;
  await cache.push(desc, Readable.from([Buffer.from(bytes)]), signal ? { signal } : {});
}

/** Store chart archive bytes as a Helm OCI artifact in the cache, tagged charts/<name>:<version>. */
export async function storeChartArchive(
  cache: OciLayout,
  bytes: Uint8Array,
  chart: ChartArchive,
  signal?: AbortSignal,
): Promise<{ descriptor: Descriptor; archive: Descriptor; blobs: Descriptor[] }> {
  const artifact = buildHelmArtifact({ metadata: chart.metadata, chart: bytes });
  await pushBytes(cache, artifact.config.descriptor, artifact.config.bytes, signal);
  await pushBytes(cache, artifact.layer, bytes, signal);
  await pushBytes(cache, artifact.manifest.descriptor, artifact.manifest.bytes, signal);
  await cache.tag(
    artifact.manifest.descriptor,
    chartRefName(chart.metadata.name, chart.metadata.version),
    signal ? { signal } : {},
  );
  return {
    descriptor: artifact.manifest.descriptor,
    archive: artifact.layer,
    blobs: [artifact.manifest.descriptor, artifact.config.descriptor, artifact.layer],
  };
}

/** The images a chart brings, per the spec's `images:` mode. */
export function chartImages(
  chart: ChartArchive,
  mode: SpecChart['images'],
): { images: ChartImage[]; skipped: FetchedChart['skipped'] } {
  if (mode.mode === 'none') return { images: [], skipped: [] };
  const name = chart.metadata.name;
  if (mode.mode === 'list') {
    return {
      images: mode.refs.map((r, j) => ({
        image: normalizeImageRef(r),
        path: '',
        kind: 'explicit' as const,
        where: `chart ${name}, images at ${mode.places[j] ?? 'the spec'}`,
      })),
      skipped: [],
    };
  }
  const found = discoverChartImages(chart);
  return {
    images: found.images.map((i) => ({
      image: i.image,
      path: i.path,
      kind: i.kind,
      where: `chart ${name}${i.chart !== name ? ` (subchart ${i.chart})` : ''}, ${i.kind === 'annotation' ? 'Chart.yaml' : 'values'} ${i.path}`,
    })),
    skipped: found.skipped.map((s) => ({ path: s.path, value: s.value, reason: s.reason })),
  };
}

async function readArchiveFromCache(
  cache: OciLayout,
  layer: Descriptor,
  source: string,
  signal?: AbortSignal,
): Promise<{ bytes: Buffer; chart: ChartArchive }> {
  const bytes = await fetchAll(cache, layer, {
    source,
    ...(signal ? { signal } : {}),
    limit: 100 * 1024 * 1024,
  });
  const chart = await readChartArchive(bytes, { source, ...(signal ? { signal } : {}) });
  return { bytes, chart };
}

/** Fetch one chart of the spec into the cache and work out its images. */
export async function fetchChart(spec: SpecChart, ctx: ChartFetchContext): Promise<FetchedChart> {
  const { cache, signal } = ctx;
  const so = signal ? { signal } : {};
  let stored: { descriptor: Descriptor; archive: Descriptor; blobs: Descriptor[] };
  let chart: ChartArchive;
  let source: string;

  if (spec.source.type === 'repo') {
    source = spec.source.url;
    const repo = await chartRepoOptions(spec.source.url, ctx);
    const index = await fetchRepoIndex(repo);
    const entry: ChartVersionEntry = findChartVersion(index, spec.name, spec.version);
    const cachedRef = chartRefName(entry.name, entry.version);
    // A chart version already in the cache with the archive digest the index names is reused.
    const cached = await cache.resolve(cachedRef, so).catch(() => undefined);
    let reused:
      | { bytes: Buffer; chart: ChartArchive; descriptor: Descriptor; archive: Descriptor }
      | undefined;
    if (cached && entry.digest) {
      const layer = await resolveChartLayer(cache, cached, { ...so, source: cachedRef }).catch(
        () => undefined,
      );
      if (layer && layer.layer.digest === `sha256:${entry.digest}`) {
        const r = await readArchiveFromCache(cache, layer.layer, cachedRef, signal);
        reused = { ...r, descriptor: cached, archive: layer.layer };
      }
    }
    if (reused) {
      chart = reused.chart;
      stored = await storeChartArchive(cache, reused.bytes, chart, signal);
    } else {
      const { bytes } = await downloadChartBytes(repo, entry, so);
      chart = await readChartArchive(bytes, {
        source: `${spec.source.url} ${entry.name}-${entry.version}`,
        ...so,
      });
      stored = await storeChartArchive(cache, bytes, chart, signal);
    }
  } else if (spec.source.type === 'oci') {
    source = spec.source.ref;
    const parsed = parseReference(spec.source.repository);
    const repository = ctx.sources.registry(parsed.registry).repository(parsed.repository);
    let tag: string;
    if (spec.versionKind === 'exact' && spec.version) {
      tag = helmOciTag(spec.version);
    } else {
      const entries: ChartVersionEntry[] = [];
      for await (const t of repository.tags(so)) {
        entries.push({ name: spec.name, version: t.replace(/_/g, '+'), urls: [t] });
      }
      tag = selectVersion(entries, spec.version, { chart: spec.name, repo: spec.source.ref }).urls[0]!;
    }
    const display = `${spec.source.ref}:${tag}`;
    const result = await copy(repository, tag, cache, '', {
      ...so,
      label: display,
      ...(ctx.limiter ? { limiter: ctx.limiter } : {}),
      ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    });
    const layer = await resolveChartLayer(cache, result.descriptor, { ...so, source: display });
    const r = await readArchiveFromCache(cache, layer.layer, display, signal);
    chart = r.chart;
    // Keep the artifact exactly as the registry serves it (same digest as upstream).
    await cache.tag(result.descriptor, chartRefName(chart.metadata.name, chart.metadata.version), so);
    stored = {
      descriptor: result.descriptor,
      archive: layer.layer,
      blobs: [result.descriptor, layer.config, ...layer.manifest.layers],
    };
  } else {
    source = spec.source.path;
    const local = await loadLocalChart(spec.source.path, so);
    chart = local.archive;
    if (spec.version && spec.version !== chart.metadata.version) {
      const v = spec.version;
      const entries = [{ name: chart.metadata.name, version: chart.metadata.version, urls: ['local'] }];
      try {
        selectVersion(entries, v, { chart: chart.metadata.name, repo: spec.source.path });
      } catch {
        throw new InvalidChartError(
          spec.source.path,
          `the chart is version ${chart.metadata.version}, the spec asks for ${v}`,
          'change the version in the spec or point it at the right chart',
        );
      }
    }
    stored = await storeChartArchive(cache, local.bytes, chart, signal);
  }

  const { images, skipped } = chartImages(chart, spec.images);
  return {
    name: chart.metadata.name,
    specName: spec.name,
    version: chart.metadata.version,
    source,
    descriptor: stored.descriptor,
    archive: stored.archive,
    blobs: stored.blobs,
    chart,
    images,
    skipped,
  };
}
