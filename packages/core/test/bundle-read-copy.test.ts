/**
 * Integration: a bundle-shaped tar made from @lading/testkit's generated images (GNU tar +
 * openssl, not Lading's writer) verifies, and the copy engine copies every image out of it
 * through BundleTarget into an OCI layout with identical digests.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTestImages } from '@lading/testkit';
import { BundleTarget, verifyBundle } from '../src/bundle/index.ts';
import { copy } from '../src/copy/index.ts';
import { OciLayout } from '../src/layout/index.ts';
import { makeKeys, run, sha256hex, sign, tarUp, tmp } from './bundle-read-fixture.ts';

describe('bundle reading: copy out of a bundle made from testkit images', () => {
  let root: string;

  before(() => {
    root = tmp();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('verifies, then copies every image through BundleTarget into a layout', async () => {
    const keys = makeKeys(root);
    const staging = join(root, 'staging');
    const images = await writeTestImages(staging, { largeLayerBytes: 2 * 1024 * 1024 });
    assert.ok(images.length >= 5);
    const index = JSON.parse(readFileSync(join(staging, 'index.json'), 'utf8'));
    for (const d of index.manifests) {
      const ref = `docker.io/${d.annotations['org.opencontainers.image.ref.name']}`;
      d.annotations = { 'org.opencontainers.image.ref.name': ref, 'io.containerd.image.name': ref };
    }
    writeFileSync(join(staging, 'index.json'), JSON.stringify(index));
    const lading = {
      schemaVersion: 1,
      name: 'testkit',
      version: '1.0.0',
      created: '2024-01-01T00:00:00Z',
      builder: { name: 'test', version: '0' },
      platforms: [],
      images: images.map((i) => ({
        ref: `docker.io/${i.ref}`,
        digest: i.digest,
        upstreamDigest: i.digest,
        mediaType: i.mediaType,
        platforms: i.platforms,
        size: i.size,
      })),
      charts: [],
      releases: [],
      files: [],
    };
    writeFileSync(join(staging, 'lading.json'), JSON.stringify(lading));
    writeFileSync(
      join(staging, 'sbom.cdx.json'),
      JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6' }),
    );
    const blobs = readdirSync(join(staging, 'blobs', 'sha256'))
      .sort()
      .map((h) => `blobs/sha256/${h}`);
    const summed = ['oci-layout', 'lading.json', 'index.json', 'sbom.cdx.json', ...blobs];
    run('sh', ['-c', `sha256sum ${summed.join(' ')} > SHA256SUMS`], staging);
    sign(staging, keys.key);
    const tar = tarUp(
      staging,
      ['oci-layout', 'lading.json', 'SHA256SUMS', 'SHA256SUMS.sig', 'index.json', 'sbom.cdx.json', ...blobs],
      join(root, 'testkit.tar'),
    );

    const report = await verifyBundle(tar, { publicKey: keys.pub });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.images.length, images.length);

    const target = await BundleTarget.open(tar);
    const out = await OciLayout.open(join(root, 'out'), { create: true });
    try {
      for (const i of images) {
        const r = await copy(target, `docker.io/${i.ref}`, out, i.ref);
        assert.equal(r.digest, i.digest, i.ref);
      }
    } finally {
      await target.close();
    }
    const copied = readdirSync(join(root, 'out', 'blobs', 'sha256'));
    assert.deepEqual(copied.sort(), blobs.map((b) => b.slice('blobs/sha256/'.length)).sort());
    for (const h of copied) assert.equal(sha256hex(readFileSync(join(root, 'out', 'blobs', 'sha256', h))), h);
  });
});
