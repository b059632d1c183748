import assert from 'node:assert/strict';
import { ExitCode } from '../src/errors/index.ts';
import { InvalidS3UrlError, joinS3Key, parseS3Url } from '../src/s3/index.ts';

describe('s3 url', () => {
  it('parses bucket and key or prefix', () => {
    assert.deepEqual(parseS3Url('s3://drop/releases/shop.tar'), { bucket: 'drop', key: 'releases/shop.tar' });
    assert.deepEqual(parseS3Url('s3://drop/releases/'), { bucket: 'drop', key: 'releases/' });
    assert.deepEqual(parseS3Url('s3://drop'), { bucket: 'drop', key: '' });
    assert.deepEqual(parseS3Url('s3://drop/'), { bucket: 'drop', key: '' });
  });

  it('rejects malformed URLs with a typed error (exit 2)', () => {
    for (const bad of [
      'drop/x',
      'http://drop/x',
      's3://',
      's3:///x',
      's3://a/x',
      's3://bad bucket/x',
      's3://-x-/k',
      's3://drop//k',
    ]) {
      assert.throws(
        () => parseS3Url(bad),
        (err: unknown) => err instanceof InvalidS3UrlError && err.exitCode === ExitCode.usage,
        bad,
      );
    }
    assert.throws(() => parseS3Url('s3://drop/prefix/', { requireKey: true }), InvalidS3UrlError);
    assert.throws(() => parseS3Url('s3://drop', { requireKey: true }), InvalidS3UrlError);
  });

  it('joins prefix and file name as README.md says for publish', () => {
    assert.equal(joinS3Key('', 'b.tar'), 'b.tar');
    assert.equal(joinS3Key('rel', 'b.tar'), 'rel/b.tar');
    assert.equal(joinS3Key('rel/', 'b.tar'), 'rel/b.tar');
  });
});
