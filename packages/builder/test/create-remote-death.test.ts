import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTripwire, type Tripwire } from '@lading/testkit';
import { ensureBuilt, type Fixture, runCli, startFixture } from './helpers.ts';

/**
 * Issue 13: the source registry dying in the middle of a pull is exit 4, names the registry and
 * says to run the command again; nothing appears
 * at --output.
 */
describe('lading-build create: the source registry dies mid-pull', function () {
  this.timeout(300_000);
  let fx: Fixture;
  let wire: Tripwire;

  before(async () => {
    await ensureBuilt();
    fx = await startFixture({ bigBytes: 16 * 1024 * 1024 });
  });
  after(async () => {
    await wire?.stop();
    await fx?.stop();
  });

  it('exit 4, the registry named, the rerun hint, no bundle', async () => {
    wire = await startTripwire({
      target: fx.registry.host,
      afterBytes: 4 * 1024 * 1024,
      direction: 'down',
      onTrip: () => fx.registry.stop(),
    });
    const spec = join(fx.dir, 'dying.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1\nname: d\nversion: 1.0.0\nimages:\n  - ${wire.host}/demo/big:1.0\n`,
    );
    const out = join(fx.dir, 'dying-out');
    const r = await runCli([
      'create',
      '--spec',
      spec,
      '--output',
      `${out}.tar`,
      '--unsigned',
      '--cache',
      join(fx.dir, 'c'),
    ]);
    assert.ok(wire.done, 'the registry was stopped mid-pull');
    assert.equal(r.code, 4, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.ok(r.stderr.includes(wire.host), r.stderr);
    assert.match(r.stderr, /run the same command again/);
    assert.deepEqual(
      (await readdir(fx.dir)).filter((n) => n.startsWith('dying-out')),
      [],
    );
  });
});
