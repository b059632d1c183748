import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  freePort,
  needs,
  type ProxyServer,
  type RegistryServer,
  startProxy,
  startRegistry,
  TINYPROXY_BIN,
} from '@lading/testkit';
import { type Fixture, makeFixture, registryFlags, runCli } from './push-helpers.ts';

function proxyEnv(proxy: string, noProxy = ''): NodeJS.ProcessEnv {
  return {
    HTTPS_PROXY: proxy,
    https_proxy: proxy,
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}

describe('lading-load push behind a forward proxy (tinyproxy on loopback)', function () {
  this.timeout(180_000);
  let f: Fixture;
  let bundle: string;
  let reg: RegistryServer;
  let proxy: ProxyServer;

  before(async function () {
    needs(this, existsSync(TINYPROXY_BIN), 'tinyproxy (apt-get install tinyproxy)');
    [f, reg, proxy] = await Promise.all([
      makeFixture(1024 * 1024),
      startRegistry({ mode: 'token' }),
      startProxy(),
    ]);
    bundle = await f.bundle('proxied.tar');
  });
  after(async () => {
    await Promise.all([proxy?.stop(), reg?.stop(), f?.cleanup()]);
  });

  it('the registry and its token server are reached through HTTPS_PROXY (CONNECT tunnels)', async () => {
    const { args, env } = registryFlags(reg);
    const r = await runCli(
      ['push', bundle, '--key', f.pub, '--registry', `${reg.host}/via-proxy`, ...args, '--json'],
      {
        env: { ...env, ...proxyEnv(proxy.url) },
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const seen = await proxy.requests();
    assert.ok(seen.includes(`CONNECT ${reg.host}`), seen.join('\n'));
    assert.ok(seen.includes(`CONNECT ${new URL(reg.tokenRealm as string).host}`), seen.join('\n'));
  });

  it('a proxy that refuses the connection: exit 4 naming the proxy, never its password', async () => {
    const { args, env } = registryFlags(reg);
    const dead = `http://site:pr0xy-pass@127.0.0.1:${await freePort()}`;
    const r = await runCli(['push', bundle, '--key', f.pub, '--registry', `${reg.host}/refused`, ...args], {
      env: { ...env, ...proxyEnv(dead) },
    });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    assert.doesNotMatch(r.stdout + r.stderr, /pr0xy-pass/);
  });
});
