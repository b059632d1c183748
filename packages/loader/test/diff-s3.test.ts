import assert from 'node:assert/strict';
import type { BundleDiff } from '../src/lib/diff/model.ts';
import { cliAsync, type S3Fixture, startS3Fixture } from './verify-fixtures.ts';

const BUCKET = 'dropzone';

/** `lading-load diff` reads each side from where it is: a local tar, S3, a split bundle's first part. */
describe('lading-load diff with s3:// and split bundles (the loopback S3 stand-in)', function () {
  this.timeout(180_000);
  let fx: S3Fixture;

  before(async () => {
    fx = await startS3Fixture(BUCKET, 'lading-diff-s3-');
  });
  after(async () => {
    await fx?.stop();
  });

  it('a local tar against its copy in S3, verified: identical', async () => {
    const r = await cliAsync(
      [
        'diff',
        fx.t.bundle,
        `s3://${BUCKET}/releases/shop-2.4.0.tar`,
        '--key',
        fx.t.pub,
        '--endpoint',
        fx.server.endpoint,
        '--json',
      ],
      fx.env,
    );
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(r.stdout) as BundleDiff;
    assert.equal(d.identical, true);
    assert.equal(d.new.bundle, `s3://${BUCKET}/releases/shop-2.4.0.tar`);
    assert.equal(d.old.verified && d.new.verified, true);
  });

  it('a split bundle in S3, from its first part, against the same bundle unsplit on disk: identical (no --key: said so)', async () => {
    const r = await cliAsync(
      ['diff', `s3://${BUCKET}/split/shop-2.4.0.tar.000`, fx.t.bundle, '--endpoint', fx.server.endpoint],
      fx.env,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^OLD shop 2\.4\.0 {2}s3:\/\/dropzone\/split\/shop-2\.4\.0\.tar\.000 {2}NOT verified/m,
    );
    assert.match(r.stdout, /The bundles are identical/);
    const j = await cliAsync(
      [
        'diff',
        `s3://${BUCKET}/split/shop-2.4.0.tar.000`,
        fx.t.bundle,
        '--endpoint',
        fx.server.endpoint,
        '--json',
      ],
      fx.env,
    );
    const d = JSON.parse(j.stdout) as BundleDiff;
    assert.equal(d.identical, true);
    assert.equal(d.images.unchanged, d.images.unchanged + d.images.added.length + d.images.moved.length);
    assert.ok(d.images.unchanged > 0);
  });
});
