import {
  type ChartArchive,
  type DiscoveredImage,
  discoverChartImages,
  downloadChartBytes,
  fetchAll,
  fetchRepoIndex,
  findChartVersion,
  helmOciTag,
  InvalidInputError,
  type Keychain,
  loadLocalChart,
  matchesImageGlob,
  parseReference,
  readChartArchive,
  resolveChartLayer,
  selectVersion,
} from '@lading/core';
import { chartRepoOptions } from './charts.ts';
import { SourceRegistries } from './sources.ts';

/** `lading-build images CHART`: the images a chart would bring into a bundle. */
export interface ChartImagesOptions {
  /** A local folder / .tgz, an `oci://host/path/name` reference, or a chart name with `repo`. */
  chart: string;
  repo?: string;
  version?: string;
  caFiles?: string[];
  plainHttp?: string[];
  insecure?: boolean;
  keychain?: Keychain;
  signal?: AbortSignal;
}

export interface ChartImagesResult {
  chart: { name: string; version: string; source: string };
  images: DiscoveredImage[];
  skipped: Array<{ path: string; chart: string; value: string; reason: string }>;
  /** With a spec (`images --spec`): image → the `verify:` rules that cover it (`verify[0]`), empty when none. */
  rules?: Record<string, string[]>;
}

/** Which of the spec's `verify:` rules cover each image (a rule covers an image when a glob matches). */
export function rulesCovering(
  images: readonly string[],
  verify: ReadonlyArray<{ index: number; images: string[] }>,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const image of images) {
    out[image] = verify
      .filter((r) => r.images.some((g) => matchesImageGlob(g, image)))
      .map((r) => `verify[${r.index}]`);
  }
  return out;
}

async function loadChart(opts: ChartImagesOptions): Promise<{ chart: ChartArchive; source: string }> {
  const so = opts.signal ? { signal: opts.signal } : {};
  if (opts.repo) {
    const repo = await chartRepoOptions(opts.repo, {
      ...(opts.keychain ? { keychain: opts.keychain } : {}),
      ...(opts.caFiles ? { caFiles: opts.caFiles } : {}),
      ...(opts.insecure ? { insecure: true } : {}),
      ...so,
    });
    const index = await fetchRepoIndex(repo);
    const entry = findChartVersion(index, opts.chart, opts.version);
    const { bytes } = await downloadChartBytes(repo, entry, so);
    const source = `${opts.repo} ${entry.name}-${entry.version}`;
    return { chart: await readChartArchive(bytes, { source, ...so }), source: opts.repo };
  }
  if (opts.chart.startsWith('oci://')) {
    const sources = new SourceRegistries({
      ...(opts.caFiles ? { caFiles: opts.caFiles } : {}),
      ...(opts.plainHttp ? { plainHttp: opts.plainHttp } : {}),
      ...(opts.insecure ? { insecure: true } : {}),
      ...(opts.keychain ? { keychain: opts.keychain } : {}),
    });
    try {
      const parsed = parseReference(opts.chart.slice('oci://'.length));
      let tag = parsed.tag;
      if (opts.version) {
        if (tag)
          throw new InvalidInputError(`${opts.chart} has a tag and --version is given too`, {
            hint: 'give one of them',
          });
        tag = helmOciTag(opts.version);
      }
      const repository = sources.registry(parsed.registry).repository(parsed.repository);
      if (!tag && !parsed.digest) {
        const entries = [];
        for await (const t of repository.tags(so))
          entries.push({ name: parsed.repository, version: t.replace(/_/g, '+'), urls: [t] });
        tag = selectVersion(entries, undefined, { chart: parsed.repository, repo: opts.chart }).urls[0]!;
      }
      const ref = parsed.digest ?? tag!;
      const desc = await repository.resolve(ref, so);
      const layer = await resolveChartLayer(repository, desc, { ...so, source: opts.chart });
      const bytes = await fetchAll(repository, layer.layer, {
        ...so,
        limit: 100 * 1024 * 1024,
        source: opts.chart,
      });
      return { chart: await readChartArchive(bytes, { source: opts.chart, ...so }), source: opts.chart };
    } finally {
      await sources.close();
    }
  }
  const local = await loadLocalChart(opts.chart, so);
  return { chart: local.archive, source: opts.chart };
}

export async function chartImagesOf(opts: ChartImagesOptions): Promise<ChartImagesResult> {
  const { chart, source } = await loadChart(opts);
  const found = discoverChartImages(chart);
  return {
    chart: { name: chart.metadata.name, version: chart.metadata.version, source },
    images: found.images,
    skipped: found.skipped,
  };
}
