import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createS3Client, publishFiles, type S3Client } from '@lading/core';
import { type RegistryServer, skopeoDigest, startRegistry } from '@lading/testkit';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import type { PushResult } from '../src/lib/push/index.ts';
import { type Fixture, makeFixture, runCli } from './push-helpers.ts';

function targetOf(host: string, ref: string): string {
  if (ref.startsWith('charts/')) return `${host}/${ref}`;
  return `${host}/${ref.slice(ref.indexOf('/') + 1)}`;
}

/**
 * Push from split parts and from s3://. The S3 server here is testkit's stand-in (our own S3 subset,
 * `@lading/testkit/s3`), which records every request; the s3:// push also runs against s3rver, a
 * third party's server, in s3rver.test.ts.
 */
describe('lading-load push from split parts and from s3://', function () {
  this.timeout(180_000);
  const BUCKET = 'dropzone';
  let f: Fixture;
  let reg: RegistryServer;
  let server: S3Server;
  let client: S3Client;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    f = await makeFixture(2 * 1024 * 1024);
    reg = await startRegistry({ mode: 'http' });
    server = await startS3Server({ buckets: [BUCKET] });
    client = await createS3Client({
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    env = {
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
      AWS_REGION: server.region,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(f.dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(f.dir, 'none'),
    };
  });
  after(async () => {
    client?.destroy();
    await server?.stop();
    await reg?.stop();
    await f?.cleanup();
  });

  it('pushes a split bundle from its first part', async () => {
    const first = await f.bundle('split/shop.tar', { splitSize: 512 * 1024 });
    assert.match(first, /\.tar\.000$/);
    const r = await runCli([
      'push',
      first,
      '--key',
      f.pub,
      '--registry',
      `${reg.host}/split`,
      '--plain-http',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as PushResult;
    assert.ok(res.items.every((i) => i.status === 'pushed'));
    for (const e of f.entries)
      assert.equal(await skopeoDigest(targetOf(`${reg.host}/split`, e.ref), reg), e.digest);
  });

  it('pushes straight from s3://bucket/key (ranged reads, no local copy)', async () => {
    const b = await f.bundle('s3/shop.tar');
    await publishFiles([b], `s3://${BUCKET}/releases/`, { client });
    const seen = server.requests.length;
    // An empty temp folder of its own: a local copy of the bundle would land there.
    const tmp = join(f.dir, 'push-tmp');
    await mkdir(tmp);
    const r = await runCli(
      [
        'push',
        `s3://${BUCKET}/releases/shop.tar`,
        '--endpoint',
        server.endpoint,
        '--key',
        f.pub,
        '--registry',
        `${reg.host}/s3`,
        '--plain-http',
        '--json',
      ],
      { env: { ...env, TMPDIR: tmp } },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as PushResult;
    assert.equal(res.verified, true);
    // What the S3 server saw: the object read in ranges, never fetched whole.
    const gets = server.requests.slice(seen).filter((q) => q.op === 'GetObject');
    assert.ok(gets.length > 0, 'the bundle was read from S3');
    assert.deepEqual(
      gets.filter((q) => !/^bytes=\d+-\d+$/.test(q.range ?? '')),
      [],
      'every GetObject has a bounded Range',
    );
    assert.deepEqual(await readdir(tmp), [], 'nothing written to the temp folder');
    assert.ok(res.items.every((i) => i.status === 'pushed'));
    for (const e of f.entries)
      assert.equal(await skopeoDigest(targetOf(`${reg.host}/s3`, e.ref), reg), e.digest);
  });
});
