import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LadingError, META_SUMS_SHA256 } from '@lading/core';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import { publishBundle } from '../src/lib/publish.ts';
import { ensureBuilt, type Fixture, ROOT, runCli, startFixture } from './helpers.ts';

const pexec = promisify(execFile);

/**
 * The real `lading-build` binary (bin/run.js loads dist/, built here first) against loopback
 * servers: exit codes, --json documents, inspect, images, split and publish. The registry is the
 * real Distribution; the S3 server is testkit's stand-in (`@lading/testkit/s3`, our own S3 subset),
 * and publish is also run against s3rver, a third party’s S3 server, in
 * packages/loader/test/s3rver.test.ts.
 */
describe('lading-build CLI (built binary)', function () {
  this.timeout(300_000);
  let fx: Fixture;
  let s3: S3Server;
  let bundle: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    await ensureBuilt();
    fx = await startFixture();
    s3 = await startS3Server({ buckets: ['dropzone'], minPartSize: 5 * 1024 * 1024 });
    env = { SOURCE_DATE_EPOCH: '1700000000', LADING_CACHE: join(fx.dir, 'cache') };
  });
  after(async () => {
    await s3?.stop();
    await fx?.stop();
  });

  it('create --json prints one summary document and writes the bundle', async () => {
    const r = await runCli(
      [
        'create',
        '--spec',
        fx.spec,
        '--output',
        `${fx.dir}/out/`,
        '--key',
        fx.key,
        '--plain-http-host',
        fx.registry.host,
        '--json',
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      path: string;
      images: number;
      charts: number;
      blobs: number;
      signed: boolean;
      dedupSavedBytes: number;
      bytes: number;
    };
    assert.equal(s.images, 5);
    assert.equal(s.charts, 1);
    assert.equal(s.signed, true);
    assert.ok(s.blobs > 5);
    assert.ok(s.dedupSavedBytes > 0);
    assert.equal((await stat(s.path)).size, s.bytes);
    bundle = s.path;
  });

  it('create without --json prints progress lines and a summary', async () => {
    const r = await runCli(
      [
        'create',
        '--spec',
        fx.spec,
        '--output',
        join(fx.dir, 'plain.tar'),
        '--key',
        fx.key,
        '--plain-http-host',
        fx.registry.host,
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /chart shopchart 0\.3\.1/);
    assert.match(r.stdout, /images 5, charts 1, blobs \d+/);
    assert.match(r.stdout, /dedup saving/);
    // same spec, sources and epoch: same bytes as the --json run
    assert.equal(
      createHash('sha256')
        .update(await readFile(join(fx.dir, 'plain.tar')))
        .digest('hex'),
      createHash('sha256')
        .update(await readFile(bundle))
        .digest('hex'),
    );
  });

  it('an invalid spec exits 2 with file:line', async () => {
    const bad = join(fx.dir, 'bad.yaml');
    await writeFile(bad, 'apiVersion: lading/v1\nname: x\nversion: "1"\nimages:\n  - "not a ref!!"\n');
    const r = await runCli(['create', '--spec', bad, '--output', join(fx.dir, 'bad.tar'), '--unsigned'], env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /bad\.yaml:5/);
  });

  it('a missing image exits 4 naming the reference; --json gives the error document', async () => {
    const spec = join(fx.dir, 'missing.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: m\nversion: "1"\nimages:\n  - ${fx.registry.host}/demo/nope:1\n`,
    );
    const r = await runCli(
      [
        'create',
        '--spec',
        spec,
        '--output',
        join(fx.dir, 'm.tar'),
        '--unsigned',
        '--plain-http-host',
        fx.registry.host,
        '--json',
      ],
      env,
    );
    assert.equal(r.code, 4, r.stderr);
    const e = (JSON.parse(r.stdout) as { error: { code: string; message: string; exitCode: number } }).error;
    assert.match(e.message, /demo\/nope/);
    assert.equal(e.exitCode, 4);
    await assert.rejects(stat(join(fx.dir, 'm.tar')));
  });

  it('an existing output exits 2 without --force', async () => {
    const r = await runCli(
      [
        'create',
        '--spec',
        fx.spec,
        '--output',
        `${fx.dir}/out/`,
        '--key',
        fx.key,
        '--plain-http-host',
        fx.registry.host,
      ],
      env,
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /already exists/);
    assert.match(r.stderr, /--force/);
  });

  it('inspect --json describes images, charts, releases, files and the signature', async () => {
    const r = await runCli(['inspect', bundle, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      name: string;
      signed: boolean;
      since: unknown;
      images: Array<{ ref: string; platforms: string[]; size: number; from: string[] }>;
      charts: Array<{ name: string; images: string[] }>;
      releases: Array<{ name: string }>;
      files: Array<{ path: string }>;
    };
    assert.equal(j.name, 'shop');
    assert.equal(j.signed, true);
    assert.equal(j.since, null);
    assert.equal(j.images.length, 5);
    assert.ok(j.images.every((i) => i.size > 0 && i.platforms.length > 0));
    assert.deepEqual(j.images.find((i) => i.ref === fx.ref('demo/app'))?.from, ['shopchart:0.3.1']);
    assert.equal(j.charts[0]?.images.length, 3);
    assert.deepEqual(
      j.releases.map((x) => x.name),
      ['shop'],
    );
    assert.deepEqual(
      j.files.map((f) => f.path),
      ['docs/RUNBOOK.md', 'values/shop.yaml'],
    );
    const human = await runCli(['inspect', bundle]);
    assert.match(human.stdout, /IMAGES \(5\)/);
    assert.match(human.stdout, /signed\s+yes/);
  });

  it('images --json lists what discovery finds in a local chart and in a repository chart', async () => {
    const r = await runCli(['images', fx.chartDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      chart: { name: string };
      images: Array<{ image: string; path: string; kind: string }>;
    };
    assert.equal(j.chart.name, 'shopchart');
    assert.deepEqual(
      j.images.map((i) => [i.image, i.path, i.kind]),
      [
        [fx.ref('demo/app'), 'image', 'map'],
        [fx.ref('demo/base-a'), 'worker.image', 'string'],
        [fx.ref('demo/base-b'), 'annotations.artifacthub.io/images[0]', 'annotation'],
      ],
    );
    const repo = await runCli([
      'images',
      '--repo',
      fx.chartRepo.url,
      '--version',
      '^0.3',
      'shopchart',
      '--json',
    ]);
    assert.equal(repo.code, 0, repo.stderr);
    assert.deepEqual((JSON.parse(repo.stdout) as typeof j).images, j.images);
    const webapp = await runCli(['images', join(ROOT, 'fixtures/charts/webapp')]);
    assert.equal(webapp.code, 0, webapp.stderr);
    assert.match(webapp.stdout, /docker\.io\/bitnami\/redis:7\.2\.4-debian-12-r9/);
    assert.match(webapp.stdout, /not resolvable/);
  });

  it('split re-splits an existing bundle; the parts are the bundle', async () => {
    const r = await runCli([
      'split',
      bundle,
      '--size',
      '16KiB',
      '--output',
      join(fx.dir, 'parts', 'shop.tar'),
      '--key',
      fx.key,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { parts: string[]; checksumFile: string };
    const o = spawnSync(
      'openssl',
      ['dgst', '-sha256', '-verify', fx.pub, '-signature', `${j.checksumFile}.sig`, j.checksumFile],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(o.status, 0, o.stdout + o.stderr);
    assert.ok(j.parts.length >= 2);
    const whole = Buffer.concat(await Promise.all(j.parts.map((p) => readFile(p))));
    assert.ok(whole.equals(await readFile(bundle)));
    const insp = await runCli(['inspect', j.parts[0]!, '--json']);
    assert.equal(insp.code, 0, insp.stderr);
    assert.equal((JSON.parse(insp.stdout) as { kind: string }).kind, 'parts');
  });

  it('publish uploads the bundle with lading-sums-sha256 metadata; a second run sends nothing', async () => {
    const s3env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
    };
    const r = await runCli(
      ['publish', bundle, 's3://dropzone/releases/', '--endpoint', s3.endpoint, '--json'],
      s3env,
    );
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      objects: Array<{ url: string; skipped: boolean; sha256: string }>;
      sumsDigest: string;
    };
    assert.equal(j.objects.length, 1);
    assert.equal(j.objects[0]!.url, 's3://dropzone/releases/shop-1.0.0.tar');
    const info = s3.objectInfo('dropzone', 'releases/shop-1.0.0.tar')!;
    assert.ok(info);
    const stored = await readFile(s3.objectFile('dropzone', 'releases/shop-1.0.0.tar'));
    assert.ok(stored.equals(await readFile(bundle)));
    // SHA256SUMS of the bundle
    const sums = await pexec('tar', ['-xOf', bundle, 'SHA256SUMS'], { encoding: 'buffer' });
    const sumsHex = createHash('sha256').update(sums.stdout).digest('hex');
    assert.equal(info.metadata[META_SUMS_SHA256], sumsHex);
    assert.equal(j.sumsDigest, `sha256:${sumsHex}`);
    const seen = s3.requests.length;
    const again = await runCli(
      ['publish', bundle, 's3://dropzone/releases/', '--endpoint', s3.endpoint, '--json'],
      s3env,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as typeof j).objects[0]!.skipped, true);
    // What the server saw: reads only, no byte of the bundle sent again.
    const ops = s3.requests.slice(seen).map((q) => q.op);
    assert.ok(ops.length > 0, 'the second run asked the store');
    assert.deepEqual(
      ops.filter((op) => !['HeadObject', 'HeadBucket', 'ListObjectsV2', 'ListMultipartUploads'].includes(op)),
      [],
      ops.join(', '),
    );
  });

  it('publish of a split bundle uploads every part and the parts file', async () => {
    const s3env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
    };
    const r = await runCli(
      [
        'publish',
        join(fx.dir, 'parts', 'shop.tar.000'),
        's3://dropzone/split',
        '--endpoint',
        s3.endpoint,
        '--json',
      ],
      s3env,
    );
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { objects: Array<{ url: string }> };
    const urls = j.objects.map((o) => o.url);
    assert.ok(urls.includes('s3://dropzone/split/shop.tar.000'));
    assert.ok(urls.includes('s3://dropzone/split/shop.tar.sha256'));
    assert.ok(urls.length >= 3);
  });

  it('publish also uploads what the parts file lists beside the bundle (the standalone loader); a listed file that is missing is exit 2', async () => {
    const dir = join(fx.dir, 'parts-with-loader');
    await cp(join(fx.dir, 'parts'), dir, { recursive: true });
    // What create --with-loader adds: the loader beside the parts and its line in NAME.tar.sha256.
    const loader = Buffer.from('stand-in for lading-load-linux-x64\n');
    await writeFile(join(dir, 'lading-load-linux-x64'), loader);
    const sums = join(dir, 'shop.tar.sha256');
    const line = `${createHash('sha256').update(loader).digest('hex')}  lading-load-linux-x64\n`;
    await writeFile(sums, (await readFile(sums, 'utf8')) + line);
    const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const common = {
      destination: 's3://dropzone/with-loader',
      endpoint: s3.endpoint,
      region: s3.region,
      credentials,
    };
    const r = await publishBundle({ bundle: join(dir, 'shop.tar.000'), ...common });
    const urls = r.objects.map((o) => o.url);
    assert.ok(urls.includes('s3://dropzone/with-loader/lading-load-linux-x64'), urls.join(' '));
    assert.ok(urls.includes('s3://dropzone/with-loader/shop.tar.sha256'));

    await rm(join(dir, 'lading-load-linux-x64'));
    await assert.rejects(publishBundle({ bundle: join(dir, 'shop.tar.000'), ...common }), (e: unknown) => {
      assert.ok(e instanceof LadingError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /lading-load-linux-x64/);
      return true;
    });
  });

  it('publish with wrong S3 credentials exits 4', async () => {
    const r = await runCli(['publish', bundle, 's3://dropzone/x/', '--endpoint', s3.endpoint], {
      AWS_ACCESS_KEY_ID: 'nobody',
      AWS_SECRET_ACCESS_KEY: 'wrong',
      AWS_REGION: s3.region,
    });
    assert.equal(r.code, 4, r.stderr);
  });

  it('--help of every command documents its flags', async () => {
    for (const [cmd, flags] of [
      [
        'create',
        [
          '--spec',
          '--output',
          '--key',
          '--unsigned',
          '--split-size',
          '--since',
          '--force',
          '--cache',
          '--concurrency',
          '--ca-file',
          '--plain-http-host',
          '--insecure',
          '--json',
        ],
      ],
      ['inspect', ['--json']],
      ['images', ['--repo', '--version', '--json']],
      ['publish', ['--endpoint', '--region', '--part-size', '--concurrency', '--json']],
      ['split', ['--size', '--output', '--force', '--key']],
    ] as const) {
      const r = await runCli([cmd, '--help']);
      assert.equal(r.code, 0, r.stderr);
      for (const f of flags) assert.ok(r.stdout.includes(f), `${cmd} --help mentions ${f}`);
      assert.match(r.stdout, /EXAMPLES/);
    }
  });
});
