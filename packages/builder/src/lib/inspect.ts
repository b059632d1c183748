import {
  Annotation,
  type Bundle,
  type BundleSignature,
  digestOf,
  digestOfBlobMember,
  formatBytes,
  openBundle,
} from '@lading/core';

/** `lading-build inspect`: what a bundle holds, from its metadata (no blob is read). */
export interface InspectResult {
  path: string;
  kind: 'tar' | 'parts' | 'directory';
  /** Bytes of the bundle (the tar, the parts together, or the folder's files). */
  size: number;
  parts: string[];
  name: string;
  version: string;
  created: string;
  builder: { name: string; version: string };
  platforms: string[];
  signed: boolean;
  /** sha256 of SHA256SUMS: how a differential bundle names this one as its base. */
  sumsDigest: string;
  images: Array<{
    ref: string;
    digest: string;
    upstreamDigest: string;
    mediaType: string;
    platforms: string[];
    size: number;
    from: string[];
    /** Supply-chain artifacts carried with it, by kind (sig, att, sbom, referrer). */
    extras: Record<string, number>;
    /** Upstream signatures checked at build time (verify: rules). */
    signatures: BundleSignature[];
  }>;
  charts: Array<{ name: string; version: string; source: string; digest: string; images: string[] }>;
  releases: Array<{ name: string; chart: string; namespace?: string; values: string[]; profiles: string[] }>;
  files: Array<{ path: string; size: number; digest: string }>;
  since: { name: string; version: string; digest: string; omittedBlobs: number } | null;
  blobs: number;
  blobBytes: number;
  /** index.json entries (ref → digest). */
  index: Array<{ ref: string; digest: string; mediaType: string }>;
}

function countKinds(extras: ReadonlyArray<{ kind: string }>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of extras) out[e.kind] = (out[e.kind] ?? 0) + 1;
  return out;
}

/** `sig 1, referrer 2`, or `-`. */
export function formatExtraCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts).map(([k, n]) => `${k} ${n}`);
  return parts.length ? parts.join(', ') : '-';
}

export function describeBundle(bundle: Bundle): InspectResult {
  const l = bundle.ladingJson;
  let blobs = 0;
  let blobBytes = 0;
  for (const [name, m] of bundle.members) {
    if (digestOfBlobMember(name)) {
      blobs++;
      blobBytes += m.size;
    }
  }
  return {
    path: bundle.path,
    kind: bundle.source.kind,
    size: bundle.source.size,
    parts: bundle.source.parts.map((p) => p.path),
    name: l.name,
    version: l.version,
    created: l.created,
    builder: l.builder,
    platforms: l.platforms,
    signed: bundle.signature.length > 0,
    sumsDigest: digestOf(bundle.sumsBytes),
    images: l.images.map((i) => ({
      ref: i.ref,
      digest: i.digest,
      upstreamDigest: i.upstreamDigest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.size,
      from: i.from ?? [],
      extras: countKinds(i.extras ?? []),
      signatures: i.signatures ?? [],
    })),
    charts: l.charts.map((c) => ({
      name: c.name,
      version: c.version,
      source: c.source,
      digest: c.digest,
      images: c.images,
    })),
    releases: l.releases.map((r) => ({
      name: r.name,
      chart: r.chart,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      values: r.values,
      profiles: Object.keys(r.profiles ?? {}),
    })),
    files: l.files.map((f) => ({ path: f.path, size: f.size, digest: f.digest })),
    since: l.since
      ? {
          name: l.since.name,
          version: l.since.version,
          digest: l.since.digest,
          omittedBlobs: l.since.omittedBlobs?.length ?? 0,
        }
      : null,
    blobs,
    blobBytes,
    index: bundle.indexJson.manifests.map((d) => ({
      ref: d.annotations?.[Annotation.refName] ?? d.annotations?.[Annotation.containerdName] ?? '',
      digest: d.digest,
      mediaType: d.mediaType,
    })),
  };
}

export async function inspectBundle(path: string, signal?: AbortSignal): Promise<InspectResult> {
  const bundle = await openBundle(path, signal ? { signal } : {});
  try {
    return describeBundle(bundle);
  } finally {
    await bundle.close();
  }
}

/** Rows as aligned columns. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatInspect(r: InspectResult): string {
  const out: string[] = [];
  out.push(
    `bundle   ${r.name} ${r.version}  (${r.kind}${r.parts.length > 0 ? `, ${r.parts.length} parts` : ''}, ${formatBytes(r.size)})`,
  );
  out.push(`created  ${r.created} by ${r.builder.name} ${r.builder.version}`);
  out.push(`signed   ${r.signed ? 'yes (SHA256SUMS.sig)' : 'NO — unsigned bundle'}`);
  out.push(`sums     ${r.sumsDigest}`);
  out.push(
    `base     ${r.since ? `${r.since.name} ${r.since.version} (${r.since.digest}), ${r.since.omittedBlobs} blobs left out` : 'none (complete bundle)'}`,
  );
  out.push(`blobs    ${r.blobs}, ${formatBytes(r.blobBytes)}`);
  out.push('');
  out.push(`IMAGES (${r.images.length})`);
  out.push(
    table(
      ['REF', 'PLATFORMS', 'SIZE', 'DIGEST', 'EXTRAS', 'FROM'],
      r.images.map((i) => [
        i.ref,
        i.platforms.join(',') || '-',
        formatBytes(i.size),
        i.digest.slice(0, 19) +
          (i.digest !== i.upstreamDigest ? ` (upstream ${i.upstreamDigest.slice(0, 19)})` : ''),
        formatExtraCounts(i.extras),
        i.from.join(',') || 'spec',
      ]),
    ),
  );
  const changed = r.images.filter((i) => i.digest !== i.upstreamDigest);
  if (changed.length > 0) {
    out.push('');
    out.push(
      `DIGEST CHANGED BY THE PLATFORM FILTER (${changed.length}): a new index; its platform manifests and layers keep their digests`,
    );
    for (const i of changed) out.push(`${i.ref}  upstream ${i.upstreamDigest} -> bundled ${i.digest}`);
  }
  const signed = r.images.filter((i) => i.signatures.length > 0);
  if (signed.length > 0) {
    out.push('');
    out.push(`UPSTREAM SIGNATURES (checked at build time by verify: rules)`);
    out.push(
      table(
        ['IMAGE', 'SIGNED DIGEST', 'SCHEME', 'KEY', 'SIGNATURE'],
        signed.flatMap((i) =>
          i.signatures.map((x) => [i.ref, x.digest, x.scheme, x.key.slice(0, 19), x.signature.slice(0, 19)]),
        ),
      ),
    );
  }
  out.push('');
  out.push(`CHARTS (${r.charts.length})`);
  out.push(
    table(
      ['NAME', 'VERSION', 'SOURCE', 'IMAGES'],
      r.charts.map((c) => [c.name, c.version, c.source, c.images.join(', ') || '-']),
    ),
  );
  out.push('');
  out.push(`RELEASES (${r.releases.length})`);
  out.push(
    table(
      ['NAME', 'CHART', 'NAMESPACE', 'VALUES', 'PROFILES'],
      r.releases.map((x) => [
        x.name,
        x.chart,
        x.namespace ?? '-',
        x.values.join(', ') || '-',
        x.profiles.join(', ') || '-',
      ]),
    ),
  );
  out.push('');
  out.push(`FILES (${r.files.length})`);
  out.push(
    table(
      ['PATH', 'SIZE'],
      r.files.map((f) => [`files/${f.path}`, formatBytes(f.size)]),
    ),
  );
  return out.join('\n');
}
