import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Client, publishFiles, type S3Client } from '@lading/core';
import { type RegistryServer, skopeoDigest, startRegistry } from '@lading/testkit';
import { type S3rverServer, startS3rver } from '@lading/testkit/s3rver';
import type { PushResult } from '../src/lib/push/index.ts';
import { runCli } from './push-helpers.ts';
import { buildTestBundle, cliAsync, type TestBundle } from './verify-fixtures.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BUCKET = 'dropzone';

/** The sha256 of an object as s3rver serves it to a plain (anonymous) GET, not through Lading's client. */
async function getSha(endpoint: string, key: string): Promise<string> {
  const res = await fetch(`${endpoint}/${BUCKET}/${key}`);
  assert.equal(res.status, 200, `GET ${key}`);
  return sha256(Buffer.from(await res.arrayBuffer()));
}

/**
 * publish, fetch, verify and push from s3:// against s3rver (npm), a third party's S3 server, so the
 * S3 client is not checked only against testkit's own stand-in. s3rver has no multipart listing:
 * resuming an upload is tested against the stand-in only (core/test/s3.test.ts).
 */
describe('s3:// against s3rver (a third-party S3 server)', function () {
  this.timeout(180_000);
  let s3: S3rverServer;
  let client: S3Client;
  let reg: RegistryServer;
  let root: string;
  let t: TestBundle;
  let split: TestBundle;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
    reg = await startRegistry({ mode: 'http' });
    root = await mkdtemp(join(tmpdir(), 'lading-s3rver-test-'));
    client = await createS3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    t = await buildTestBundle(join(root, 'b'));
    split = await buildTestBundle(join(root, 's'), { splitSize: 200 * 1024 });
    env = {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(root, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(root, 'none'),
    };
  });
  after(async () => {
    client?.destroy();
    await s3?.stop();
    await reg?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('publish: a bundle, a split bundle, and a file in several parts land byte for byte', async () => {
    const [whole] = await publishFiles([t.bundle], `s3://${BUCKET}/releases/`, { client });
    assert.ok(whole && !whole.skipped);
    await publishFiles(
      [...split.result.files, split.result.checksumFile as string, `${split.result.checksumFile}.sig`],
      `s3://${BUCKET}/split/`,
      {
        client,
      },
    );
    const partSize = 5 * 1024 * 1024;
    const big = join(root, 'big.bin');
    writeFileSync(big, randomBytes(2 * partSize + 12_345));
    const [multi] = await publishFiles([big], `s3://${BUCKET}/multi/`, { client, partSize });
    assert.equal(multi?.uploadedParts, 3, JSON.stringify(multi));
    assert.equal(await getSha(s3.endpoint, 'multi/big.bin'), sha256(readFileSync(big)));
    assert.equal(await getSha(s3.endpoint, 'releases/shop-2.4.0.tar'), sha256(readFileSync(t.bundle)));
  });

  it('fetch: the CLI downloads and checks the bundle and a split bundle', async () => {
    const out = join(root, 'fetched');
    mkdirSync(out);
    const r = await cliAsync(
      [
        'fetch',
        `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        '--output',
        out,
        '--endpoint',
        s3.endpoint,
        '--json',
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(out, 'shop-2.4.0.tar')).equals(readFileSync(t.bundle)));
    assert.equal(JSON.parse(r.stdout).files[0].verifiedAgainst, 'metadata');
    const parts = join(root, 'fetched-split');
    mkdirSync(parts);
    const s = await cliAsync(
      ['fetch', `s3://${BUCKET}/split/shop-2.4.0.tar.000`, '--output', parts, '--endpoint', s3.endpoint],
      env,
    );
    assert.equal(s.status, 0, s.stderr);
    for (const p of split.result.files) {
      const name = p.slice(p.lastIndexOf('/') + 1);
      assert.ok(readFileSync(join(parts, name)).equals(readFileSync(p)), name);
    }
  });

  it('verify: exit 0 straight from s3:// (whole and split), exit 3 with the wrong key', async () => {
    for (const [key, b] of [
      ['releases/shop-2.4.0.tar', t],
      ['split/shop-2.4.0.tar.000', split],
    ] as const) {
      const r = await cliAsync(
        ['verify', `s3://${BUCKET}/${key}`, '--key', b.pub, '--endpoint', s3.endpoint, '--json'],
        env,
      );
      assert.equal(r.status, 0, `${key}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).ok, true);
    }
    const wrong = await cliAsync(
      ['verify', `s3://${BUCKET}/releases/shop-2.4.0.tar`, '--key', t.otherPub, '--endpoint', s3.endpoint],
      env,
    );
    assert.equal(wrong.status, 3, wrong.stderr);
  });

  it('push: from s3:// into a registry; skopeo reads back the same digests', async () => {
    const r = await runCli(
      [
        'push',
        `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        '--endpoint',
        s3.endpoint,
        '--key',
        t.pub,
        '--registry',
        `${reg.host}/s3rver`,
        '--plain-http',
        '--json',
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as PushResult;
    assert.equal(res.verified, true);
    assert.ok(res.items.length > 0 && res.items.every((i) => i.status === 'pushed'));
    for (const img of t.images) {
      assert.equal(await skopeoDigest(`${reg.host}/s3rver/${img.ref}`, reg), img.digest, img.ref);
    }
  });
});
