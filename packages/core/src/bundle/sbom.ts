import { createHash } from 'node:crypto';
import { parseDigest } from '../digest/index.ts';
import type { LadingJson } from './lading-json.ts';

/**
 * `sbom.cdx.json`: a minimal CycloneDX 1.5 JSON SBOM of the bundle's images (type container,
 * `pkg:oci` purls) and charts (type application). Deterministic: the timestamp is the bundle
 * epoch and the serial number is derived from the content.
 */

export interface CycloneDxHash {
  alg: 'SHA-256' | 'SHA-512';
  content: string;
}

export interface CycloneDxComponent {
  type: 'container' | 'application';
  'bom-ref': string;
  name: string;
  version: string;
  purl: string;
  hashes: CycloneDxHash[];
  externalReferences?: Array<{ type: string; url: string }>;
  properties?: Array<{ name: string; value: string }>;
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: Array<{ type: 'application'; name: string; version: string }> };
    component: { type: 'application'; 'bom-ref': string; name: string; version: string };
  };
  components: CycloneDxComponent[];
  dependencies: Array<{ ref: string; dependsOn: string[] }>;
}

function hashOf(digest: string): CycloneDxHash {
  const { algorithm, hex } = parseDigest(digest);
  return { alg: algorithm === 'sha256' ? 'SHA-256' : 'SHA-512', content: hex };
}

/** Split an image reference into repository, tag and digest (no normalisation). */
function splitRef(ref: string): { repository: string; tag?: string; digest?: string } {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const out: { repository: string; tag?: string; digest?: string } = { repository: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** Percent-encode a purl component the way the purl spec asks (':' in a version as %3A). */
function purlEncode(s: string): string {
  return encodeURIComponent(s);
}

/** `pkg:oci/<name>@<digest>?repository_url=<repo>&tag=<tag>` (qualifiers sorted by key). */
export function ociPurl(repository: string, digest: string, tag?: string): string {
  const name = repository.split('/').pop()!.toLowerCase();
  const q: Array<[string, string]> = [['repository_url', repository]];
  if (tag) q.push(['tag', tag]);
  q.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const qs = q
    .map(([k, v]) => `${k}=${encodeURIComponent(v).replace(/%2F/g, '/').replace(/%3A/g, ':')}`)
    .join('&');
  return `pkg:oci/${purlEncode(name)}@${purlEncode(digest)}?${qs}`;
}

function uuidFrom(hex: string): string {
  // A name-based UUID shape (version nibble 5, RFC 4122 variant) over a sha256 of the content,
  // so the CycloneDX serialNumber pattern accepts it and the same content gives the same id.
  const h = hex.slice(0, 32).split('');
  h[12] = '5';
  h[16] = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

function epochSeconds(epoch: number | Date): number {
  return epoch instanceof Date ? Math.floor(epoch.getTime() / 1000) : Math.floor(epoch);
}

/** Build the SBOM of a bundle from its lading.json. */
export function buildSbom(lading: LadingJson, opts: { epoch: number | Date }): CycloneDxBom {
  const timestamp = new Date(epochSeconds(opts.epoch) * 1000).toISOString().replace('.000Z', 'Z');
  const components: CycloneDxComponent[] = [];
  const imageRefs = new Map<string, string>();
  for (const img of lading.images) {
    const { repository, tag } = splitRef(img.ref);
    const bomRef = `image:${img.ref}@${img.digest}`;
    imageRefs.set(img.ref, bomRef);
    const properties = [
      { name: 'lading:ref', value: img.ref },
      { name: 'lading:mediaType', value: img.mediaType },
      { name: 'lading:upstreamDigest', value: img.upstreamDigest },
      ...img.platforms.map((p) => ({ name: 'lading:platform', value: p })),
      ...(img.extras?.length ? [{ name: 'lading:extras', value: String(img.extras.length) }] : []),
      ...(img.extras ?? []).map((e) => ({
        name: `lading:extra:${e.kind}`,
        value: `${e.digest}${e.tag ? ` ${e.tag}` : ''}${e.artifactType ? ` ${e.artifactType}` : ''}`,
      })),
      ...(img.signatures ?? []).map((x) => ({
        name: 'lading:upstreamSignature',
        value: `${x.scheme} ${x.digest} key ${x.key} signature ${x.signature}`,
      })),
    ];
    components.push({
      type: 'container',
      'bom-ref': bomRef,
      name: repository,
      version: tag ?? img.digest,
      purl: ociPurl(repository, img.digest, tag),
      hashes: [hashOf(img.digest)],
      properties,
    });
  }
  const dependencies: CycloneDxBom['dependencies'] = [];
  for (const chart of lading.charts) {
    const bomRef = `chart:${chart.name}:${chart.version}@${chart.digest}`;
    const oci = chart.source.startsWith('oci://');
    const comp: CycloneDxComponent = {
      type: 'application',
      'bom-ref': bomRef,
      name: chart.name,
      version: chart.version,
      purl: oci
        ? ociPurl(chart.source.slice('oci://'.length), chart.digest, chart.version)
        : `pkg:generic/${purlEncode(chart.name)}@${purlEncode(chart.version)}`,
      hashes: [hashOf(chart.digest)],
      properties: [
        { name: 'lading:kind', value: 'helm-chart' },
        { name: 'lading:source', value: chart.source },
        ...(chart.archiveDigest ? [{ name: 'lading:archiveDigest', value: chart.archiveDigest }] : []),
      ],
    };
    if (/^(https?|oci):\/\//.test(chart.source))
      comp.externalReferences = [{ type: 'distribution', url: chart.source }];
    components.push(comp);
    const dependsOn = [
      ...new Set(chart.images.map((r) => imageRefs.get(r)).filter((r): r is string => !!r)),
    ].sort();
    dependencies.push({ ref: bomRef, dependsOn });
  }
  components.sort((a, b) => (a['bom-ref'] < b['bom-ref'] ? -1 : a['bom-ref'] > b['bom-ref'] ? 1 : 0));
  dependencies.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  const body = {
    metadata: {
      timestamp,
      tools: {
        components: [
          { type: 'application' as const, name: lading.builder.name, version: lading.builder.version },
        ],
      },
      component: {
        type: 'application' as const,
        'bom-ref': `bundle:${lading.name}:${lading.version}`,
        name: lading.name,
        version: lading.version,
      },
    },
    components,
    dependencies,
  };
  const hex = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidFrom(hex)}`,
    version: 1,
    ...body,
  };
}

/** The bytes of `sbom.cdx.json`. */
export function serializeSbom(bom: CycloneDxBom | object): Buffer {
  return Buffer.from(`${JSON.stringify(bom, null, 2)}\n`);
}
