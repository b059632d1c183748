import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ExitCode, publishFiles, S3ChecksumError, type S3Client } from '@lading/core';
import type { S3Server } from '@lading/testkit/s3';
import { fetchBundle } from '../src/lib/fetch.ts';
import { runVerify } from '../src/lib/verify.ts';
import { cliAsync, type S3Fixture, startS3Fixture, type TestBundle } from './verify-fixtures.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BUCKET = 'dropzone';

describe('lading-load fetch (against the loopback S3 stand-in)', function () {
  this.timeout(180_000);
  let root: string;
  let server: S3Server;
  let client: S3Client;
  let t: TestBundle;
  let split: TestBundle;
  let env: NodeJS.ProcessEnv;
  let n = 0;
  const freshDir = (): string => {
    const d = join(root, `out-${n++}`);
    mkdirSync(d);
    return d;
  };

  let fx: S3Fixture | undefined;
  before(async () => {
    fx = await startS3Fixture(BUCKET, 'lading-fetch-');
    ({ root, server, client, t, split, env } = fx);
  });
  after(async () => {
    await fx?.stop();
  });

  it('CLI: round trip to a file, verified against the publish metadata; --json result', async () => {
    const dir = freshDir();
    const out = join(dir, 'bundle.tar');
    const r = await cliAsync(
      [
        'fetch',
        `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        '--output',
        out,
        '--endpoint',
        server.endpoint,
        '--concurrency',
        '3',
        '--json',
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(t.bundle)));
    const j = JSON.parse(r.stdout);
    assert.equal(j.split, false);
    assert.equal(j.bundle, out);
    assert.equal(j.files.length, 1);
    assert.equal(j.files[0].sha256, sha256(readFileSync(t.bundle)));
    assert.equal(j.files[0].verifiedAgainst, 'metadata');
    assert.deepEqual(readdirSync(dir), ['bundle.tar'], 'nothing else left beside it');
    const h = await cliAsync(
      ['fetch', `s3://${BUCKET}/releases/shop-2.4.0.tar`, '--output', dir, '--endpoint', server.endpoint],
      env,
    );
    assert.equal(h.status, 0, h.stderr);
    assert.match(h.stdout, /sha256 verified against the object’s lading-sha256 metadata/);
    assert.match(h.stdout, /next: lading-load verify .*shop-2\.4\.0\.tar/);
    assert.ok(readFileSync(join(dir, 'shop-2.4.0.tar')).equals(readFileSync(t.bundle)));
  });

  it('library: a split bundle — every part and NAME.tar.sha256, each part checked; then it verifies', async () => {
    for (const key of ['split/shop-2.4.0.tar.000', 'split/shop-2.4.0.tar']) {
      const dir = freshDir();
      const r = await fetchBundle(`s3://${BUCKET}/${key}`, dir, { client, partSize: 64 * 1024 });
      assert.equal(r.split, true);
      const sums = split.result.checksumFile as string;
      const names = [...split.result.files, sums, `${sums}.sig`].map((p) => basename(p));
      assert.deepEqual(readdirSync(dir).sort(), names.sort());
      for (const p of [...split.result.files, sums, `${sums}.sig`]) {
        assert.ok(readFileSync(join(dir, basename(p))).equals(readFileSync(p)), p);
      }
      assert.ok(r.files.slice(0, -2).every((f) => f.verifiedAgainst === 'parts-file'));
      assert.equal(r.bundle, join(dir, 'shop-2.4.0.tar.000'));
      const v = await runVerify({ bundle: r.bundle, keyFile: split.pub });
      assert.equal(v.ok, true, JSON.stringify(v.problems));
    }
  });

  it('CLI: a split bundle needs a folder (or the first part name) as --output: exit 2', async () => {
    const dir = freshDir();
    const r = await cliAsync(
      [
        'fetch',
        `s3://${BUCKET}/split/shop-2.4.0.tar.000`,
        '--output',
        join(dir, 'other.tar'),
        '--endpoint',
        server.endpoint,
      ],
      env,
    );
    assert.equal(r.status, ExitCode.usage, r.stderr);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('CLI: wrong credentials are exit 4 naming the bucket; nothing at --output', async () => {
    const dir = freshDir();
    const out = join(dir, 'x.tar');
    const r = await cliAsync(
      ['fetch', `s3://${BUCKET}/releases/shop-2.4.0.tar`, '--output', out, '--endpoint', server.endpoint],
      { ...env, AWS_ACCESS_KEY_ID: 'NOTAKEY' },
    );
    assert.equal(r.status, ExitCode.remote, r.stderr);
    assert.ok(r.stderr.includes(`s3://${BUCKET}/releases/shop-2.4.0.tar`), r.stderr);
    assert.match(r.stderr, /credentials were refused|access denied/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('CLI: a missing object / bucket is exit 4 naming it; --json carries the error', async () => {
    const dir = freshDir();
    const out = join(dir, 'x.tar');
    const r = await cliAsync(
      ['fetch', `s3://${BUCKET}/releases/nope.tar`, '--output', out, '--endpoint', server.endpoint, '--json'],
      env,
    );
    assert.equal(r.status, ExitCode.remote, r.stderr);
    const j = JSON.parse(r.stdout).error;
    assert.equal(j.code, 'S3_NO_SUCH_KEY');
    assert.ok(j.message.includes(`s3://${BUCKET}/releases/nope.tar`));
    const b = await cliAsync(
      ['fetch', 's3://no-such-bucket/x.tar', '--output', out, '--endpoint', server.endpoint],
      env,
    );
    assert.equal(b.status, ExitCode.remote, b.stderr);
    assert.match(b.stderr, /no-such-bucket/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('CLI: a corrupted object is exit 3 naming bucket/key; nothing at --output', async () => {
    const key = 'releases/shop-2.4.0.tar';
    const file = server.objectFile(BUCKET, key);
    const original = readFileSync(file);
    const dir = freshDir();
    const out = join(dir, 'x.tar');
    try {
      const bad = Buffer.from(original);
      bad[1000] = (bad[1000] ?? 0) ^ 0x01;
      writeFileSync(file, bad);
      const r = await cliAsync(
        ['fetch', `s3://${BUCKET}/${key}`, '--output', out, '--endpoint', server.endpoint],
        env,
      );
      assert.equal(r.status, ExitCode.verification, r.stderr);
      assert.ok(r.stderr.includes(`s3://${BUCKET}/${key}`), r.stderr);
      assert.equal(existsSync(out), false);
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('library: a corrupted part fails with the part named, and no part is left in the folder', async () => {
    const key = 'split/shop-2.4.0.tar.002';
    const file = server.objectFile(BUCKET, key);
    const original = readFileSync(file);
    const dir = freshDir();
    try {
      const bad = Buffer.from(original);
      bad[10] = (bad[10] ?? 0) ^ 0x01;
      writeFileSync(file, bad);
      await assert.rejects(
        fetchBundle(`s3://${BUCKET}/split/shop-2.4.0.tar.000`, dir, { client }),
        (err: unknown) => {
          assert.ok(err instanceof S3ChecksumError, String(err));
          assert.equal(err.key, key);
          assert.ok(err.message.includes(`s3://${BUCKET}/${key}`));
          return true;
        },
      );
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('a hostile NAME.tar.sha256 naming release.pub (or ../x) is refused: nothing written, nothing replaced', async () => {
    const sums = split.result.checksumFile as string;
    const text = readFileSync(sums, 'utf8');
    const evilPub = Buffer.from('-----BEGIN PUBLIC KEY-----\nattacker\n-----END PUBLIC KEY-----\n');
    for (const [prefix, name] of [
      ['hostile1', 'release.pub'],
      ['hostile2', 'other.tar.000'],
    ] as const) {
      const local = join(root, `${prefix}-src`);
      mkdirSync(local);
      const evilSums = join(local, basename(sums));
      writeFileSync(join(local, name), evilPub);
      writeFileSync(evilSums, `${text}${sha256(evilPub)}  ${name}\n`);
      await publishFiles([...split.result.files, evilSums, join(local, name)], `s3://${BUCKET}/${prefix}/`, {
        client,
      });
      const dir = freshDir();
      const mine = Buffer.from('the site’s own release.pub\n');
      writeFileSync(join(dir, name), mine);
      await assert.rejects(
        fetchBundle(`s3://${BUCKET}/${prefix}/shop-2.4.0.tar.000`, dir, { client }),
        (err: unknown) => {
          assert.ok(err instanceof S3ChecksumError, String(err));
          assert.match(
            err.message,
            new RegExp(`lists "${name.replace(/\./g, '\\.')}", which is neither a part`),
          );
          return true;
        },
      );
      assert.deepEqual(readdirSync(dir), [name], 'nothing else written');
      assert.ok(readFileSync(join(dir, name)).equals(mine), `${name} untouched`);
    }
  });

  it('library: a split bundle whose NAME.tar.sha256 is missing is refused (exit 4), nothing written', async () => {
    await publishFiles([split.result.files[0] as string], `s3://${BUCKET}/nosums/`, { client });
    const dir = freshDir();
    await assert.rejects(
      fetchBundle(`s3://${BUCKET}/nosums/shop-2.4.0.tar.000`, dir, { client }),
      (err: unknown) => {
        assert.equal((err as { exitCode?: number }).exitCode, ExitCode.remote);
        assert.ok(
          (err as Error).message.includes(`s3://${BUCKET}/nosums/shop-2.4.0.tar.sha256`),
          String(err),
        );
        return true;
      },
    );
    assert.deepEqual(readdirSync(dir), []);
  });
});
