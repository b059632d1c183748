import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleTarget, ExitCode, publishFiles, type S3Client } from '@lading/core';
import type { S3Server } from '@lading/testkit/s3';
import { openBundleLocation } from '../src/lib/bundle-location.ts';
import { runVerify } from '../src/lib/verify.ts';
import {
  cliAsync,
  memberOffset,
  type S3Fixture,
  startS3Fixture,
  type TestBundle,
} from './verify-fixtures.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BUCKET = 'dropzone';

describe('lading-load verify s3://bucket/key (streaming, against the loopback S3 stand-in)', function () {
  this.timeout(180_000);
  let root: string;
  let server: S3Server;
  let client: S3Client;
  let t: TestBundle;
  let split: TestBundle;
  let env: NodeJS.ProcessEnv;

  let fx: S3Fixture | undefined;
  before(async () => {
    fx = await startS3Fixture(BUCKET, 'lading-verify-s3-');
    ({ root, server, client, t, split, env } = fx);
  });
  after(async () => {
    await fx?.stop();
  });

  it('library: verifies straight from S3 with ranged GETs, no local copy', async () => {
    const seen = server.requests.length;
    // An empty temp folder of this test's own: a local copy of the bundle would land there.
    const tmp = join(root, 'verify-tmp');
    mkdirSync(tmp);
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    let r: Awaited<ReturnType<typeof runVerify>>;
    try {
      r = await runVerify({
        bundle: `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        keyFile: t.pub,
        client,
        fileDigests: true,
      });
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
    assert.deepEqual(readdirSync(tmp), [], 'nothing written to the temp folder');
    assert.equal(r.ok, true, JSON.stringify(r.problems));
    assert.equal(r.location.kind, 's3');
    assert.equal(r.location.size, readFileSync(t.bundle).length);
    assert.deepEqual(
      r.bundleFiles.map((f) => f.sha256),
      [sha256(readFileSync(t.bundle))],
    );
    // This test's requests only: the object read in bounded ranges, never fetched whole.
    const gets = server.requests.slice(seen).filter((q) => q.op === 'GetObject');
    assert.ok(gets.length > 0, 'read from S3');
    assert.deepEqual(
      gets.filter((q) => !/^bytes=\d+-\d+$/.test(q.range ?? '')),
      [],
      'every GetObject has a bounded Range',
    );
  });

  it('library: openBundleLocation gives an input BundleTarget.open reads blobs from', async () => {
    const loc = await openBundleLocation(`s3://${BUCKET}/releases/shop-2.4.0.tar`, { client });
    try {
      const target = await BundleTarget.open(loc.input);
      try {
        const app = t.images.find((i) => i.ref === 'demo/app:1.0')!;
        const desc = await target.resolve(app.ref);
        assert.equal(desc.digest, app.digest);
        const chunks: Buffer[] = [];
        for await (const c of await target.fetch(desc)) chunks.push(c as Buffer);
        assert.equal(`sha256:${sha256(Buffer.concat(chunks))}`, app.digest);
      } finally {
        await target.close();
      }
      // The same input can be opened again (verify, then push).
      const again = await BundleTarget.open(loc.input);
      assert.equal(again.refs().length, t.images.length + 1);
      await again.close();
    } finally {
      await loc.close();
    }
  });

  it('CLI: exit 0 with --endpoint and credentials from the environment', async () => {
    const r = await cliAsync(
      [
        'verify',
        `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        '--key',
        t.pub,
        '--endpoint',
        server.endpoint,
        '--json',
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.ok, true);
    assert.equal(j.location.kind, 's3');
    assert.equal(j.location.path, `s3://${BUCKET}/releases/shop-2.4.0.tar`);
    assert.equal(j.bundle.kind, 'tar');
  });

  it('CLI: a split bundle in S3 verifies from its first part (or its base name), parts checked', async () => {
    for (const key of ['split/shop-2.4.0.tar.000', 'split/shop-2.4.0.tar']) {
      const r = await cliAsync(
        ['verify', `s3://${BUCKET}/${key}`, '--key', split.pub, '--endpoint', server.endpoint, '--json'],
        env,
      );
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.bundle.kind, 'parts');
      assert.equal(j.parts.length, split.result.files.length);
      assert.ok(j.parts.every((p: { ok: boolean }) => p.ok));
    }
    const md = join(root, 's3-split.md');
    const h = await cliAsync(
      [
        'verify',
        `s3://${BUCKET}/split/shop-2.4.0.tar.000`,
        '--key',
        split.pub,
        '--endpoint',
        server.endpoint,
        '--report',
        md,
      ],
      env,
    );
    assert.equal(h.status, 0, h.stderr);
    const text = readFileSync(md, 'utf8');
    assert.ok(
      text.includes(`aws s3 cp --endpoint-url ${server.endpoint} s3://${BUCKET}/split/shop-2.4.0.tar.sha256`),
    );
    assert.ok(text.includes('sha256sum -c shop-2.4.0.tar.sha256'));
  });

  it('CLI: a split bundle in S3 with a part missing is exit 3 naming the part', async () => {
    const files = split.result.files;
    await publishFiles(
      [files[0] as string, ...files.slice(2), split.result.checksumFile as string],
      `s3://${BUCKET}/gap/`,
      {
        client,
      },
    );
    const r = await cliAsync(
      [
        'verify',
        `s3://${BUCKET}/gap/shop-2.4.0.tar.000`,
        '--key',
        split.pub,
        '--endpoint',
        server.endpoint,
        '--json',
      ],
      env,
    );
    assert.equal(r.status, ExitCode.verification, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(
      j.problems.some(
        (p: { member: string; kind: string }) => p.member === 'shop-2.4.0.tar.001' && p.kind === 'missing',
      ),
      JSON.stringify(j.problems),
    );
  });

  it('CLI: a corrupted object is exit 3 naming the member', async () => {
    const key = 'releases/shop-2.4.0.tar';
    const file = server.objectFile(BUCKET, key);
    const original = readFileSync(file);
    try {
      const m = memberOffset(original, 'files/values/web.yaml');
      const bad = Buffer.from(original);
      bad[m.offset] = (bad[m.offset] ?? 0) ^ 0x01;
      writeFileSync(file, bad);
      const r = await cliAsync(
        ['verify', `s3://${BUCKET}/${key}`, '--key', t.pub, '--endpoint', server.endpoint],
        env,
      );
      assert.equal(r.status, ExitCode.verification, r.stderr);
      assert.ok(r.stderr.includes('files/values/web.yaml'), r.stderr);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('CLI: a corrupted part in S3 is exit 3 naming the part', async () => {
    const key = 'split/shop-2.4.0.tar.001';
    const file = server.objectFile(BUCKET, key);
    const original = readFileSync(file);
    try {
      const bad = Buffer.from(original);
      bad[5000] = (bad[5000] ?? 0) ^ 0x01;
      writeFileSync(file, bad);
      const r = await cliAsync(
        [
          'verify',
          `s3://${BUCKET}/split/shop-2.4.0.tar.000`,
          '--key',
          split.pub,
          '--endpoint',
          server.endpoint,
        ],
        env,
      );
      assert.equal(r.status, ExitCode.verification, r.stderr);
      assert.ok(r.stderr.includes('shop-2.4.0.tar.001'), r.stderr);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('CLI: a missing object, a missing bucket and wrong credentials are exit 4, naming bucket/key', async () => {
    const a = await cliAsync(
      ['verify', `s3://${BUCKET}/releases/nope.tar`, '--key', t.pub, '--endpoint', server.endpoint],
      env,
    );
    assert.equal(a.status, ExitCode.remote, a.stderr);
    assert.ok(a.stderr.includes(`s3://${BUCKET}/releases/nope.tar`), a.stderr);
    const b = await cliAsync(
      ['verify', 's3://no-such-bucket/x.tar', '--key', t.pub, '--endpoint', server.endpoint],
      env,
    );
    assert.equal(b.status, ExitCode.remote, b.stderr);
    assert.match(b.stderr, /no-such-bucket/);
    const c = await cliAsync(
      ['verify', `s3://${BUCKET}/releases/shop-2.4.0.tar`, '--key', t.pub, '--endpoint', server.endpoint],
      {
        ...env,
        AWS_SECRET_ACCESS_KEY: 'wrong',
      },
    );
    assert.equal(c.status, ExitCode.remote, c.stderr);
    assert.ok(c.stderr.includes(BUCKET), c.stderr);
    assert.match(c.stderr, /credentials were refused|access denied/);
  });
});
