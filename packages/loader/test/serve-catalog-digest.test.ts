/**
 * `serve` hashes each manifest it indexes against its digest before serving it (issue 10 §3): a
 * bundle changed in place after it was verified and opened serves no altered manifest.
 */
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { BundleTarget, blobMemberName, DigestMismatchError } from '@lading/core';
import { tmpDir } from '@lading/testkit';
import { ServeCatalog } from '../src/lib/serve/index.ts';
import { buildTestBundle, type TestBundle } from './serve-fixtures.ts';

describe('serve catalog: manifests checked against their digests', function () {
  this.timeout(120_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;
  before(async () => {
    dir = await tmpDir('lading-serve-digest-');
    tb = await buildTestBundle(dir.path);
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('a manifest changed in the file after opening → DigestMismatchError naming it, not served', async () => {
    const target = await BundleTarget.open(tb.path);
    try {
      // Unchanged: the catalog builds.
      await ServeCatalog.build(target);
      const root = tb.refs[0]!;
      const member = target.bundle.member(blobMemberName(root.digest as never));
      assert.ok(member, 'the manifest member');
      const fh = await open(tb.path, 'r+');
      try {
        const b = Buffer.alloc(1);
        await fh.read(b, 0, 1, member.offset + 10);
        b[0] = (b[0] as number) ^ 0x01;
        await fh.write(b, 0, 1, member.offset + 10);
      } finally {
        await fh.close();
      }
      await assert.rejects(ServeCatalog.build(target), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError, String(err));
        assert.equal(err.exitCode, 3);
        assert.match(err.message, new RegExp(root.digest.slice(7, 20)));
        return true;
      });
    } finally {
      await target.close();
    }
  });
});
