import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildHelmArtifact, type Descriptor, loadLocalChart, openBundle, Registry } from '@lading/core';
import { chartImagesOf } from '../src/lib/chart-images.ts';
import { createBundle } from '../src/lib/create.ts';
import { type Fixture, startFixture } from './helpers.ts';

/** Charts from an OCI registry (Helm's media types) and from a local folder / .tgz. */
describe('lading-build create: oci:// and local charts', function () {
  this.timeout(180_000);
  let fx: Fixture;
  let pushed: Descriptor;

  before(async () => {
    fx = await startFixture();
    // `helm push` equivalent: the chart as a Helm OCI artifact at <host>/charts/shopchart:0.3.1
    const local = await loadLocalChart(fx.chartDir);
    const art = buildHelmArtifact({ metadata: local.archive.metadata, chart: local.bytes });
    const reg = new Registry(fx.registry.host, { plainHttp: true });
    const repo = reg.repository('charts/shopchart');
    await repo.push(art.config.descriptor, Readable.from([art.config.bytes]));
    await repo.push(art.layer, Readable.from([local.bytes]));
    await repo.push(art.manifest.descriptor, Readable.from([art.manifest.bytes]));
    await repo.tag(art.manifest.descriptor, art.tag);
    pushed = art.manifest.descriptor;
    await reg.close();
  });
  after(async () => {
    await fx?.stop();
  });

  it('pulls an oci:// chart with its upstream digest and discovers its images', async () => {
    const spec = join(fx.dir, 'oci.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1
name: oci
version: "1"
charts:
  - oci: oci://${fx.registry.host}/charts/shopchart
    version: 0.3.1
`,
    );
    const s = await createBundle({
      spec,
      output: join(fx.dir, 'oci.tar'),
      unsigned: true,
      cache: join(fx.dir, 'cache'),
      plainHttp: [fx.registry.host],
    });
    const b = await openBundle(s.path);
    try {
      const chart = b.ladingJson.charts[0]!;
      assert.equal(chart.name, 'shopchart');
      assert.equal(chart.digest, pushed.digest, 'the artifact is kept as the registry serves it');
      assert.equal(chart.source, `oci://${fx.registry.host}/charts/shopchart`);
      assert.equal(b.ladingJson.images.length, 3);
      const entry = b.indexJson.manifests.find(
        (d) => d.annotations?.['org.opencontainers.image.ref.name'] === 'charts/shopchart:0.3.1',
      );
      assert.equal(entry?.digest, pushed.digest);
    } finally {
      await b.close();
    }
  });

  it('resolves a semver range against the oci:// tags', async () => {
    const spec = join(fx.dir, 'oci-range.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1
name: ocir
version: "1"
charts:
  - oci: oci://${fx.registry.host}/charts/shopchart
    version: ">=0.3.0 <1"
    images: none
`,
    );
    const s = await createBundle({
      spec,
      output: join(fx.dir, 'ocir.tar'),
      unsigned: true,
      cache: join(fx.dir, 'cache'),
      plainHttp: [fx.registry.host],
    });
    assert.equal(s.chartList[0]?.version, '0.3.1');
    assert.equal(s.images, 0, 'images: none');
  });

  it('packs a local chart folder, takes an explicit image list', async () => {
    const spec = join(fx.dir, 'local.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1
name: local
version: "1"
charts:
  - path: ./chart-src/shopchart
    images:
      - ${fx.ref('demo/base-a')}
`,
    );
    const s = await createBundle({
      spec,
      output: join(fx.dir, 'local.tar'),
      unsigned: true,
      cache: join(fx.dir, 'cache'),
      plainHttp: [fx.registry.host],
    });
    assert.deepEqual(
      s.imageList.map((i) => i.ref),
      [fx.ref('demo/base-a')],
    );
    assert.deepEqual(s.chartList[0]?.images, [fx.ref('demo/base-a')]);
    assert.equal(s.chartList[0]?.source, join(fx.dir, 'chart-src/shopchart'));
  });

  it('images oci:// lists the discovered images', async () => {
    const r = await chartImagesOf({
      chart: `oci://${fx.registry.host}/charts/shopchart`,
      version: '0.3.1',
      plainHttp: [fx.registry.host],
    });
    assert.equal(r.chart.name, 'shopchart');
    assert.deepEqual(
      r.images.map((i) => i.image),
      ['app', 'base-a', 'base-b'].map((n) => fx.ref(`demo/${n}`)),
    );
  });
});
