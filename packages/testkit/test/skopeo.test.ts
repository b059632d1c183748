import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  type RegistryServer,
  SkopeoError,
  seededRef,
  seedRegistry,
  skopeo,
  skopeoArgs,
  skopeoDigest,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';

describe('skopeo against the test registries', () => {
  let dir: Awaited<ReturnType<typeof tmpDir>>;
  let layout: string;
  let images: TestImage[];
  before(async () => {
    dir = await tmpDir('lading-testkit-skopeo-');
    layout = join(dir.path, 'layout');
    images = await writeTestImages(layout);
  });
  after(async () => {
    await dir?.cleanup();
  });

  for (const mode of ['http', 'tls', 'basic', 'token'] as const) {
    describe(`mode ${mode}`, () => {
      let reg: RegistryServer;
      before(async () => {
        reg = await startRegistry({ mode });
        await seedRegistry(reg, layout, images, { prefix: 'seed' });
      });
      after(async () => {
        await reg?.stop();
      });

      it('holds every pushed image under the digest writeTestImages computed', async () => {
        for (const image of images) {
          assert.equal(await skopeoDigest(seededRef(reg, image, 'seed'), reg), image.digest, image.ref);
        }
      });

      it('holds every child of the multi-arch index', async () => {
        const multi = images.find((i) => i.ref === 'demo/multi:3.0')!;
        for (const child of multi.manifests!) {
          const ref = `docker://${reg.host}/seed/demo/multi@${child.digest}`;
          assert.equal(await skopeoDigest(ref, reg), child.digest);
        }
        const { stdout } = await skopeo(['list-tags', `docker://${reg.host}/seed/demo/multi`], {
          registry: reg,
        });
        assert.deepEqual((JSON.parse(stdout) as { Tags: string[] }).Tags, ['3.0']);
      });

      it('copies registry to layout and back without changing the Docker-typed digest', async () => {
        const legacy = images.find((i) => i.ref === 'demo/legacy:2.0')!;
        const out = join(dir.path, `out-${mode}`);
        await skopeo(
          ['copy', '--preserve-digests', `docker://${seededRef(reg, legacy, 'seed')}`, `dir:${out}`],
          { registry: reg },
        );
        await skopeo(['copy', '--preserve-digests', `dir:${out}`, `docker://${reg.host}/copied/legacy:x`], {
          registry: reg,
        });
        assert.equal(await skopeoDigest(`${reg.host}/copied/legacy:x`, reg), legacy.digest);
      });

      if (mode === 'basic' || mode === 'token') {
        it('refuses a wrong password and anonymous access', async () => {
          const ref = `docker://${seededRef(reg, images[0]!, 'seed')}`;
          const wrong = skopeo(['inspect', '--raw', ref], {
            registry: reg,
            as: { username: reg.username!, password: 'wrong' },
          });
          await assert.rejects(wrong, (err: unknown) => {
            assert.ok(err instanceof SkopeoError);
            assert.match(err.stderr, /401|unauthorized|authentication required/i);
            return true;
          });
          await assert.rejects(
            skopeo(['inspect', '--raw', ref], { registry: reg, as: 'anonymous' }),
            SkopeoError,
          );
        });
      }
    });
  }

  it('copies between two registries of different modes with src/dest options', async () => {
    const src = await startRegistry({ mode: 'basic' });
    const dest = await startRegistry({ mode: 'token', readOnlyUser: true });
    try {
      const multi = images.find((i) => i.ref === 'demo/multi:3.0')!;
      await seedRegistry(src, layout, [multi]);
      await skopeo(
        [
          'copy',
          '--all',
          '--preserve-digests',
          `docker://${src.host}/demo/multi:3.0`,
          `docker://${dest.host}/m/multi:3.0`,
        ],
        { src, dest },
      );
      assert.equal(await skopeoDigest(`${dest.host}/m/multi:3.0`, dest), multi.digest);
      // the pull-only user reads it but cannot push
      assert.equal(await skopeoDigest(`${dest.host}/m/multi:3.0`, dest, { as: 'ro' }), multi.digest);
      await assert.rejects(
        skopeo(['copy', '--all', `docker://${src.host}/demo/multi:3.0`, `docker://${dest.host}/m/other:1`], {
          src,
          dest,
          destAs: 'ro',
        }),
        SkopeoError,
      );
    } finally {
      await src.stop();
      await dest.stop();
    }
  });

  it('puts the flags each mode needs next to the subcommand', () => {
    const base = { host: '127.0.0.1:1', dataDir: '/x', logFile: '/x/log', stop: async () => {} };
    const http: RegistryServer = { ...base, mode: 'http', url: 'http://127.0.0.1:1' };
    const basic: RegistryServer = {
      ...base,
      host: '127.0.0.1:2',
      mode: 'basic',
      url: 'https://127.0.0.1:2',
      certDir: '/c',
      username: 'u',
      password: 'p',
    };
    assert.deepEqual(skopeoArgs(['inspect', 'docker://127.0.0.1:1/a:1'], { registry: http }), [
      '--insecure-policy',
      'inspect',
      '--tls-verify=false',
      '--no-creds',
      'docker://127.0.0.1:1/a:1',
    ]);
    assert.deepEqual(skopeoArgs(['copy', 'oci:/l:a:1', 'docker://127.0.0.1:2/a:1'], { registry: basic }), [
      '--insecure-policy',
      'copy',
      '--dest-cert-dir',
      '/c',
      '--dest-tls-verify=true',
      '--dest-creds',
      'u:p',
      'oci:/l:a:1',
      'docker://127.0.0.1:2/a:1',
    ]);
    assert.deepEqual(
      skopeoArgs(['copy', 'docker://127.0.0.1:1/a:1', 'docker://127.0.0.1:2/a:1'], {
        src: http,
        dest: basic,
      }).slice(2, 5),
      ['--src-tls-verify=false', '--src-no-creds', '--dest-cert-dir'],
    );
  });
});
