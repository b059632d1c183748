/**
 * Verify-then-reopen (issue 10 §3): what serve, install, mirror-config and push use after
 * verifying must be what was verified. A second, older, validly signed bundle put in place of the
 * verified one (or the verified one changed in place) is refused when it is opened for use.
 */
import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleChangedError, BundleTarget, openBundle, verifyBundle } from '../src/bundle/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import { type Keys, makeKeys, makeStaging, tarUp, tmp } from './bundle-read-fixture.ts';

describe('a bundle swapped or changed after verify', () => {
  let root: string;
  let keys: Keys;
  let current: string;
  let older: string;
  let dir: string;

  before(() => {
    root = tmp();
    keys = makeKeys(root);
    const a = makeStaging(join(root, 'a'), keys);
    const b = makeStaging(join(root, 'b'), keys, { layer1Bytes: 200_000 });
    current = tarUp(a.dir, a.members, join(root, 'current.tar'));
    older = tarUp(b.dir, b.members, join(root, 'older.tar'));
    dir = a.dir;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const changed = (err: unknown) =>
    err instanceof BundleChangedError && err.exitCode === ExitCode.verification;

  it('an older, validly signed bundle renamed over the verified path is refused on opening', async () => {
    const report = await verifyBundle(current, { publicKey: keys.pub });
    assert.equal(report.ok, true);
    assert.equal((await verifyBundle(older, { publicKey: keys.pub })).ok, true, 'the older one is valid too');
    const expect = { expectSumsDigest: report.sumsDigest as string };
    // Unchanged: opens.
    await (await BundleTarget.open(current, expect)).close();
    renameSync(older, current);
    await assert.rejects(openBundle(current, expect), changed);
    await assert.rejects(BundleTarget.open(current, expect), (err: unknown) => {
      assert.ok(changed(err), String(err));
      assert.match((err as Error).message, /changed after it was verified/);
      return true;
    });
  });

  it('lading.json changed in place (SHA256SUMS untouched) in an extracted bundle is refused', async () => {
    const report = await verifyBundle(dir, { publicKey: keys.pub });
    assert.equal(report.ok, true);
    writeFileSync(
      join(dir, 'lading.json'),
      '{"name":"evil","version":"1","images":[],"charts":[],"files":[]}',
    );
    await assert.rejects(
      openBundle(dir, { expectSumsDigest: report.sumsDigest as string }),
      (err: unknown) => {
        assert.ok(changed(err), String(err));
        assert.match((err as Error).message, /lading\.json no longer matches SHA256SUMS/);
        return true;
      },
    );
  });
});
