import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { MT, REF_NAME, type TestImage, tmpDir, writeTestImages } from '@lading/testkit';

const run = promisify(execFile);

async function sha256File(path: string, gunzip = false): Promise<string> {
  const hash = createHash('sha256');
  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) hash.update(chunk);
  };
  if (gunzip) await pipeline(createReadStream(path), createGunzip(), sink);
  else await pipeline(createReadStream(path), sink);
  return 'sha256:' + hash.digest('hex');
}

interface Manifest {
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number }[];
  manifests?: { digest: string; platform: { architecture: string; os: string; variant?: string } }[];
}

describe('writeTestImages', () => {
  let dir: Awaited<ReturnType<typeof tmpDir>>;
  let layout: string;
  let images: TestImage[];
  const blob = (d: string): string => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const json = async <T>(d: string): Promise<T> => JSON.parse(await readFile(blob(d), 'utf8')) as T;
  const byRef = (ref: string): TestImage => {
    const i = images.find((x) => x.ref === ref);
    assert.ok(i, `no image ${ref}`);
    return i;
  };

  before(async () => {
    dir = await tmpDir('lading-testkit-images-');
    layout = join(dir.path, 'layout');
    images = await writeTestImages(layout);
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('writes the six images with the right media types and platforms', () => {
    assert.deepEqual(
      images.map((i) => [i.ref, i.mediaType, i.platforms.join(' ')]),
      [
        ['demo/app:1.0', MT.ociManifest, 'linux/amd64'],
        ['demo/legacy:2.0', MT.dockerManifest, 'linux/amd64'],
        ['demo/multi:3.0', MT.ociIndex, 'linux/amd64 linux/arm64/v8 linux/arm/v7'],
        ['demo/base-a:1', MT.ociManifest, 'linux/amd64'],
        ['demo/base-b:1', MT.ociManifest, 'linux/amd64'],
        ['demo/big:1.0', MT.ociManifest, 'linux/amd64'],
      ],
    );
  });

  it('is an OCI layout whose index.json names every image', async () => {
    assert.deepEqual(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      schemaVersion: number;
      manifests: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[];
    };
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(
      index.manifests.map((d) => [d.annotations[REF_NAME], d.digest, d.mediaType, d.size]),
      images.map((i) => [i.ref, i.digest, i.mediaType, i.size]),
    );
  });

  it('stores every blob under its own sha256, and each image lists exactly what it reaches', async () => {
    const files = await readdir(join(layout, 'blobs', 'sha256'));
    const all = new Set(images.flatMap((i) => i.blobs));
    assert.deepEqual(new Set(files.map((f) => `sha256:${f}`)), all);
    for (const d of all) assert.equal(await sha256File(blob(d)), d, `blob ${d}`);
    for (const image of images) {
      const root = await readFile(blob(image.digest));
      assert.equal(root.length, image.size);
      let total = 0;
      for (const d of image.blobs) total += (await readFile(blob(d))).length;
      assert.equal(total, image.totalSize, image.ref);
    }
  });

  it('gives configs whose diff_ids are the sha256 of the uncompressed layers', async () => {
    for (const image of images) {
      const roots = image.manifests ? image.manifests.map((m) => m.digest) : [image.digest];
      for (const m of roots) {
        const manifest = await json<Manifest>(m);
        const config = await json<{
          architecture: string;
          os: string;
          rootfs: { type: string; diff_ids: string[] };
        }>(manifest.config.digest);
        assert.equal(config.rootfs.type, 'layers');
        assert.equal(config.os, 'linux');
        const diffIds: string[] = [];
        for (const l of manifest.layers) diffIds.push(await sha256File(blob(l.digest), true));
        assert.deepEqual(config.rootfs.diff_ids, diffIds, `${image.ref} ${m}`);
      }
    }
  });

  it('uses Docker media types throughout demo/legacy:2.0', async () => {
    const m = await json<Manifest>(byRef('demo/legacy:2.0').digest);
    assert.equal(m.mediaType, MT.dockerManifest);
    assert.equal(m.config.mediaType, MT.dockerConfig);
    assert.deepEqual(
      m.layers.map((l) => l.mediaType),
      [MT.dockerLayer],
    );
  });

  it('builds demo/multi:3.0 as an index of per-platform manifests with matching configs', async () => {
    const multi = byRef('demo/multi:3.0');
    const index = await json<Manifest>(multi.digest);
    assert.deepEqual(
      index.manifests!.map((m) => m.digest),
      multi.manifests!.map((m) => m.digest),
    );
    for (const child of index.manifests!) {
      const m = await json<Manifest>(child.digest);
      const config = await json<{ architecture: string; variant?: string }>(m.config.digest);
      assert.equal(config.architecture, child.platform.architecture);
      assert.equal(config.variant, child.platform.variant);
    }
    assert.equal(new Set(multi.manifests!.map((m) => m.digest)).size, 3);
  });

  it('shares the first layer of demo/base-a:1 and demo/base-b:1, and only that one', async () => {
    const a = await json<Manifest>(byRef('demo/base-a:1').digest);
    const b = await json<Manifest>(byRef('demo/base-b:1').digest);
    assert.equal(a.layers.length, 2);
    assert.equal(a.layers[0]!.digest, b.layers[0]!.digest);
    assert.notEqual(a.layers[1]!.digest, b.layers[1]!.digest);
  });

  it('gives demo/big:1.0 a 24 MiB incompressible layer by default', async () => {
    const m = await json<Manifest>(byRef('demo/big:1.0').digest);
    assert.equal(m.layers.length, 1);
    assert.ok(m.layers[0]!.size > 24 * 1024 * 1024, `compressed size ${m.layers[0]!.size}`);
  });

  it('gives the same digests and bytes on every run, and other digests for another large layer size', async () => {
    const again = await tmpDir('lading-testkit-images-');
    try {
      const second = await writeTestImages(join(again.path, 'layout'));
      assert.deepEqual(second, images);
      assert.deepEqual(
        await readFile(join(again.path, 'layout', 'index.json')),
        await readFile(join(layout, 'index.json')),
      );
      const small = await writeTestImages(join(again.path, 'small'), { largeLayerBytes: 100_000 });
      assert.equal(small.find((i) => i.ref === 'demo/big:1.0')!.totalSize < 200_000, true);
      assert.notEqual(small.find((i) => i.ref === 'demo/big:1.0')!.digest, byRef('demo/big:1.0').digest);
      assert.equal(small.find((i) => i.ref === 'demo/app:1.0')!.digest, byRef('demo/app:1.0').digest);
    } finally {
      await again.cleanup();
    }
  });

  it('keeps other refs already in index.json', async () => {
    const d = await tmpDir('lading-testkit-images-');
    try {
      const l = join(d.path, 'layout');
      await writeTestImages(l, { largeLayerBytes: 1000 });
      const idxFile = join(l, 'index.json');
      const idx = JSON.parse(await readFile(idxFile, 'utf8')) as {
        manifests: { annotations: Record<string, string> }[];
      };
      const extra = { ...idx.manifests[0]!, annotations: { [REF_NAME]: 'other/thing:9' } };
      await writeFile(idxFile, JSON.stringify({ ...idx, manifests: [extra, ...idx.manifests] }));
      await writeTestImages(l, { largeLayerBytes: 1000 });
      const after = JSON.parse(await readFile(idxFile, 'utf8')) as {
        manifests: { annotations: Record<string, string> }[];
      };
      assert.deepEqual(
        after.manifests.map((m) => m.annotations[REF_NAME]),
        ['other/thing:9', ...images.map((i) => i.ref)],
      );
    } finally {
      await d.cleanup();
    }
  });

  it('is unpacked by umoci (demo/app:1.0)', async () => {
    await run('umoci', ['unpack', '--rootless', '--image', 'layout:demo/app:1.0', 'bundle'], {
      cwd: dir.path,
    });
    assert.equal(
      await readFile(join(dir.path, 'bundle', 'rootfs', 'app', 'hello.txt'), 'utf8'),
      'hello from demo/app 1.0\n',
    );
    const config = JSON.parse(await readFile(join(dir.path, 'bundle', 'config.json'), 'utf8')) as {
      process: { args: string[] };
    };
    assert.deepEqual(config.process.args, ['/bin/sh']);
  });

  it('has layers umoci unpacks with shared base content (demo/base-b:1)', async () => {
    await run('umoci', ['unpack', '--rootless', '--image', 'layout:demo/base-b:1', 'bundle-b'], {
      cwd: dir.path,
    });
    const root = join(dir.path, 'bundle-b', 'rootfs');
    assert.match(await readFile(join(root, 'base', 'os-release'), 'utf8'), /NAME=demo-base/);
    assert.equal(await readFile(join(root, 'srv-b', 'index.html'), 'utf8'), '<h1>demo/base-b</h1>\n');
  });
});
