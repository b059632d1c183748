import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import {
  needs,
  type ProxyServer,
  type RegistryServer,
  startProxy,
  startRegistry,
  TINYPROXY_BIN,
} from '@lading/testkit';
import { type ChartRepo, startChartRepo } from '@lading/testkit/chart-repo';
import { type S3Server, startS3Server } from '@lading/testkit/s3';
import {
  chartArchiveUrl,
  downloadChartBytes,
  fetchRepoIndex,
  findChartVersion,
} from '../src/charts/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import {
  NoProxy,
  ProxyError,
  type ProxySettings,
  proxySettingsFromEnv,
  Registry,
  redactProxyUrl,
} from '../src/registry/index.ts';
import { createS3Client } from '../src/s3/index.ts';

const WEBAPP = fileURLToPath(new URL('../../../fixtures/charts/webapp', import.meta.url));
const noKeychain = { get: async () => undefined };

describe('proxy: NO_PROXY rules and settings', () => {
  const u = (s: string) => new URL(s);

  it('matches host names, their subdomains, *.suffix, host:port, IPs and CIDR ranges', () => {
    const n = new NoProxy(
      'example.com, .corp.internal *.svc:8443,10.0.0.0/8,[fd00::]/8,192.168.1.7, reg:5000',
    );
    assert.equal(n.bypasses(u('https://example.com/v2/')), true);
    assert.equal(n.bypasses(u('https://a.b.example.com/')), true);
    assert.equal(n.bypasses(u('https://notexample.com/')), false);
    assert.equal(n.bypasses(u('https://x.corp.internal/')), true);
    assert.equal(n.bypasses(u('https://corp.internal/')), true);
    assert.equal(n.bypasses(u('https://a.svc:8443/')), true);
    assert.equal(n.bypasses(u('https://a.svc/')), false, 'port must match');
    assert.equal(n.bypasses(u('https://svc:8443/')), false, '*.suffix is subdomains only');
    assert.equal(n.bypasses(u('http://10.20.30.40:5000/')), true);
    assert.equal(n.bypasses(u('http://11.0.0.1/')), false);
    assert.equal(n.bypasses(u('http://[fd12::1]:5000/')), true);
    assert.equal(n.bypasses(u('http://[fe80::1]/')), false);
    assert.equal(n.bypasses(u('http://192.168.1.7/')), true);
    assert.equal(n.bypasses(u('http://192.168.1.8/')), false);
    assert.equal(n.bypasses(u('http://reg:5000/')), true);
    assert.equal(n.bypasses(u('http://reg:5001/')), false);
    // Loopback is not special: it goes through the proxy unless listed.
    assert.equal(n.bypasses(u('http://127.0.0.1:5000/')), false);
    assert.equal(new NoProxy('127.0.0.0/8').bypasses(u('http://127.0.0.1:5000/')), true);
    assert.equal(new NoProxy('*').bypasses(u('https://anything/')), true);
  });

  it('reads lower case before upper case, and hides credentials in messages', () => {
    const s = proxySettingsFromEnv({
      HTTPS_PROXY: 'http://upper:3128',
      https_proxy: 'http://lower:3128',
      HTTP_PROXY: 'http://plain:3128',
      NO_PROXY: 'a.example',
    });
    assert.deepEqual(s, {
      httpProxy: 'http://plain:3128',
      httpsProxy: 'http://lower:3128',
      noProxy: 'a.example',
    });
    assert.deepEqual(proxySettingsFromEnv({ HTTP_PROXY: ' ' }), {});
    const shown = redactProxyUrl('http://alice:s3cret@proxy.corp:3128');
    assert.equal(shown, 'http://***@proxy.corp:3128');
    assert.doesNotMatch(shown, /alice|s3cret/);
  });
});

describe('proxy: every outbound connection goes through tinyproxy', function () {
  this.timeout(120_000);
  let proxy: ProxyServer;
  let authProxy: ProxyServer;
  let reg: RegistryServer;
  let tlsReg: RegistryServer;
  let charts: ChartRepo;
  let s3: S3Server;

  before(async function () {
    needs(this, existsSync(TINYPROXY_BIN), 'tinyproxy (apt-get install tinyproxy)');
    [proxy, authProxy, reg, tlsReg, charts, s3] = await Promise.all([
      startProxy(),
      startProxy({ basicAuth: { username: 'alice', password: 's3cret' } }),
      startRegistry({ mode: 'http' }),
      startRegistry({ mode: 'token' }),
      startChartRepo({ charts: [WEBAPP] }),
      startS3Server({ buckets: ['b'] }),
    ]);
  });
  after(async () => {
    await Promise.all([proxy, authProxy, reg, tlsReg, charts, s3].map((s) => s?.stop()));
  });

  const via = (p: string, noProxy = ''): ProxySettings => ({ httpProxy: p, httpsProxy: p, noProxy });

  it('registry (plain HTTP): forwarded through the proxy, and direct when NO_PROXY names it', async () => {
    const r = new Registry(reg.host, { plainHttp: true, keychain: noKeychain, proxy: via(proxy.url) });
    await r.ping();
    await r.close();
    assert.ok(
      (await proxy.requests()).includes(`GET http://${reg.host}/v2/`),
      (await proxy.requests()).join('\n'),
    );

    const before = (await proxy.requests()).length;
    for (const noProxy of [reg.host, '127.0.0.0/8', '127.0.0.1']) {
      const d = new Registry(reg.host, {
        plainHttp: true,
        keychain: noKeychain,
        proxy: via(proxy.url, noProxy),
      });
      await d.ping();
      await d.close();
    }
    assert.equal((await proxy.requests()).length, before, 'NO_PROXY requests must not reach the proxy');
  });

  it('registry over TLS with a token server: both tunnelled (CONNECT), through a proxy that wants credentials', async () => {
    const r = new Registry(tlsReg.host, {
      keychain: noKeychain,
      caFile: tlsReg.caFile as string,
      credentials: { username: tlsReg.username as string, password: tlsReg.password as string },
      proxy: via(authProxy.urlWithCredentials),
    });
    const tags = await r
      .repository('never/pushed')
      .resolve('latest')
      .catch((e: unknown) => e);
    await r.close();
    assert.ok(!(tags instanceof ProxyError), String(tags));
    const seen = await authProxy.requests();
    assert.ok(seen.includes(`CONNECT ${tlsReg.host}`), seen.join('\n'));
    const tokenHost = new URL(tlsReg.tokenRealm as string).host;
    assert.ok(seen.includes(`CONNECT ${tokenHost}`), `token server not proxied:\n${seen.join('\n')}`);
  });

  it('a proxy that wants credentials and gets none: ProxyError (exit 4) naming the proxy', async () => {
    const r = new Registry(tlsReg.host, {
      keychain: noKeychain,
      caFile: tlsReg.caFile as string,
      proxy: via(authProxy.url),
      retry: { maxAttempts: 1 },
    });
    const err = await r.ping().catch((e: unknown) => e);
    await r.close();
    assert.ok(err instanceof ProxyError, String(err));
    assert.equal(err.exitCode, ExitCode.remote);
    assert.match(err.message, new RegExp(`${authProxy.url.replace(/[.:/]/g, '\\$&')}.*407`));
  });

  it('a proxy that refuses the connection: ProxyError (exit 4) naming it, never its password', async () => {
    const dead = 'http://bob:hunter2@127.0.0.1:9';
    const r = new Registry(reg.host, {
      plainHttp: true,
      keychain: noKeychain,
      proxy: via(dead),
      retry: { maxAttempts: 1 },
    });
    const err = await r.ping().catch((e: unknown) => e);
    await r.close();
    assert.ok(err instanceof ProxyError, String(err));
    assert.equal(err.exitCode, ExitCode.remote);
    assert.match(err.message, /proxy http:\/\/\*\*\*@127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    assert.doesNotMatch(`${err.message} ${err.hint}`, /hunter2|bob/);
  });

  it('chart repository (index and archive) goes through the proxy named in HTTP_PROXY', async () => {
    const before = (await proxy.requests()).length;
    await fetchRepoIndex({ url: charts.url });
    assert.equal((await proxy.requests()).length, before, 'no proxy in the environment: direct');
    const prev = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = '';
    try {
      const index = await fetchRepoIndex({ url: charts.url });
      const entry = findChartVersion(index, 'webapp', undefined);
      const { bytes } = await downloadChartBytes({ url: charts.url }, entry);
      assert.ok(bytes.length > 0);
      const seen = (await proxy.requests()).slice(before);
      assert.deepEqual(seen, [
        `GET ${charts.url}/index.yaml`,
        `GET ${chartArchiveUrl(charts.url, entry).href}`,
      ]);
    } finally {
      for (const [k, v] of Object.entries(prev)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('S3 requests go through the proxy', async () => {
    const client = await createS3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      transport: { proxy: proxy.url },
    });
    await client.send(new HeadBucketCommand({ Bucket: 'b' }));
    client.destroy();
    assert.ok(
      (await proxy.requests()).includes(`HEAD ${s3.endpoint}/b/`),
      (await proxy.requests()).join('\n'),
    );
  });
});
