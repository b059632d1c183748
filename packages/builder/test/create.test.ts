import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortedError,
  BundleTarget,
  ExitCode,
  KeyError,
  LadingError,
  NotFoundError,
  OutputExistsError,
  openBundle,
  writeKeyPair,
} from '@lading/core';
import { openDescriptors, skopeo, skopeoDigest } from '@lading/testkit';
import { type CreateOptions, createBundle } from '../src/lib/create.ts';
import { InsufficientSpaceError } from '../src/lib/space.ts';
import { type Fixture, run, sha256File, shopSpec, startFixture } from './helpers.ts';

const METADATA = ['oci-layout', 'lading.json', 'SHA256SUMS', 'SHA256SUMS.sig', 'index.json', 'sbom.cdx.json'];

describe('lading-build create (HTTP registry + chart repository on loopback)', function () {
  this.timeout(180_000);
  let fx: Fixture;
  let cache: string;
  let bundlePath: string;
  const EPOCH = '1700000000';

  const opts = (extra: Partial<CreateOptions> = {}): CreateOptions => ({
    spec: fx.spec,
    output: join(fx.dir, 'out') + '/',
    key: fx.key,
    cache,
    plainHttp: [fx.registry.host],
    ...extra,
  });

  before(async () => {
    fx = await startFixture();
    cache = join(fx.dir, 'cache');
    process.env.SOURCE_DATE_EPOCH = EPOCH;
    const s = await createBundle(opts());
    bundlePath = s.path;
  });
  after(async () => {
    delete process.env.SOURCE_DATE_EPOCH;
    await fx?.stop();
  });

  it('names the output <dir>/<name>-<version>.tar and records everything in lading.json', async () => {
    assert.equal(bundlePath, join(fx.dir, 'out', 'shop-1.0.0.tar'));
    const b = await openBundle(bundlePath);
    try {
      const l = b.ladingJson;
      assert.equal(l.schemaVersion, 1);
      assert.equal(l.name, 'shop');
      assert.equal(l.version, '1.0.0');
      assert.equal(l.created, new Date(Number(EPOCH) * 1000).toISOString().replace('.000Z', 'Z'));
      assert.equal(l.builder.name, 'lading-build');
      assert.deepEqual(
        l.images.map((i) => i.ref),
        ['multi', 'legacy', 'app', 'base-a', 'base-b'].map((n) => fx.ref(`demo/${n}`)),
      );
      assert.deepEqual(l.releases, [
        { name: 'shop', chart: 'shopchart', namespace: 'shop', values: ['values/shop.yaml'] },
      ]);
      assert.deepEqual(
        l.files.map((f) => f.path),
        ['docs/RUNBOOK.md', 'values/shop.yaml'],
      );
      assert.equal(l.since ?? null, null);
      // index.json: one descriptor per image and chart, named by full source ref / charts/<name>:<version>
      const names = b.indexJson.manifests.map((d) => d.annotations?.['org.opencontainers.image.ref.name']);
      assert.deepEqual(names, [...l.images.map((i) => i.ref), 'charts/shopchart:0.3.1']);
      for (const d of b.indexJson.manifests) {
        assert.equal(
          d.annotations?.['io.containerd.image.name'],
          d.annotations?.['org.opencontainers.image.ref.name'],
        );
      }
    } finally {
      await b.close();
    }
  });

  it('discovers the chart images (values map, string, annotation) and pulls them with upstream digests', async () => {
    const b = await openBundle(bundlePath);
    try {
      const chart = b.ladingJson.charts[0]!;
      assert.equal(chart.name, 'shopchart');
      assert.equal(chart.version, '0.3.1');
      assert.equal(chart.source, fx.chartRepo.url);
      assert.deepEqual(
        chart.images.sort(),
        ['app', 'base-a', 'base-b'].map((n) => fx.ref(`demo/${n}`)).sort(),
      );
      assert.deepEqual(
        chart.imagePaths?.map((p) => [p.path, p.kind]),
        [
          ['image', 'map'],
          ['worker.image', 'string'],
          ['annotations.artifacthub.io/images[0]', 'annotation'],
        ],
      );
      for (const n of ['app', 'base-a', 'base-b']) {
        const img = b.ladingJson.images.find((i) => i.ref === fx.ref(`demo/${n}`))!;
        assert.deepEqual(img.from, ['shopchart:0.3.1']);
        assert.equal(img.digest, fx.image(`demo/${n}`).digest);
        assert.equal(img.upstreamDigest, await skopeoDigest(fx.ref(`demo/${n}`), fx.registry));
      }
      // the chart is a Helm OCI artifact
      const t = new BundleTarget(b);
      const d = await t.resolve('charts/shopchart:0.3.1');
      assert.equal(d.digest, chart.digest);
    } finally {
      await b.close();
    }
  });

  it('skopeo reads the OCI images from oci-archive: with the upstream digests', async () => {
    for (const n of ['app', 'base-a', 'base-b']) {
      const ref = fx.ref(`demo/${n}`);
      const { stdout } = await skopeo(['inspect', '--raw', `oci-archive:${bundlePath}:${ref}`]);
      const digest = `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
      assert.equal(digest, fx.image(`demo/${n}`).digest, n);
    }
    // the filtered index too (its own, new digest), and an image of it
    const { stdout } = await skopeo([
      'inspect',
      '--raw',
      `oci-archive:${bundlePath}:${fx.ref('demo/multi')}`,
    ]);
    const idx = JSON.parse(stdout) as { manifests: Array<{ platform: { architecture: string } }> };
    assert.deepEqual(
      idx.manifests.map((m) => m.platform.architecture),
      ['amd64', 'arm64'],
    );
    const cfg = await skopeo([
      'inspect',
      '--override-os',
      'linux',
      '--override-arch',
      'arm64',
      '--override-variant',
      'v8',
      `oci-archive:${bundlePath}:${fx.ref('demo/multi')}`,
    ]);
    assert.equal((JSON.parse(cfg.stdout) as { Architecture: string }).Architecture, 'arm64');
  });

  it('keeps the Docker media-type image intact (read through our bundle reader)', async () => {
    // skopeo 1.9.3 skips index.json entries with Docker media types in OCI layouts (known).
    const t = await BundleTarget.open(bundlePath);
    try {
      const d = await t.resolve(fx.ref('demo/legacy'));
      assert.equal(d.digest, fx.image('demo/legacy').digest);
      assert.equal(d.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      for (const blob of fx.image('demo/legacy').blobs) assert.ok(t.bundle.hasBlob(blob as never), blob);
    } finally {
      await t.bundle.close();
    }
  });

  it('applies the per-image platform filter: a new index, upstream digest recorded', async () => {
    const b = await openBundle(bundlePath);
    try {
      const multi = b.ladingJson.images.find((i) => i.ref === fx.ref('demo/multi'))!;
      assert.equal(multi.upstreamDigest, fx.image('demo/multi').digest);
      assert.notEqual(multi.digest, multi.upstreamDigest);
      assert.deepEqual(multi.platforms, ['linux/amd64', 'linux/arm64/v8']);
      const armv7 = fx.image('demo/multi').manifests!.find((m) => m.platform === 'linux/arm/v7')!;
      assert.equal(b.hasBlob(armv7.digest as never), false, 'the dropped platform is not in the bundle');
      assert.equal(b.hasBlob(multi.digest), true);
    } finally {
      await b.close();
    }
  });

  it('lists metadata first in contract order and every blob once (tar -tf)', async () => {
    const { stdout } = await run('tar', ['-tf', bundlePath]);
    const names = stdout.trim().split('\n');
    assert.deepEqual(names.slice(0, 6), METADATA);
    assert.deepEqual(names.slice(6, 8), ['files/docs/RUNBOOK.md', 'files/values/shop.yaml']);
    const blobs = names.slice(8);
    assert.ok(blobs.every((n) => n.startsWith('blobs/sha256/')));
    assert.equal(new Set(blobs).size, blobs.length);
    // base-a and base-b share their first layer: it is stored once
    const a = new Set(fx.image('demo/base-a').blobs);
    const shared = fx.image('demo/base-b').blobs.filter((d) => a.has(d));
    assert.ok(shared.length > 0);
    for (const d of shared) assert.equal(blobs.filter((n) => n === `blobs/sha256/${d.slice(7)}`).length, 1);
  });

  it('passes the auditor check: tar -x, openssl dgst -verify, sha256sum -c', async () => {
    const dir = join(fx.dir, 'extract');
    await mkdir(dir);
    await run('tar', ['-xf', bundlePath, '-C', dir]);
    const v = await run(
      'openssl',
      ['dgst', '-sha256', '-verify', fx.pub, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      dir,
    );
    assert.match(v.stdout, /Verified OK/);
    const c = await run('sha256sum', ['-c', '--strict', 'SHA256SUMS'], dir);
    assert.ok(!/FAILED/.test(c.stdout));
    assert.ok(c.stdout.trim().split('\n').length > 10);
  });

  it('is reproducible: same spec, sources and SOURCE_DATE_EPOCH give a byte-identical bundle (fresh cache)', async () => {
    const again = await createBundle(
      opts({ output: join(fx.dir, 'again.tar'), cache: join(fx.dir, 'cache2') }),
    );
    assert.equal(await sha256File(again.path), await sha256File(bundlePath));
    assert.equal(again.digest, `sha256:${await sha256File(bundlePath)}`);
  });

  it('reports a summary with dedup saving, and a re-run downloads nothing (cache)', async () => {
    const s = await createBundle(opts({ output: join(fx.dir, 'rerun.tar') }));
    assert.equal(s.images, 5);
    assert.equal(s.charts, 1);
    assert.equal(s.downloadedBytes, 0);
    // The layers came from the bundle built before (the cache holds no layers), opened for that
    // and closed again: no descriptor of it is left open in this process.
    assert.deepEqual(openDescriptors(bundlePath), [], `descriptors of ${bundlePath} left open`);
    assert.ok(s.dedupSavedBytes > 0, 'base-a/base-b share a layer');
    assert.equal(s.signed, true);
    assert.ok(s.bytes > s.blobBytes);
  });

  it('refuses an existing output without --force, replaces it with --force', async () => {
    await assert.rejects(createBundle(opts()), (err: unknown) => {
      assert.ok(err instanceof OutputExistsError);
      assert.equal(err.exitCode, ExitCode.usage);
      return true;
    });
    const s = await createBundle(opts({ force: true }));
    assert.equal(s.path, bundlePath);
  });

  it('refuses to write unsigned unless --unsigned; an unsigned bundle has no SHA256SUMS.sig', async () => {
    await assert.rejects(
      createBundle(opts({ key: undefined, output: join(fx.dir, 'u.tar') })),
      (err: unknown) => {
        assert.ok(err instanceof LadingError);
        assert.equal(err.exitCode, ExitCode.usage);
        return true;
      },
    );
    const s = await createBundle(opts({ key: undefined, unsigned: true, output: join(fx.dir, 'u.tar') }));
    assert.equal(s.signed, false);
    const { stdout } = await run('tar', ['-tf', s.path]);
    assert.ok(!stdout.includes('SHA256SUMS.sig'));
  });

  it('fails on a wrong key passphrase (exit 2) before downloading anything', async () => {
    const enc = await writeKeyPair(join(fx.dir, 'enc'), { passphrase: 'right' });
    await assert.rejects(
      createBundle(opts({ key: enc.privateKeyPath, passphrase: 'wrong', output: join(fx.dir, 'p.tar') })),
      (err: unknown) => {
        assert.ok(err instanceof KeyError);
        assert.equal(err.code, 'KEY_PASSPHRASE');
        assert.equal(err.exitCode, ExitCode.usage);
        return true;
      },
    );
    const s = await createBundle(
      opts({ key: enc.privateKeyPath, passphrase: 'right', output: join(fx.dir, 'p.tar') }),
    );
    assert.equal(s.signed, true);
  });

  it('--with-loader with no standalone loader fails (exit 2, names the fix) before anything is written', async () => {
    const out = join(fx.dir, 'wl.tar');
    await assert.rejects(
      createBundle(opts({ output: out, withLoader: { binary: join(fx.dir, 'no-such-loader') } })),
      (err: unknown) => {
        assert.ok(err instanceof LadingError);
        assert.equal(err.code, 'LOADER_BINARY_INVALID');
        assert.equal(err.exitCode, ExitCode.usage);
        assert.match(err.describe(), /scripts\/build-loader/);
        return true;
      },
    );
    assert.ok(!(await readdir(fx.dir)).includes('wl.tar'));
  });

  it('splits with --split-size: parts + parts file; their concatenation is the bundle', async () => {
    const s = await createBundle(opts({ output: join(fx.dir, 'split', 'shop.tar'), splitSize: '16KiB' }));
    assert.ok(s.files.length >= 2, `parts: ${s.files.join(', ')} size ${s.bytes}`);
    assert.equal(s.checksumFile, join(fx.dir, 'split', 'shop.tar.sha256'));
    const c = await run('sha256sum', ['-c', 'shop.tar.sha256'], join(fx.dir, 'split'));
    assert.equal(c.stdout.trim().split('\n').length, s.files.length);
    // The parts list is signed with the release key, as the auditor checks it (throws on failure).
    await run(
      'openssl',
      ['dgst', '-sha256', '-verify', fx.pub, '-signature', 'shop.tar.sha256.sig', 'shop.tar.sha256'],
      join(fx.dir, 'split'),
    );
    const h = createHash('sha256');
    for (const f of s.files) h.update(await readFile(f));
    assert.equal(`sha256:${h.digest('hex')}`, await sha256File(bundlePath).then((x) => `sha256:${x}`));
    const b = await openBundle(s.files[0]!);
    assert.equal(b.ladingJson.name, 'shop');
    await b.close();
  });

  it('fails with exit 4 naming the reference when an image does not exist', async () => {
    const spec = join(fx.dir, 'missing.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: m\nversion: "1"\nimages:\n  - ${fx.registry.host}/demo/nope:9.9\n`,
    );
    await assert.rejects(createBundle(opts({ spec, output: join(fx.dir, 'm.tar') })), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.equal(err.exitCode, ExitCode.remote);
      assert.match(err.message, /demo\/nope/);
      assert.match(err.message, new RegExp(fx.registry.host.replace(/\./g, '\\.')));
      return true;
    });
    assert.deepEqual(
      (await readdir(fx.dir)).filter((n) => n.startsWith('m.tar') || n.startsWith('.m.tar')),
      [],
    );
  });

  it('checks free space at the cache and output and says how much it needs', async () => {
    await assert.rejects(
      createBundle(opts({ output: join(fx.dir, 'space.tar'), freeSpace: async () => 1000 })),
      (err: unknown) => {
        assert.ok(err instanceof InsufficientSpaceError);
        assert.equal(err.exitCode, ExitCode.usage);
        assert.ok(err.needed > 0);
        assert.match(err.message, /needed/);
        return true;
      },
    );
  });

  it('an interrupted build leaves nothing at the output, and a re-run downloads only what the cache lacks', async () => {
    const spec = join(fx.dir, 'big.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: big\nversion: "1"\nimages:\n  - ${fx.ref('demo/big')}\n  - ${fx.ref('demo/app')}\n`,
    );
    const cacheB = join(fx.dir, 'cache-big');
    const outDir = join(fx.dir, 'out-big');
    const ac = new AbortController();
    let aborted = false;
    await assert.rejects(
      createBundle({
        spec,
        output: `${outDir}/`,
        key: fx.key,
        cache: cacheB,
        plainHttp: [fx.registry.host],
        concurrency: 1,
        signal: ac.signal,
        onProgress: (e) => {
          // abort while writing the bundle (the pull phase is exercised by the registry tests)
          if (e.phase === 'write' && e.bytesDone > 512 * 1024 && !aborted) {
            aborted = true;
            ac.abort(new Error('SIGINT'));
          }
        },
      }),
      (err: unknown) => err instanceof AbortedError,
    );
    assert.ok(aborted);
    assert.deepEqual(await readdir(outDir), [], 'no bundle and no temporary file');
    const s = await createBundle({
      spec,
      output: `${outDir}/`,
      key: fx.key,
      cache: cacheB,
      plainHttp: [fx.registry.host],
    });
    // Layers stream into the bundle and the cache together: those done before the interruption
    // are in the cache, the re-run pulls the rest.
    const total = fx.image('demo/big').totalSize + fx.image('demo/app').totalSize;
    assert.ok(s.downloadedBytes < total, `re-run downloaded ${s.downloadedBytes} of ${total}`);
    assert.deepEqual(await readdir(outDir), ['big-1.tar']);
    const again = await createBundle({
      spec,
      output: join(fx.dir, 'big-again.tar'),
      key: fx.key,
      cache: cacheB,
      plainHttp: [fx.registry.host],
    });
    assert.equal(again.downloadedBytes, 0, 'a third run finds every layer in the cache');
    assert.equal(again.digest, s.digest, 'the same bundle, from the cache alone');
  });

  it('an interrupted pull leaves nothing, and the re-run downloads only what is missing', async () => {
    const spec = join(fx.dir, 'big2.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: big2\nversion: "1"\nimages:\n  - ${fx.ref('demo/big')}\n  - ${fx.ref('demo/app')}\n`,
    );
    const cacheC = join(fx.dir, 'cache-big2');
    const outDir = join(fx.dir, 'out-big2');
    const ac = new AbortController();
    let firstImage = '';
    await assert.rejects(
      createBundle({
        spec,
        output: `${outDir}/`,
        key: fx.key,
        cache: cacheC,
        plainHttp: [fx.registry.host],
        signal: ac.signal,
        onProgress: (e) => {
          if (e.phase === 'message' && e.message.startsWith('image ') && !firstImage) {
            firstImage = e.message;
            ac.abort(new Error('SIGINT'));
          }
        },
      }),
      (err: unknown) => err instanceof AbortedError || (err instanceof Error && /abort/i.test(err.message)),
    );
    assert.ok(firstImage);
    assert.deepEqual(await readdir(outDir).catch(() => []), []);
    const total = fx.image('demo/big').totalSize + fx.image('demo/app').totalSize;
    const s = await createBundle({
      spec,
      output: `${outDir}/`,
      key: fx.key,
      cache: cacheC,
      plainHttp: [fx.registry.host],
    });
    assert.ok(s.downloadedBytes < total, `${s.downloadedBytes} < ${total}`);
  });

  describe('differential --since', () => {
    let v1: string;
    before(async () => {
      const spec1 = join(fx.dir, 'v1.yaml');
      await writeFile(
        spec1,
        `apiVersion: lading/v1\nname: shop\nversion: 0.9.0\nimages:\n  - ${fx.ref('demo/base-a')}\n  - ${fx.ref('demo/legacy')}\n`,
      );
      v1 = (await createBundle(opts({ spec: spec1, output: join(fx.dir, 'v1.tar') }))).path;
    });

    it('leaves out the blobs the base holds and names the base', async () => {
      const s = await createBundle(opts({ output: join(fx.dir, 'v2.tar'), since: v1 }));
      const base = await openBundle(v1);
      const b = await openBundle(s.path);
      try {
        const since = b.ladingJson.since!;
        assert.equal(since.name, 'shop');
        assert.equal(since.version, '0.9.0');
        assert.equal(since.digest, `sha256:${createHash('sha256').update(base.sumsBytes).digest('hex')}`);
        assert.ok((since.omittedBlobs ?? []).length > 0);
        for (const d of since.omittedBlobs ?? []) {
          assert.equal(b.hasBlob(d as never), false, `${d} left out`);
          assert.equal(base.hasBlob(d as never), true);
        }
        // the legacy image's layers are all in the base: none in the new bundle; its manifest stays
        const legacy = fx.image('demo/legacy');
        assert.equal(b.hasBlob(legacy.digest as never), true);
        // the layer base-b shares with base-a is left out, base-b's own layer is in
        const a = new Set(fx.image('demo/base-a').blobs);
        for (const d of fx.image('demo/base-b').blobs) {
          if (d === fx.image('demo/base-b').digest) continue;
          assert.equal(b.hasBlob(d as never), !a.has(d), d);
        }
        assert.equal(s.omittedBlobs, since.omittedBlobs?.length);
      } finally {
        await b.close();
        await base.close();
      }
    });

    it('takes the base lading.json (with SHA256SUMS beside it) instead of the bundle', async () => {
      const dir = join(fx.dir, 'v1-meta');
      await mkdir(dir);
      await run('tar', ['-xf', v1, '-C', dir, 'lading.json', 'SHA256SUMS']);
      const s = await createBundle(
        opts({ output: join(fx.dir, 'v2b.tar'), since: join(dir, 'lading.json') }),
      );
      const s2 = await openBundle(join(fx.dir, 'v2.tar'));
      const b = await openBundle(s.path);
      try {
        assert.deepEqual(b.ladingJson.since, s2.ladingJson.since);
      } finally {
        await b.close();
        await s2.close();
      }
    });
  });

  it('the spec fixture helper writes a valid spec (sanity)', () => {
    assert.match(shopSpec('h:1', 'http://x'), /apiVersion: lading\/v1/);
  });
});
