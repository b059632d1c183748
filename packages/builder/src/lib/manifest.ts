import { readFileSync } from 'node:fs';
import {
  Annotation,
  type BundleChart,
  type BundleImage,
  type BundleRelease,
  chartRefName,
  type Descriptor,
  type Digest,
  type ImageIndex,
  type LadingJson,
  MediaType,
} from '@lading/core';
import type { FetchedChart } from './charts.ts';
import type { ImageExtras } from './extras.ts';
import type { PulledImage } from './images.ts';
import type { Spec } from './spec/index.ts';

/** index.json and lading.json of a bundle, from what was fetched. Deterministic. */

let builderVersion: string | undefined;

/** `@lading/builder`'s version (package.json), for lading.json `builder`. */
export function builderInfo(): { name: string; version: string } {
  if (builderVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      builderVersion = pkg.version ?? '0.0.0';
    } catch {
      builderVersion = '0.0.0';
    }
  }
  return { name: 'lading-build', version: builderVersion };
}

function named(d: Descriptor, ref: string): Descriptor {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    annotations: { [Annotation.containerdName]: ref, [Annotation.refName]: ref },
  };
}

/** One descriptor per image (named by its full source reference) and per chart (`charts/<name>:<version>`). */
export function buildIndex(images: readonly PulledImage[], charts: readonly FetchedChart[]): ImageIndex {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      ...images.map((i) => named(i.descriptor, i.ref)),
      ...charts.map((c) => named(c.descriptor, chartRefName(c.name, c.version))),
    ],
  } as ImageIndex;
}

/** Spec path (relative to the spec folder) of a values file: what lading.json and files/ use. */
function releasesOf(spec: Spec, charts: readonly FetchedChart[]): BundleRelease[] {
  return spec.releases.map((r) => {
    const chart = charts.find((c) => c.specName === r.chart);
    const out: BundleRelease = {
      name: r.name,
      chart: chart ? chart.name : r.chart,
      values: r.values.map((v) => v.path),
    };
    if (r.namespace !== undefined) out.namespace = r.namespace;
    const profiles = Object.entries(r.profiles);
    if (profiles.length > 0)
      out.profiles = Object.fromEntries(profiles.map(([k, v]) => [k, v.map((f) => f.path)]));
    return out;
  });
}

export interface LadingJsonInput {
  spec: Spec;
  images: readonly PulledImage[];
  /** Per image reference: its supply-chain artifacts and checked signatures. */
  extras?: ReadonlyMap<string, ImageExtras>;
  charts: readonly FetchedChart[];
  /** ISO time (from the bundle epoch). */
  created: string;
  since?: { name: string; version: string; digest: Digest; omittedBlobs: string[] } | undefined;
}

export function buildLadingJson(input: LadingJsonInput): LadingJson {
  const { spec, images, charts } = input;
  const imageEntries: BundleImage[] = images.map((i) => {
    const e: BundleImage = {
      ref: i.ref,
      digest: i.digest as Digest,
      upstreamDigest: i.upstreamDigest as Digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.size,
    };
    if (i.from.length > 0) e.from = i.from;
    const x = input.extras?.get(i.ref);
    if (x?.extras.length) e.extras = x.extras;
    if (x?.signatures.length) e.signatures = x.signatures;
    if (x?.upstreamIndex)
      e.upstreamIndex = { mediaType: x.upstreamIndex.mediaType, size: x.upstreamIndex.size };
    return e;
  });
  const chartEntries: BundleChart[] = charts.map((c) => {
    const e: BundleChart = {
      name: c.name,
      version: c.version,
      source: c.source,
      digest: c.descriptor.digest,
      archiveDigest: c.archive.digest,
      images: [...new Set(c.images.map((i) => i.image))],
    };
    const paths = c.images.filter((i) => i.kind !== 'explicit');
    if (paths.length > 0) {
      e.imagePaths = paths.map((i) => ({
        image: i.image,
        path: i.path,
        kind: i.kind as 'map' | 'string' | 'annotation',
      }));
    }
    return e;
  });
  const lading: LadingJson = {
    schemaVersion: 1,
    name: spec.name,
    version: spec.version,
    created: input.created,
    builder: builderInfo(),
    platforms: spec.platforms ?? [],
    images: imageEntries,
    charts: chartEntries,
    releases: releasesOf(spec, charts),
    files: [],
  };
  if (input.since) lading.since = input.since as LadingJson['since'];
  return lading;
}

/** Every file the spec packs into files/: the `files:` list and the releases' values files, each once. */
export function specFiles(spec: Spec): Array<{ name: string; path: string }> {
  const out = new Map<string, string>();
  for (const f of spec.files) out.set(f.path, f.source);
  for (const r of spec.releases) {
    for (const v of r.values) out.set(v.path, v.source);
    for (const list of Object.values(r.profiles)) for (const v of list) out.set(v.path, v.source);
  }
  return [...out.entries()].map(([name, path]) => ({ name, path }));
}
