import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  buildHelmArtifact,
  chartLayerOf,
  HelmMediaType,
  helmConfigBytes,
  helmOciTag,
  packChart,
  resolveChartLayer,
} from '../src/charts/index.ts';
import { bytesStream, type Fetcher } from '../src/content/index.ts';
import { digestOf } from '../src/digest/index.ts';
import { type Descriptor, encodeJson, InvalidManifestError, MediaType } from '../src/model/index.ts';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/charts/', import.meta.url));

function memoryFetcher(blobs: Buffer[]): Fetcher {
  const byDigest = new Map(blobs.map((b) => [digestOf(b), b]));
  return {
    async fetch(desc: Descriptor): Promise<Readable> {
      const b = byDigest.get(desc.digest);
      if (!b) throw new Error(`missing ${desc.digest}`);
      return bytesStream(b);
    },
  };
}

describe('charts: Helm OCI artifacts', () => {
  it('builds the config blob as Helm does: Chart.yaml fields as JSON, Helm field order, omitempty', async () => {
    const plain = await packChart(join(FIXTURES, 'plain'));
    assert.equal(
      helmConfigBytes(plain.metadata).toString(),
      '{"name":"plain","version":"0.1.0","description":"The smallest useful chart.","apiVersion":"v2"}',
    );
    const web = await packChart(join(FIXTURES, 'webapp'));
    const cfg = JSON.parse(helmConfigBytes(web.metadata).toString());
    assert.deepEqual(Object.keys(cfg), [
      'name',
      'home',
      'sources',
      'version',
      'description',
      'keywords',
      'maintainers',
      'apiVersion',
      'appVersion',
      'annotations',
      'dependencies',
      'type',
    ]);
    assert.deepEqual(Object.keys(cfg.annotations), ['artifacthub.io/images', 'category']);
    assert.deepEqual(cfg.dependencies, [
      { name: 'redis', version: '19.0.1', repository: 'file://charts/redis', alias: 'cache' },
    ]);
  });

  it('builds a deterministic manifest with Helm media types and annotations', async () => {
    const web = await packChart(join(FIXTURES, 'webapp'));
    const a = buildHelmArtifact({ metadata: web.metadata, chart: web.bytes, created: new Date(0) });
    const b = buildHelmArtifact({
      metadata: web.metadata,
      chart: { digest: web.digest, size: web.size },
      created: new Date(0),
    });
    assert.ok(a.manifest.bytes.equals(b.manifest.bytes));
    assert.equal(a.manifest.descriptor.digest, digestOf(a.manifest.bytes));
    assert.equal(a.manifest.descriptor.mediaType, MediaType.ociManifest);
    const m = JSON.parse(a.manifest.bytes.toString());
    assert.equal(m.schemaVersion, 2);
    assert.equal(m.config.mediaType, 'application/vnd.cncf.helm.config.v1+json');
    assert.equal(m.config.digest, digestOf(a.config.bytes));
    assert.deepEqual(m.layers, [
      {
        mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
        digest: web.digest,
        size: web.size,
      },
    ]);
    assert.equal(m.annotations['org.opencontainers.image.title'], 'webapp');
    assert.equal(m.annotations['org.opencontainers.image.version'], '1.4.2');
    assert.equal(m.annotations['org.opencontainers.image.description'], web.metadata.description);
    assert.equal(m.annotations['org.opencontainers.image.created'], '1970-01-01T00:00:00Z');
    assert.equal(
      m.annotations['org.opencontainers.image.authors'],
      'Acme Platform Team (platform@example.com)',
    );
    assert.equal(m.annotations.category, 'WebApplication');
    const noCreated = buildHelmArtifact({ metadata: web.metadata, chart: web.bytes });
    assert.equal(noCreated.manifest.manifest.annotations?.['org.opencontainers.image.created'], undefined);
    assert.equal(a.tag, '1.4.2');
    assert.equal(helmOciTag('1.0.0+build.7'), '1.0.0_build.7');
  });

  it('chart annotations cannot override title and version', async () => {
    const plain = await packChart(join(FIXTURES, 'plain'));
    const meta = {
      ...plain.metadata,
      annotations: { 'org.opencontainers.image.title': 'x', 'org.opencontainers.image.version': '9' },
    };
    const a = buildHelmArtifact({ metadata: meta, chart: plain.bytes });
    assert.equal(a.manifest.manifest.annotations?.['org.opencontainers.image.title'], 'plain');
    assert.equal(a.manifest.manifest.annotations?.['org.opencontainers.image.version'], '0.1.0');
  });

  it('resolves the chart layer from a manifest through a Fetcher, and refuses non-charts', async () => {
    const plain = await packChart(join(FIXTURES, 'plain'));
    const art = buildHelmArtifact({ metadata: plain.metadata, chart: plain.bytes });
    const fetcher = memoryFetcher([art.manifest.bytes, art.config.bytes, plain.bytes]);
    const r = await resolveChartLayer(fetcher, art.manifest.descriptor);
    assert.deepEqual(r.layer, art.layer);
    assert.equal(r.config.mediaType, HelmMediaType.config);

    const image = encodeJson({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: digestOf('{}'), size: 2 },
      layers: [],
    });
    const imgDesc = { mediaType: MediaType.ociManifest, digest: digestOf(image), size: image.length };
    await assert.rejects(resolveChartLayer(memoryFetcher([image]), imgDesc), InvalidManifestError);
    const twoLayers = { ...art.manifest.manifest, layers: [art.layer, art.layer] };
    assert.throws(() => chartLayerOf(twoLayers), InvalidManifestError);
  });
});
