import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BundleTarget } from '@lading/core';
import { PushCredentialsError, planPush, resolveCredentials } from '../src/lib/push/index.ts';
import { PathCollisionError } from '../src/lib/registry-target.ts';
import { type BundleEntry, type Fixture, makeFixture } from './push-helpers.ts';

describe('push planning and credentials (no registry)', function () {
  this.timeout(120_000);
  let f: Fixture;
  before(async () => {
    f = await makeFixture(64 * 1024);
  });
  after(async () => {
    await f?.cleanup();
  });
  const entry = (s: string) => f.entries.find((e) => e.ref.includes(s)) as BundleEntry;

  async function plan(name: string, alias: Array<[string, BundleEntry]> = [], prefix = 'airgap') {
    const t = await BundleTarget.open(await f.bundle(name, { alias }));
    try {
      return planPush(t, { host: 'harbor.local', prefix });
    } finally {
      await t.close();
    }
  }

  it('maps sources under the prefix (host dropped), charts under PREFIX/charts, digest-only refs untagged', async () => {
    const app = entry('demo/app');
    const items = await plan('p1.tar', [[`ghcr.io/acme/pinned@${app.digest}`, app]]);
    const byTarget = Object.fromEntries(items.map((i) => [i.source, i.target]));
    assert.equal(byTarget['docker.io/demo/app:1.0'], 'harbor.local/airgap/demo/app:1.0');
    assert.equal(byTarget['registry.example.com:5000/demo/big:1.0'], 'harbor.local/airgap/demo/big:1.0');
    assert.equal(byTarget['charts/plain:0.1.0'], 'harbor.local/airgap/charts/plain:0.1.0');
    const pinned = items.find((i) => i.source.startsWith('ghcr.io/acme/pinned@'));
    assert.equal(pinned?.tag, undefined);
    assert.equal(pinned?.target, `harbor.local/airgap/acme/pinned@${app.digest}`);
    assert.equal(items.find((i) => i.kind === 'chart')?.repository, 'airgap/charts/plain');
  });

  it('without a prefix, paths are the source repositories', async () => {
    const items = await plan('p2.tar', [], '');
    assert.equal(
      items.find((i) => i.source === 'quay.io/demo/legacy:2.0')?.target,
      'harbor.local/demo/legacy:2.0',
    );
    assert.equal(items.find((i) => i.kind === 'chart')?.target, 'harbor.local/charts/plain:0.1.0');
  });

  it('an image on a chart path is a collision', async () => {
    await assert.rejects(
      plan('p3.tar', [['docker.io/charts/plain:9.9', entry('demo/app')]]),
      (err: unknown) => {
        assert.ok(err instanceof PathCollisionError);
        assert.equal(err.exitCode, 2);
        assert.match(err.message, /charts\/plain/);
        return true;
      },
    );
  });

  it('one tag for two digests is a collision', async () => {
    // `demo/app:1.0` normalises to docker.io/demo/app:1.0, which holds another digest
    await assert.rejects(plan('p4.tar', [['demo/app:1.0', entry('demo/legacy')]]), PathCollisionError);
  });

  it('credentials: flags win over the environment; halves may come from either; stdin is trimmed of one newline', async () => {
    const env = { LADING_REGISTRY_USERNAME: 'envuser', LADING_REGISTRY_PASSWORD: 'envpass' };
    assert.equal(await resolveCredentials({ env: {} }), undefined);
    assert.deepEqual(await resolveCredentials({ env }), { username: 'envuser', password: 'envpass' });
    assert.deepEqual(await resolveCredentials({ env, username: 'u' }), {
      username: 'u',
      password: 'envpass',
    });
    assert.deepEqual(
      await resolveCredentials({
        env,
        username: 'u',
        passwordStdin: true,
        stdin: Readable.from(['s3cret\n']),
      }),
      { username: 'u', password: 's3cret' },
    );
    await assert.rejects(resolveCredentials({ env: {}, username: 'u' }), PushCredentialsError);
    await assert.rejects(
      resolveCredentials({ env: {}, passwordStdin: true, stdin: Readable.from(['p']) }),
      PushCredentialsError,
    );
    await assert.rejects(
      resolveCredentials({ env: {}, username: 'u', passwordStdin: true, stdin: Readable.from([]) }),
      PushCredentialsError,
    );
  });
});
