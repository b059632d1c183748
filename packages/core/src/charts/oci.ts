import type { CallOptions, Fetcher } from '../content/index.ts';
import { fetchAll } from '../content/index.ts';
import type { Digest } from '../digest/index.ts';
import {
  type Descriptor,
  descriptorFor,
  encodeJson,
  type ImageManifest,
  InvalidManifestError,
  MediaType,
  parseManifest,
} from '../model/index.ts';
import type { ChartMetadata } from './metadata.ts';

/**
 * Helm charts as OCI artifacts, the way `helm push` stores them (helm/helm pkg/registry):
 * an OCI image manifest whose config is the chart's Chart.yaml as JSON
 * (`application/vnd.cncf.helm.config.v1+json`) and whose one layer is the chart archive
 * (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`); an optional provenance layer may follow.
 * The manifest carries org.opencontainers.image.{title,version,description,url,source,authors}
 * from Chart.yaml plus the chart's own annotations (which may not override title and version).
 */
export const HelmMediaType = {
  config: MediaType.helmConfig,
  chart: MediaType.helmChart,
  provenance: MediaType.helmProvenance,
  /** Helm's legacy (pre-3.7 experimental) layer type, still found in old registries. */
  legacyChart: 'application/tar+gzip',
} as const;

const OCI = {
  created: 'org.opencontainers.image.created',
  description: 'org.opencontainers.image.description',
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  url: 'org.opencontainers.image.url',
  source: 'org.opencontainers.image.source',
  authors: 'org.opencontainers.image.authors',
} as const;

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === '' || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as Partial<T>;
}

function sortedRecord(r: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!r) return undefined;
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k] as string;
  return out;
}

/**
 * The Helm config blob: Chart.yaml's fields as JSON, in the field order of Helm's
 * `chart.Metadata` with empty fields left out (Go's `omitempty`) and map keys sorted (as Go's
 * encoding/json does), so the same Chart.yaml always gives the same bytes.
 */
export function helmConfigBytes(meta: ChartMetadata): Buffer {
  const doc = compact({
    name: meta.name,
    home: meta.home,
    sources: meta.sources,
    version: meta.version,
    description: meta.description,
    keywords: meta.keywords,
    maintainers: meta.maintainers?.map((m) => compact({ name: m.name, email: m.email, url: m.url })),
    icon: meta.icon,
    apiVersion: meta.apiVersion,
    condition: meta.condition,
    tags: meta.tags,
    appVersion: meta.appVersion,
    deprecated: meta.deprecated,
    annotations: sortedRecord(meta.annotations),
    kubeVersion: meta.kubeVersion,
    dependencies: meta.dependencies?.map((d) =>
      compact({
        name: d.name,
        version: d.version,
        repository: d.repository,
        condition: d.condition,
        tags: d.tags,
        enabled: d.enabled,
        'import-values': d['import-values'],
        alias: d.alias,
      }),
    ),
    type: meta.type,
  });
  return encodeJson(doc);
}

/** Manifest annotations as Helm writes them; `created` only when given (reproducible output). */
export function helmManifestAnnotations(
  meta: ChartMetadata,
  created?: Date | string,
): Record<string, string> {
  const a: Record<string, string> = {};
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v.trim() !== '') a[k] = v;
  };
  add(OCI.description, meta.description);
  add(OCI.title, meta.name);
  add(OCI.version, meta.version);
  add(OCI.url, meta.home);
  if (created !== undefined) {
    add(OCI.created, typeof created === 'string' ? created : created.toISOString().replace(/\.\d{3}Z$/, 'Z'));
  }
  add(OCI.source, meta.sources?.[0]);
  if (meta.maintainers?.length) {
    add(
      OCI.authors,
      meta.maintainers.map((m) => (m.name ?? '') + (m.email ? ` (${m.email})` : '')).join(', '),
    );
  }
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    if (k === OCI.title || k === OCI.version) continue;
    a[k] = v;
  }
  return sortedRecord(a) as Record<string, string>;
}

export interface HelmArtifactInput {
  metadata: ChartMetadata;
  /** The chart archive: its bytes, or its digest and size when it is streamed elsewhere. */
  chart: Uint8Array | { digest: Digest; size: number };
  /** org.opencontainers.image.created; left out when not given. */
  created?: Date | string;
}

export interface HelmArtifact {
  config: { descriptor: Descriptor; bytes: Buffer };
  layer: Descriptor;
  manifest: { descriptor: Descriptor; bytes: Buffer; manifest: ImageManifest };
  /** The tag Helm uses for the version (`+` becomes `_`, OCI tags cannot hold `+`). */
  tag: string;
}

/** The tag of a chart version in an OCI registry (Helm replaces `+` by `_`). */
export function helmOciTag(version: string): string {
  return version.replaceAll('+', '_');
}

/** Build the Helm OCI artifact (config blob, layer descriptor, manifest) for a chart archive. */
export function buildHelmArtifact(input: HelmArtifactInput): HelmArtifact {
  const configBytes = helmConfigBytes(input.metadata);
  const config = descriptorFor(configBytes, HelmMediaType.config);
  const layer: Descriptor =
    input.chart instanceof Uint8Array
      ? descriptorFor(input.chart, HelmMediaType.chart)
      : { mediaType: HelmMediaType.chart, digest: input.chart.digest, size: input.chart.size };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config,
    layers: [layer],
    annotations: helmManifestAnnotations(input.metadata, input.created),
  };
  const bytes = encodeJson(manifest);
  return {
    config: { descriptor: config, bytes: configBytes },
    layer,
    manifest: { descriptor: descriptorFor(bytes, MediaType.ociManifest), bytes, manifest },
    tag: helmOciTag(input.metadata.version),
  };
}

/** Whether a manifest is a Helm chart (its config has Helm's media type). */
export function isHelmChartManifest(manifest: ImageManifest): boolean {
  return manifest.config.mediaType === HelmMediaType.config;
}

/**
 * The chart-archive layer of a Helm OCI manifest.
 *
 * @throws InvalidManifestError when the manifest is not a Helm chart or has no or several chart layers
 */
export function chartLayerOf(manifest: ImageManifest, subject = 'chart manifest'): Descriptor {
  if (!isHelmChartManifest(manifest)) {
    throw new InvalidManifestError(
      subject,
      `config media type is ${manifest.config.mediaType}, not ${HelmMediaType.config}: not a Helm chart`,
    );
  }
  const layers = manifest.layers.filter(
    (l) => l.mediaType === HelmMediaType.chart || l.mediaType === HelmMediaType.legacyChart,
  );
  if (layers.length !== 1) {
    throw new InvalidManifestError(
      subject,
      `expected one chart layer (${HelmMediaType.chart}), found ${layers.length}`,
    );
  }
  return layers[0] as Descriptor;
}

export interface ResolvedChartArtifact {
  manifest: ImageManifest;
  /** The config descriptor (Chart.yaml as JSON). */
  config: Descriptor;
  /** The chart archive layer: fetch it with `fetchVerified`. */
  layer: Descriptor;
}

/**
 * Given a Fetcher (a registry repository, layout or bundle) and the descriptor of a Helm chart's
 * manifest (from a Resolver), fetch and check the manifest and return its chart layer.
 */
export async function resolveChartLayer(
  fetcher: Fetcher,
  manifestDesc: Descriptor,
  opts: CallOptions & { source?: string } = {},
): Promise<ResolvedChartArtifact> {
  const subject = opts.source ?? manifestDesc.digest;
  const bytes = await fetchAll(fetcher, manifestDesc, { ...opts, source: subject });
  const parsed = parseManifest(bytes, manifestDesc.mediaType, subject);
  if (parsed.kind !== 'manifest') {
    throw new InvalidManifestError(subject, 'is an index, a Helm chart is a single manifest');
  }
  const layer = chartLayerOf(parsed.manifest, subject);
  return { manifest: parsed.manifest, config: parsed.manifest.config, layer };
}
