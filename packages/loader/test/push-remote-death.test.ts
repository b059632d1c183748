import assert from 'node:assert/strict';
import { type RegistryServer, startRegistry, startTripwire, type Tripwire } from '@lading/testkit';
import { type Fixture, makeFixture, runCli } from './push-helpers.ts';

/**
 * Issue 13: the target registry dying in the middle of a push ended in exit 13 and Node's
 * "unsettled top-level await" warning, with no Lading error and nothing on stdout with --json.
 * Every remote failure must be exit 4, name the registry and say to run the command again.
 */
describe('lading-load push: the registry dies mid-transfer', function () {
  this.timeout(180_000);
  let f: Fixture;
  let bundle: string;
  let reg: RegistryServer;
  let wire: Tripwire;

  before(async () => {
    f = await makeFixture(24 * 1024 * 1024);
    bundle = await f.bundle('shop.tar');
  });
  after(async () => {
    await f?.cleanup();
  });
  beforeEach(async () => {
    reg = await startRegistry({ mode: 'http' });
    // The registry process is stopped once 20 MiB of the upload (inside the big layer) went through.
    wire = await startTripwire({
      target: reg.host,
      afterBytes: 20 * 1024 * 1024,
      direction: 'up',
      onTrip: () => reg.stop(),
    });
  });
  afterEach(async () => {
    await wire?.stop();
    await reg?.stop();
  });

  for (const json of [false, true]) {
    it(`exit 4, the registry named, a hint to rerun${json ? ' (--json: the error on stdout)' : ''}`, async () => {
      const r = await runCli([
        'push',
        bundle,
        '--key',
        f.pub,
        '--registry',
        `${wire.host}/site`,
        '--plain-http',
        ...(json ? ['--json'] : []),
      ]);
      assert.ok(wire.done, 'the registry was killed mid-push');
      assert.equal(r.code, 4, `exit ${r.code}\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /unsettled top-level await|^\s+at /m);
      const text = json ? r.stdout : r.stderr;
      assert.ok(text.includes(wire.host), `names the registry ${wire.host}:\n${text}`);
      assert.match(text, /run (the same command|it) again|rerun/i);
      if (json) {
        const out = JSON.parse(r.stdout) as {
          error?: { code?: string; message?: string; exitCode?: number };
        };
        assert.equal(typeof out.error, 'object', r.stdout);
        assert.equal(out.error?.exitCode, 4);
      }
    });
  }
});
