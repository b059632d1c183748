import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, needs, type ProxyServer, startProxy, TINYPROXY_BIN } from '@lading/testkit';
import { ensureBuilt, type Fixture, runCli, startFixture } from './helpers.ts';

/** The proxy variables, both cases (lower case wins, so a caller's own must not leak in). */
function proxyEnv(proxy: string, noProxy = ''): NodeJS.ProcessEnv {
  return {
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    HTTPS_PROXY: proxy,
    https_proxy: proxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}

describe('lading-build behind a forward proxy (tinyproxy on loopback)', function () {
  this.timeout(180_000);
  let fx: Fixture;
  let proxy: ProxyServer;
  let env: NodeJS.ProcessEnv;
  const create = (out: string, extra: NodeJS.ProcessEnv) =>
    runCli(
      [
        'create',
        '--spec',
        fx.spec,
        '--output',
        join(fx.dir, out),
        '--unsigned',
        '--plain-http-host',
        fx.registry.host,
      ],
      { ...env, ...extra },
    );

  before(async function () {
    needs(this, existsSync(TINYPROXY_BIN), 'tinyproxy (apt-get install tinyproxy)');
    await ensureBuilt();
    [fx, proxy] = await Promise.all([
      startFixture(),
      startProxy({ basicAuth: { username: 'builder', password: 'pr0xy-s3cret' } }),
    ]);
    env = { SOURCE_DATE_EPOCH: '1700000000', LADING_CACHE: join(fx.dir, 'cache') };
  });
  after(async () => {
    await proxy?.stop();
    await fx?.stop();
  });

  it('create sends registry and chart repository requests through HTTP_PROXY (with credentials)', async () => {
    const r = await create('via-proxy.tar', {
      ...proxyEnv(proxy.urlWithCredentials),
      LADING_CACHE: join(fx.dir, 'c1'),
    });
    assert.equal(r.code, 0, r.stderr);
    const seen = await proxy.requests();
    const reg = `http://${fx.registry.host}`;
    assert.ok(
      seen.some((l) => l.startsWith(`GET ${reg}/v2/demo/multi/manifests/`)),
      seen.join('\n'),
    );
    assert.ok(
      seen.some((l) => l.startsWith(`GET ${reg}/v2/demo/app/blobs/sha256:`)),
      seen.join('\n'),
    );
    assert.ok(seen.includes(`GET ${fx.chartRepo.url}/index.yaml`), seen.join('\n'));
    assert.ok(
      seen.some((l) => /^GET http:\/\/.*\/shopchart-0\.3\.1\.tgz$/.test(l)),
      seen.join('\n'),
    );
    assert.doesNotMatch(r.stdout + r.stderr, /pr0xy-s3cret/);
  });

  it('NO_PROXY (a CIDR range) sends the same requests direct', async () => {
    const before = (await proxy.requests()).length;
    const r = await create('direct.tar', {
      ...proxyEnv(proxy.urlWithCredentials, '127.0.0.0/8'),
      LADING_CACHE: join(fx.dir, 'c2'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await proxy.requests()).length, before, 'nothing may go through the proxy');
  });

  it('a proxy that refuses the connection: exit 4 naming the proxy, never its password', async () => {
    const dead = `http://builder:pr0xy-s3cret@127.0.0.1:${await freePort()}`;
    const r = await create('refused.tar', { ...proxyEnv(dead), LADING_CACHE: join(fx.dir, 'c3') });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.match(r.stderr, /HTTPS_PROXY/);
    assert.doesNotMatch(r.stdout + r.stderr, /pr0xy-s3cret|builder:/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});
