import assert from 'node:assert/strict';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '@lading/testkit';
import {
  discoverChartImages,
  discoverImages,
  loadLocalChart,
  packChart,
  readChartArchive,
} from '../src/charts/index.ts';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/charts/', import.meta.url));
const WEBAPP = join(FIXTURES, 'webapp');
const PLAIN = join(FIXTURES, 'plain');
const DIGEST = 'sha256:4f0a2b6e1c1f3f1a7f2a5d4b9a0d1e2c3b4a5968778695a4b3c2d1e0f9a8b7c6';

describe('charts: image discovery', () => {
  it('finds maps, strings, digests, subchart images and the artifacthub annotation in webapp', async () => {
    const { archive } = await loadLocalChart(WEBAPP);
    const r = discoverChartImages(archive);
    assert.deepEqual(
      r.images.map((i) => [i.image, i.path, i.kind, i.chart]),
      [
        ['docker.io/acme/webapp:2.3.1', 'image', 'map', 'webapp'],
        ['docker.io/bitnami/redis-exporter:7.2.4', 'cache.metrics.image', 'map', 'redis'],
        ['docker.io/bitnami/redis:7.2.4-debian-12-r9', 'cache.image', 'map', 'redis'],
        ['docker.io/fluent/fluent-bit:3.1.9', 'sidecars.logShipper.image', 'string', 'webapp'],
        ['docker.io/library/busybox:1.36', 'initContainers[0].image', 'string', 'webapp'],
        ['ghcr.io/acme/migrate:1.10', 'migrations.image', 'map', 'webapp'],
        [`quay.io/prometheus/statsd-exporter:v0.27.1@${DIGEST}`, 'metrics.image', 'map', 'webapp'],
        ['registry.k8s.io/kubectl:v1.31.0', 'annotations.artifacthub.io/images[1]', 'annotation', 'webapp'],
      ],
    );
    assert.deepEqual(
      r.skipped.map((s) => [s.path, s.reason]),
      [['extra.image', 'templated value']],
    );
  });

  it('is deterministic and the same from a folder and from its archive', async () => {
    const a = discoverImages((await loadLocalChart(WEBAPP)).archive);
    const b = discoverImages(await readChartArchive((await packChart(WEBAPP)).bytes));
    assert.deepEqual(a, b);
  });

  it('normalises a minimal chart', async () => {
    const { archive } = await loadLocalChart(PLAIN);
    assert.deepEqual(discoverImages(archive), [
      { image: 'docker.io/library/nginx:1.27.3', path: 'image', kind: 'map', chart: 'plain' },
    ]);
  });

  it('applies global.imageRegistry (parent wins over subcharts), sibling registry, appVersion and latest', async () => {
    const tmp = await tmpDir();
    try {
      const dir = join(tmp.path, 'webapp');
      await cp(WEBAPP, dir, { recursive: true });
      await writeFile(
        join(dir, 'values.yaml'),
        [
          'global:',
          '  imageRegistry: mirror.local:5000',
          'image:',
          '  registry: docker.io',
          '  repository: acme/webapp',
          '  tag: null',
          'worker:',
          '  registry: quay.io',
          '  image:',
          '    repository: acme/worker',
          '    tag: "2"',

          'list:',
          '  - image: alpine',
          '',
        ].join('\n'),
      );
      const { archive } = await loadLocalChart(dir);
      const got = discoverImages(archive).map((i) => `${i.path} ${i.image}`);
      assert.deepEqual(got, [
        'annotations.artifacthub.io/images[0] docker.io/acme/webapp:2.3.1',
        'list[0].image docker.io/library/alpine:latest',
        'image mirror.local:5000/acme/webapp:2.3.1',
        'worker.image mirror.local:5000/acme/worker:2',
        'cache.metrics.image mirror.local:5000/bitnami/redis-exporter:7.2.4',
        'cache.image mirror.local:5000/bitnami/redis:7.2.4-debian-12-r9',
        'annotations.artifacthub.io/images[1] registry.k8s.io/kubectl:v1.31.0',
      ]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('uses a sibling registry, and latest when there is no tag and no appVersion', async () => {
    const tmp = await tmpDir();
    try {
      const dir = join(tmp.path, 'plain');
      await cp(PLAIN, dir, { recursive: true });
      await writeFile(
        join(dir, 'values.yaml'),
        'app:\n  registry: quay.io\n  image:\n    repository: acme/app\n',
      );
      const images = discoverImages((await loadLocalChart(dir)).archive);
      assert.deepEqual(images, [
        { image: 'quay.io/acme/app:latest', path: 'app.image', kind: 'map', chart: 'plain' },
      ]);
    } finally {
      await tmp.cleanup();
    }
  });

  it('walks subcharts packed as charts/*.tgz', async () => {
    const tmp = await tmpDir();
    try {
      const dir = join(tmp.path, 'webapp');
      await cp(WEBAPP, dir, { recursive: true });
      await writeFile(join(dir, 'charts', 'plain-0.1.0.tgz'), (await packChart(PLAIN)).bytes);
      const images = discoverImages((await loadLocalChart(dir)).archive);
      const plain = images.find((i) => i.chart === 'plain');
      assert.deepEqual(plain, {
        image: 'docker.io/library/nginx:1.27.3',
        path: 'plain.image',
        kind: 'map',
        chart: 'plain',
      });
    } finally {
      await tmp.cleanup();
    }
  });
  it('takes image-shaped maps under other keys (bitnami apache git:) and leaves settings maps alone', async () => {
    const tmp = await tmpDir();
    try {
      const dir = join(tmp.path, 'plain');
      await cp(PLAIN, dir, { recursive: true });
      // The shape of bitnami/apache's and bitnami/pytorch's values, trimmed.
      await writeFile(
        join(dir, 'values.yaml'),
        [
          'image:',
          '  registry: docker.io',
          '  repository: bitnami/apache',
          '  tag: 2.4.62-debian-12-r12',
          'git:',
          '  registry: docker.io',
          '  repository: bitnami/git',
          '  tag: 2.47.0-debian-12-r0',
          '  digest: ""',
          '  pullPolicy: IfNotPresent',
          'cloneHtdocsFromGit:',
          '  enabled: false',
          '  repository: ""',
          '  branch: ""',
          'sources:',
          '  chart: {registry: charts, repository: "https://charts.example.com/stable", tag: "1.0"}',
          '  config: {repository: "git@github.com:acme/config.git", tag: main, pullPolicy: Always}',
          '  noshape: {repository: acme/tools, tag: "1.0"}',
          '  templated: {registry: docker.io, repository: "{{ .Values.repo }}", tag: "1.0"}',
          '',
        ].join('\n'),
      );
      const r = discoverChartImages((await loadLocalChart(dir)).archive);
      assert.deepEqual(
        r.images.map((i) => [i.image, i.path, i.kind]),
        [
          ['docker.io/bitnami/apache:2.4.62-debian-12-r12', 'image', 'map'],
          ['docker.io/bitnami/git:2.47.0-debian-12-r0', 'git', 'map'],
        ],
      );
      assert.deepEqual(r.skipped, []);
    } finally {
      await tmp.cleanup();
    }
  });
});
