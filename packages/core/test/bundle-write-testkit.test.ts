import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs, type TestImage, writeTestImages } from '@lading/testkit';
import { generateKeyPair, type LadingJson, loadPrivateKey, writeBundle } from '../src/bundle/index.ts';
import { asDigest, type Digest, digestOf } from '../src/digest/index.ts';
import type { Descriptor } from '../src/model/index.ts';
import { DirFetcher, run } from './bundle-write-fixtures.ts';

describe('bundle writer with @lading/testkit images', function () {
  this.timeout(180_000);
  let dir: string;
  let images: TestImage[];
  let bundle: string;
  let pubPath: string;
  let layout: string;

  before(async function () {
    needs(this, run('skopeo', ['--version']).status === 0, 'skopeo');
    dir = await mkdtemp(join(tmpdir(), 'lading-bwtk-'));
    layout = join(dir, 'layout');
    images = await writeTestImages(layout, { largeLayerBytes: 4 * 1024 * 1024 });
    const descriptors: Descriptor[] = [];
    for (const img of images) {
      for (const b of img.blobs) {
        const size = (await stat(join(layout, 'blobs', 'sha256', b.slice('sha256:'.length)))).size;
        descriptors.push({ mediaType: 'application/octet-stream', digest: asDigest(b), size });
      }
    }
    const pair = generateKeyPair({ passphrase: 'pw' });
    pubPath = join(dir, 'release.pub');
    await writeFile(pubPath, pair.publicKeyPem);
    const lading: LadingJson = {
      schemaVersion: 1,
      name: 'testkit',
      version: '1.0.0',
      created: '2024-05-01T00:00:00Z',
      builder: { name: 'lading', version: '0.1.0' },
      platforms: [],
      images: images.map((i) => ({
        ref: i.ref,
        digest: i.digest as Digest,
        upstreamDigest: i.digest as Digest,
        mediaType: i.mediaType,
        platforms: i.platforms,
        size: i.totalSize,
      })),
      charts: [],
      releases: [],
      files: [],
    };
    bundle = join(dir, 'out', 'testkit.tar');
    await writeBundle({
      output: bundle,
      ladingJson: lading,
      // The layout's own index.json, byte for byte.
      index: await readFile(join(layout, 'index.json')),
      blobs: { fetcher: new DirFetcher(layout), descriptors },
      key: await loadPrivateKey(pair.privateKeyPem, 'pw'),
      epoch: 1_714_521_600,
    });
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('skopeo inspects every image in the bundle with the digest testkit wrote', () => {
    assert.ok(images.some((i) => i.ref === 'demo/app:1.0'));
    let checked = 0;
    for (const img of images) {
      const r = run('skopeo', ['inspect', '--raw', `oci-archive:${bundle}:${img.ref}`]);
      if (img.mediaType.startsWith('application/vnd.docker.')) {
        // skopeo 1.9 skips Docker-typed entries of any OCI layout's index.json ("no descriptor
        // found"): the bundle must behave exactly like the source layout here.
        const src = run('skopeo', ['inspect', '--raw', `oci:${layout}:${img.ref}`]);
        assert.equal(r.status, src.status, `${img.ref}: bundle and layout differ: ${r.stderr}`);
        if (r.status !== 0) continue;
      }
      assert.equal(r.status, 0, `${img.ref}: ${r.stderr}`);
      checked++;
      assert.equal(digestOf(r.stdout), img.digest, img.ref);
    }
    assert.ok(checked >= images.length - 1);
    const app = run('skopeo', ['inspect', `oci-archive:${bundle}:demo/app:1.0`]);
    assert.equal(app.status, 0, app.stderr);
    assert.equal(JSON.parse(app.stdout).Digest, images.find((i) => i.ref === 'demo/app:1.0')!.digest);
  });

  it('skopeo copies the multi-arch index and the big image out of the bundle (every blob read)', async () => {
    const multi = images.find((i) => i.manifests !== undefined)!;
    const dst = join(dir, 'copy');
    await mkdir(dst, { recursive: true });
    const c1 = run('skopeo', [
      'copy',
      '--all',
      '--quiet',
      `oci-archive:${bundle}:${multi.ref}`,
      `oci:${dst}:multi`,
    ]);
    assert.equal(c1.status, 0, c1.stderr);
    const big = images.find((i) => i.ref.startsWith('demo/big'))!;
    const c2 = run('skopeo', ['copy', '--quiet', `oci-archive:${bundle}:${big.ref}`, `oci:${dst}:big`]);
    assert.equal(c2.status, 0, c2.stderr);
    const idx = JSON.parse(await readFile(join(dst, 'index.json'), 'utf8'));
    const byRef = Object.fromEntries(
      idx.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [
        m.annotations['org.opencontainers.image.ref.name'],
        m.digest,
      ]),
    );
    assert.equal(byRef.multi, multi.digest);
    assert.equal(byRef.big, big.digest);
  });

  it('the auditor path passes on it: tar -x, openssl, sha256sum -c', async () => {
    const x = join(dir, 'x');
    await mkdir(x);
    assert.equal(run('tar', ['-xf', bundle, '-C', x]).status, 0);
    const o = run(
      'openssl',
      ['dgst', '-sha256', '-verify', pubPath, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      x,
    );
    assert.equal(o.status, 0, o.stdout + o.stderr);
    const s = run('sha256sum', ['-c', '--quiet', '--strict', 'SHA256SUMS'], x);
    assert.equal(s.status, 0, s.stdout + s.stderr);
  });
});
