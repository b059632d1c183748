import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChartNotFoundError, copy, ExitCode, Member, NotFoundError, Registry } from '@lading/core';
import { type ChartRepo, startChartRepo } from '@lading/testkit/chart-repo';
import { type CreateOptions, createBundle } from '../src/lib/create.ts';
import { PinnedIndexesFilterError, PinnedIndexFilterError } from '../src/lib/plan.ts';
import { ImagePlatformError } from '../src/lib/platform-error.ts';
import { ReferencesNotFoundError } from '../src/lib/resolve.ts';
import { type Fixture, run, runCli, startFixture } from './helpers.ts';

/** Issue 13, "Errors that point the wrong way": what `create` says when the spec asks for what is not there. */
describe('lading-build create: errors that point the right way', function () {
  this.timeout(180_000);
  let fx: Fixture;
  let prerelease: ChartRepo;
  let n = 0;

  const opts = (spec: string, extra: Partial<CreateOptions> = {}): CreateOptions => ({
    spec,
    output: join(fx.dir, `out-${++n}.tar`),
    key: fx.key,
    cache: join(fx.dir, `cache-${n}`),
    plainHttp: [fx.registry.host],
    ...extra,
  });
  const writeSpec = async (name: string, body: string): Promise<string> => {
    const path = join(fx.dir, name);
    await writeFile(path, `apiVersion: lading/v1\nname: t\nversion: "1"\n${body}`);
    return path;
  };
  /** Image refs tagged in a cache (index.json of the layout). */
  const cachedImages = async (cache: string): Promise<string[]> => {
    const idx = JSON.parse(await readFile(join(cache, 'index.json'), 'utf8').catch(() => '{}')) as {
      manifests?: Array<{ annotations?: Record<string, string> }>;
    };
    return (idx.manifests ?? [])
      .map((d) => d.annotations?.['org.opencontainers.image.ref.name'] ?? '')
      .filter((r) => r.includes('/demo/'));
  };

  before(async () => {
    fx = await startFixture();
    // an image that exists only for linux/arm64/v8: the arm64 manifest of demo/multi, tagged alone
    const reg = new Registry(fx.registry.host, { plainHttp: true });
    const arm = fx.image('demo/multi').manifests!.find((m) => m.platform.startsWith('linux/arm64'))!;
    await copy(reg.repository('demo/multi'), arm.digest, reg.repository('demo/armonly'), '1.0');
    // the multi-arch index again, in a second repository
    await copy(
      reg.repository('demo/multi'),
      fx.image('demo/multi').digest,
      reg.repository('demo/multi2'),
      '3.0',
    );
    await reg.close();
    // a chart whose values name an image tag that does not exist (worker.image)
    const chart = join(fx.dir, 'charts', 'podinfo');
    await mkdir(join(chart, 'templates'), { recursive: true });
    await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: podinfo\nversion: 6.7.1\n');
    await writeFile(
      join(chart, 'values.yaml'),
      `image:\n  registry: ${fx.registry.host}\n  repository: demo/base-a\n  tag: "1"\nworker:\n  image: ${fx.registry.host}/demo/gone:1\n`,
    );
    await writeFile(join(chart, 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\n');
    // a repository whose only newer version is a prerelease
    prerelease = await startChartRepo({
      charts: [fx.chartDir, { path: fx.chartDir, version: '0.4.0-rc.1' }],
    });
  });
  after(async () => {
    await prerelease?.stop();
    await fx?.stop();
  });

  it('an image without the platform asked for: the full reference, what it has, and the per-image platforms form (exit 2)', async () => {
    const spec = await writeSpec(
      'platform.yaml',
      `platforms: [linux/amd64]
images:
  - ${fx.ref('demo/app')}
  - ${fx.registry.host}/demo/armonly:1.0
`,
    );
    await assert.rejects(createBundle(opts(spec)), (err: unknown) => {
      assert.ok(err instanceof ImagePlatformError, String(err));
      assert.equal(err.exitCode, ExitCode.usage);
      assert.equal(err.code, 'PLATFORM_NOT_FOUND');
      const ref = `${fx.registry.host}/demo/armonly:1.0`;
      assert.equal(err.message, `${ref} has no image for linux/amd64; it has linux/arm64/v8 — ${spec}:7`);
      assert.match(
        err.hint ?? '',
        /images:\n {6}- ref: .*\/demo\/armonly:1\.0\n {8}platforms: \[linux\/arm64\/v8\]/,
      );
      return true;
    });
  });

  it('several images without their platform: all of them in one error, a discovered one with its chart and values path', async () => {
    const spec = await writeSpec(
      'platforms.yaml',
      `platforms: [linux/s390x]
images:
  - ${fx.ref('demo/multi')}
charts:
  - path: ./charts/podinfo
    images: none
  - path: ./chart-src/shopchart
`,
    );
    await assert.rejects(createBundle(opts(spec)), (err: unknown) => {
      assert.ok(err instanceof ImagePlatformError, String(err));
      const refs = err.images.map((i) => i.ref);
      assert.deepEqual(refs, [
        fx.ref('demo/multi'),
        fx.ref('demo/app'),
        fx.ref('demo/base-a'),
        fx.ref('demo/base-b'),
      ]);
      assert.match(err.message, /^4 images have none of the platforms asked for:\n/);
      assert.match(
        err.message,
        /demo\/multi:3\.0 has no image for linux\/s390x; it has linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7 — .*platforms\.yaml:6/,
      );
      assert.match(
        err.message,
        /demo\/base-a:1 has no image for linux\/s390x; it has linux\/amd64 — chart shopchart, values worker\.image/,
      );
      assert.match(err.hint ?? '', /- ref: .*demo\/base-a:1\n {8}platforms: \[linux\/amd64\]/);
      return true;
    });
  });

  it('several digest-pinned indexes the filter narrows: all of them in one error (exit 2), each with the manifests to pin', async () => {
    const multi = fx.image('demo/multi');
    const spec = await writeSpec(
      'pinned.yaml',
      `platforms: [linux/amd64]
images:
  - ${fx.registry.host}/demo/multi@${multi.digest}
  - ${fx.ref('demo/app')}
  - ${fx.registry.host}/demo/multi2@${multi.digest}
`,
    );
    await assert.rejects(createBundle(opts(spec)), (err: unknown) => {
      assert.ok(err instanceof PinnedIndexesFilterError, String(err));
      assert.ok(err instanceof PinnedIndexFilterError);
      assert.equal(err.exitCode, ExitCode.usage);
      assert.deepEqual(
        err.failures.map((f) => f.ref),
        [`${fx.registry.host}/demo/multi@${multi.digest}`, `${fx.registry.host}/demo/multi2@${multi.digest}`],
      );
      assert.match(err.message, /^2 images are pinned by digest to an index the platform filter narrows:\n/);
      const amd64 = multi.manifests!.find((m) => m.platform === 'linux/amd64')!;
      assert.match(err.hint ?? '', new RegExp(`demo/multi2@${amd64.digest} \\(linux/amd64\\)`));
      return true;
    });
  });

  it('every missing tag and chart version in one error (exit 4), each with its spec line or chart values path, before any image is pulled', async () => {
    const spec = await writeSpec(
      'missing.yaml',
      `images:
  - ${fx.registry.host}/demo/nope:9.9
  - ${fx.ref('demo/app')}
  - ${fx.registry.host}/demo/legacy:0.0
charts:
  - name: shopchart
    repo: ${fx.chartRepo.url}
    version: ^9.0.0
  - path: ./charts/podinfo
`,
    );
    const o = opts(spec);
    await assert.rejects(createBundle(o), (err: unknown) => {
      assert.ok(err instanceof ReferencesNotFoundError, String(err));
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.exitCode, ExitCode.remote);
      assert.deepEqual(
        err.missing.map((m) => [m.ref, m.where]),
        [
          ['chart shopchart ^9.0.0', [`${spec}:9`]],
          [`${fx.registry.host}/demo/nope:9.9`, [`${spec}:5`]],
          [`${fx.registry.host}/demo/legacy:0.0`, [`${spec}:7`]],
          [`${fx.registry.host}/demo/gone:1`, ['chart podinfo, values worker.image']],
        ],
      );
      assert.match(err.message, /^4 references do not exist \(no image was pulled\):\n/);
      assert.match(
        err.message,
        /\n {2}.*demo\/gone:1: manifest not found.* — chart podinfo, values worker\.image/,
      );
      assert.match(
        err.message,
        /no version of chart "shopchart" matches "\^9\.0\.0".*available: 0\.3\.1 — .*missing\.yaml:9/,
      );
      assert.equal((err.toJSON().missing as unknown[]).length, 4);
      return true;
    });
    // resolved before anything was pulled: no image reached the cache
    assert.deepEqual(await cachedImages(o.cache!), []);
  });

  it('the CLI prints every missing reference once, with the hint, no stack trace (exit 4)', async () => {
    const spec = join(fx.dir, 'missing.yaml'); // written by the test above
    const r = await runCli(
      [
        'create',
        '--spec',
        spec,
        '--output',
        join(fx.dir, 'cli.tar'),
        '--unsigned',
        '--plain-http-host',
        fx.registry.host,
      ],
      { LADING_CACHE: join(fx.dir, 'cli-cache') },
    );
    if (process.env.SHOW_STDERR) console.log(r.stderr);
    assert.equal(r.code, 4, r.stderr);
    assert.doesNotMatch(r.stderr, /\n {4}at /);
    for (const m of ['demo/nope:9.9', 'demo/legacy:0.0', 'demo/gone:1', 'chart "shopchart"']) {
      assert.equal(r.stderr.split(m).length - 1, 1, `${m} once in:\n${r.stderr}`);
    }
    assert.match(r.stderr, /hint: /);
  });

  it('a range that matches only a prerelease: the hint says what the spec can say (no includePrerelease)', async () => {
    const spec = await writeSpec(
      'pre.yaml',
      `charts:
  - name: shopchart
    repo: ${prerelease.url}
    version: ">0.3.1"
`,
    );
    await assert.rejects(createBundle(opts(spec)), (err: unknown) => {
      assert.ok(err instanceof ReferencesNotFoundError, String(err));
      assert.equal(err.missing[0]?.code, new ChartNotFoundError('x', 'y', 'z', ['1']).code);
      assert.doesNotMatch(err.hint ?? '', /includePrerelease/);
      assert.match(err.hint ?? '', /version: 0\.4\.0-rc\.1/);
      assert.match(err.hint ?? '', /">=0\.4\.0-0 >0\.3\.1"/);
      return true;
    });
    // and what the hint says works
    await writeFile(spec, (await readFile(spec, 'utf8')).replace('">0.3.1"', '">=0.4.0-0 >0.3.1"'));
    const s = await createBundle(opts(spec, { key: undefined, unsigned: true }));
    assert.deepEqual(
      s.chartList.map((c) => c.version),
      ['0.4.0-rc.1'],
    );
  });

  describe('--since on a base that does not check out', () => {
    let base: string;
    let spec: string;
    before(async () => {
      spec = await writeSpec('v1.yaml', `images:\n  - ${fx.ref('demo/legacy')}\n`);
      base = (await createBundle(opts(spec))).path;
    });

    it('warns (and builds) when the base is damaged: its lading.json does not match SHA256SUMS', async () => {
      const dir = join(fx.dir, 'damaged');
      await mkdir(dir);
      await run('tar', ['-xf', base, '-C', dir]);
      const lj = join(dir, Member.manifest);
      await writeFile(lj, `${await readFile(lj, 'utf8')}\n`);
      const damaged = join(fx.dir, 'damaged.tar');
      const members = (await run('tar', ['-tf', base])).stdout.trim().split('\n');
      await run('tar', ['-cf', damaged, '-C', dir, ...members]);
      const next = await writeSpec(
        'v2.yaml',
        `images:\n  - ${fx.ref('demo/legacy')}\n  - ${fx.ref('demo/app')}\n`,
      );
      await writeFile(next, (await readFile(next, 'utf8')).replace('version: "1"', 'version: "2"'));
      const messages: string[] = [];
      const s = await createBundle(
        opts(next, {
          since: damaged,
          onProgress: (e) => {
            if (e.phase === 'message') messages.push(e.message);
          },
        }),
      );
      assert.equal(s.warnings?.length, 1, String(s.warnings));
      assert.match(s.warnings![0]!, /does not check out: lading\.json does not match its SHA256SUMS line/);
      assert.ok(messages.some((m) => m.startsWith('warning: --since ')));
      assert.ok(s.omittedBlobs > 0);
      // the good base: no warning
      const ok = await createBundle(opts(next, { since: base }));
      assert.deepEqual(ok.warnings, []);
    });

    it('warns when the base has the name and version of the bundle being built', async () => {
      const s = await createBundle(opts(spec, { since: base }));
      assert.equal(s.warnings?.length, 1, String(s.warnings));
      assert.match(s.warnings![0]!, /is t 1, the same name and version as the bundle being built/);
    });

    it('warns when the base is not signed by the build key', async () => {
      const unsignedBase = (await createBundle(opts(spec, { key: undefined, unsigned: true }))).path;
      const next = await writeSpec('v3.yaml', `images:\n  - ${fx.ref('demo/app')}\n`);
      await writeFile(next, (await readFile(next, 'utf8')).replace('version: "1"', 'version: "3"'));
      const s = await createBundle(opts(next, { since: unsignedBase }));
      assert.match(s.warnings?.[0] ?? '', /it is unsigned/);
    });
  });
});
