/**
 * End to end: a registry seeded by skopeo → our copy engine → an OCI layout → our copy engine →
 * another registry, in each of the four registry modes, checked with skopeo as the independent
 * client: every root, child manifest and platform-filtered index digest must match.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  type CopyEvent,
  type CopyResult,
  type Credential,
  copy,
  type Keychain,
  Limiter,
  OciLayout,
  parsePlatform,
  Registry,
  type RegistryOptions,
} from '@lading/core';
import {
  type RegistryMode,
  type RegistryServer,
  seededRef,
  seedRegistry,
  skopeo,
  skopeoDigest,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';

const noKeychain: Keychain = { get: async () => undefined };

function optionsFor(reg: RegistryServer): RegistryOptions {
  const credentials: Credential | undefined = reg.username
    ? { username: reg.username, password: reg.password as string }
    : undefined;
  return {
    plainHttp: reg.mode === 'http',
    ...(reg.caFile ? { caFile: reg.caFile } : {}),
    keychain: noKeychain,
    ...(credentials ? { credentials } : {}),
    retry: { maxAttempts: 3, baseDelayMs: 20 },
  };
}

const MODES: RegistryMode[] = ['http', 'tls', 'basic', 'token'];

for (const mode of MODES) {
  describe(`round trip registry → layout → registry (${mode})`, function () {
    this.timeout(300_000);
    let tmp: { path: string; cleanup(): Promise<void> };
    let images: TestImage[];
    let srcReg: RegistryServer;
    let dstReg: RegistryServer;
    let src: Registry;
    let dst: Registry;

    before(async () => {
      tmp = await tmpDir(`lading-roundtrip-${mode}-`);
      const seedDir = path.join(tmp.path, 'seed');
      images = await writeTestImages(seedDir);
      [srcReg, dstReg] = await Promise.all([startRegistry({ mode }), startRegistry({ mode })]);
      await seedRegistry(srcReg, seedDir, images);
      src = new Registry(srcReg.host, optionsFor(srcReg));
      dst = new Registry(dstReg.host, optionsFor(dstReg));
    });

    after(async () => {
      await src?.close();
      await dst?.close();
      await Promise.all([srcReg?.stop(), dstReg?.stop()]);
      await tmp?.cleanup();
    });

    it('keeps every digest, copies shared layers once, mounts within the target', async () => {
      assert.ok(images.length >= 6, 'testkit wrote its images');
      const layout = await OciLayout.open(path.join(tmp.path, 'layout'), { create: true });
      const limiter = new Limiter(4);

      // registry → layout, every image at once through one limiter
      const pulled = await Promise.all(
        images.map((img) =>
          copy(src.repository(img.name), img.tag, layout, img.ref, { limiter, label: img.ref }),
        ),
      );
      for (const [i, img] of images.entries()) {
        const res = pulled[i] as CopyResult;
        assert.equal(res.digest, img.digest, `${img.ref} pulled with its digest`);
        assert.equal(res.upstreamDigest, img.digest);
        assert.deepEqual(res.platforms, img.platforms, `${img.ref} platforms`);
        assert.equal((await layout.resolve(img.ref)).digest, img.digest);
      }
      const blobsMoved = pulled.reduce((a, r) => a + r.blobs.copied, 0);
      const uniqueBlobs = new Set(
        images.flatMap((img) => img.blobs.filter((d) => !img.manifests?.some((m) => m.digest === d))),
      );
      assert.ok(
        blobsMoved <= uniqueBlobs.size,
        `no blob fetched twice (${blobsMoved} ≤ ${uniqueBlobs.size})`,
      );

      // layout → registry: base-a first, then the rest with mounts from demo/base-a
      const byName = new Map(images.map((img) => [img.name, img]));
      const baseA = byName.get('demo/base-a') as TestImage;
      const push = (img: TestImage, extra: { onProgress?: (e: CopyEvent) => void } = {}) =>
        copy(layout, img.ref, dst.repository(img.name), img.tag, {
          limiter,
          label: img.ref,
          mountFrom: () => (img.name === baseA.name ? [] : [baseA.name]),
          ...extra,
        });
      const first = await push(baseA);
      assert.equal(first.digest, baseA.digest);
      const rest = await Promise.all(images.filter((img) => img !== baseA).map((img) => push(img)));
      const pushedB = rest.find((r) => r.digest === byName.get('demo/base-b')?.digest);
      assert.ok(pushedB, 'demo/base-b pushed');
      assert.ok(pushedB.blobs.mounted >= 1, 'the layer shared with base-a was mounted, not uploaded');

      // skopeo, the independent client, reads the same digests at the target
      for (const img of images) {
        assert.equal(
          await skopeoDigest(seededRef(dstReg, img), dstReg),
          img.digest,
          `${img.ref} at the target`,
        );
        for (const m of img.manifests ?? []) {
          assert.equal(
            await skopeoDigest(`${dstReg.host}/${img.name}@${m.digest}`, dstReg),
            m.digest,
            `${img.ref} ${m.platform} at the target`,
          );
        }
      }
      // and can pull the big image's blobs (it verifies every layer digest)
      const big = byName.get('demo/big') as TestImage;
      await skopeo(
        ['copy', `docker://${seededRef(dstReg, big)}`, `oci:${path.join(tmp.path, 'skopeo-big')}:big`],
        {
          src: dstReg,
        },
      );
    });

    it('a platform filter writes a new index that the target serves under that digest', async () => {
      const multi = images.find((img) => img.manifests && img.manifests.length > 1) as TestImage;
      const layout = await OciLayout.open(path.join(tmp.path, 'filtered'), { create: true });
      const pulled = await copy(src.repository(multi.name), multi.tag, layout, multi.ref, {
        platforms: [parsePlatform('linux/arm64')],
      });
      assert.equal(pulled.upstreamDigest, multi.digest);
      assert.notEqual(pulled.digest, multi.digest);
      assert.deepEqual(pulled.platforms, ['linux/arm64/v8']);
      const pushed = await copy(layout, multi.ref, dst.repository('filtered/multi'), 'arm64');
      assert.equal(pushed.digest, pulled.digest);
      assert.equal(await skopeoDigest(`${dstReg.host}/filtered/multi:arm64`, dstReg), pulled.digest);
      const raw = JSON.parse(
        (
          await skopeo(['inspect', '--raw', `docker://${dstReg.host}/filtered/multi:arm64`], {
            registry: dstReg,
          })
        ).stdout,
      );
      assert.deepEqual(
        raw.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture),
        ['arm64'],
      );
    });
  });
}
