import assert from 'node:assert/strict';
import {
  type RegistryServer,
  startRegistry,
  startTcpProxy,
  startTripwire,
  type TcpProxy,
  type Tripwire,
} from '@lading/testkit';
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

describe('lading-load push: interrupted with SIGINT mid-upload', function () {
  this.timeout(180_000);
  let f: Fixture;
  let bundle: string;
  let reg: RegistryServer;
  let proxy: TcpProxy;

  before(async () => {
    f = await makeFixture(64 * 1024 * 1024);
    bundle = await f.bundle('shop.tar');
    reg = await startRegistry({ mode: 'http' });
    proxy = await startTcpProxy(reg.host);
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    await f?.cleanup();
  });

  it('exit 130 and the line to rerun, no stack trace', async () => {
    let pid = 0;
    // SIGINT once 16 MiB of the big layer went up: that upload is in flight.
    const interrupted = proxy.whenSent(16 * 1024 * 1024).then(() => process.kill(pid, 'SIGINT'));
    const r = await runCli(['push', bundle, '--key', f.pub, '--registry', `${proxy.host}/site`], {
      onSpawn: (p) => {
        pid = p;
      },
    });
    await interrupted;
    assert.equal(r.code, 130, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `run the same command again: lading-load push \\S+shop\\.tar --key \\S+ --registry ${proxy.host}/site`,
      ),
    );
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
});
