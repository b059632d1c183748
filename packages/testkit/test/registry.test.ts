import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { type RegistryMode, type RegistryServer, registryRequests, startRegistry } from '@lading/testkit';
import { basic, get } from './http-helper.ts';

function portOpen(host: string): Promise<boolean> {
  const [h, p] = host.split(':');
  return new Promise((resolve) => {
    const s = connect({ host: h!, port: Number(p) });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function tokenFor(reg: RegistryServer, user: string, password: string, scope: string): Promise<string> {
  const ca = await readFile(reg.caFile!);
  const url = `${reg.tokenRealm}?service=${encodeURIComponent(reg.tokenService!)}&scope=${encodeURIComponent(scope)}`;
  const r = await get(url, { ca, headers: { authorization: basic(user, password) } });
  assert.equal(r.status, 200, r.body);
  const { token } = JSON.parse(r.body) as { token: string };
  return token;
}

describe('startRegistry', () => {
  const expected: Record<RegistryMode, { scheme: string; anonymous: number }> = {
    http: { scheme: 'http', anonymous: 200 },
    tls: { scheme: 'https', anonymous: 200 },
    basic: { scheme: 'https', anonymous: 401 },
    token: { scheme: 'https', anonymous: 401 },
  };

  for (const mode of ['http', 'tls', 'basic', 'token'] as const) {
    describe(`mode ${mode}`, () => {
      let reg: RegistryServer;
      before(async () => {
        reg = await startRegistry({ mode });
      });
      after(async () => {
        await reg?.stop();
      });

      it('listens on a loopback port and answers /v2/', async () => {
        assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
        assert.equal(reg.url, `${expected[mode].scheme}://${reg.host}`);
        assert.equal(reg.mode, mode);
        const ca = reg.caFile ? await readFile(reg.caFile) : undefined;
        const r = await get(`${reg.url}/v2/`, ca ? { ca } : {});
        assert.equal(r.status, expected[mode].anonymous);
        assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
      });

      if (mode === 'http') {
        it('registryRequests: what the registry logged, in order, from `since` on', async () => {
          const since = (await registryRequests(reg)).length;
          assert.equal((await fetch(`${reg.url}/v2/a/b/manifests/x`, { method: 'HEAD' })).status, 404);
          assert.equal((await fetch(`${reg.url}/v2/a/tags/list?n=2&last=a%20b`)).status, 404);
          assert.equal((await fetch(`${reg.url}/v2/`)).status, 200);
          assert.deepEqual(
            (await registryRequests(reg, since)).map((q) => [q.method, q.uri, q.status]),
            [
              ['HEAD', '/v2/a/b/manifests/x', 404],
              ['GET', '/v2/a/tags/list?n=2&last=a%20b', 404],
              ['GET', '/v2/', 200],
            ],
          );
          assert.equal((await registryRequests(reg, since + 2)).length, 1, '`since` drops the first entries');
        });
      }

      if (mode !== 'http') {
        it('serves a certificate for 127.0.0.1 and localhost that only the test CA trusts', async () => {
          await assert.rejects(get(`${reg.url}/v2/`), /self[- ]signed|unable to verify|certificate/i);
          const ca = await readFile(reg.caFile!);
          const port = reg.host.split(':')[1];
          const r = await get(`https://localhost:${port}/v2/`, { ca });
          assert.equal(r.status, expected[mode].anonymous);
          assert.ok(reg.certDir);
          assert.deepEqual(await readFile(`${reg.certDir}/ca.crt`), ca);
        });
      }

      if (mode === 'basic') {
        it('accepts the user and refuses a wrong password with 401', async () => {
          const ca = await readFile(reg.caFile!);
          assert.ok(reg.username && reg.password);
          const ok = await get(`${reg.url}/v2/`, {
            ca,
            headers: { authorization: basic(reg.username, reg.password) },
          });
          assert.equal(ok.status, 200);
          const bad = await get(`${reg.url}/v2/`, {
            ca,
            headers: { authorization: basic(reg.username, 'wrong') },
          });
          assert.equal(bad.status, 401);
          assert.match(String(bad.headers['www-authenticate']), /^Basic realm=/);
        });
      }

      if (mode === 'token') {
        it('challenges with Bearer realm/service and accepts a token from the realm', async () => {
          const ca = await readFile(reg.caFile!);
          const anon = await get(`${reg.url}/v2/`, { ca });
          const challenge = String(anon.headers['www-authenticate']);
          assert.ok(challenge.startsWith('Bearer '), challenge);
          assert.ok(challenge.includes(`realm="${reg.tokenRealm}"`), challenge);
          assert.ok(challenge.includes(`service="${reg.tokenService}"`), challenge);
          const token = await tokenFor(reg, reg.username!, reg.password!, 'registry:catalog:*');
          const cat = await get(`${reg.url}/v2/_catalog`, {
            ca,
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(cat.status, 200, cat.body);
          assert.deepEqual(JSON.parse(cat.body), { repositories: [] });
          const forged = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
          const bad = await get(`${reg.url}/v2/_catalog`, {
            ca,
            headers: { authorization: `Bearer ${forged}` },
          });
          assert.equal(bad.status, 401);
        });

        it('refuses a wrong password at the realm with 401', async () => {
          const ca = await readFile(reg.caFile!);
          const r = await get(
            `${reg.tokenRealm}?service=${reg.tokenService}&scope=repository:demo/app:pull`,
            {
              ca,
              headers: { authorization: basic(reg.username!, 'wrong') },
            },
          );
          assert.equal(r.status, 401);
          const last = reg.tokenRequests!.at(-1)!;
          assert.equal(last.status, 401);
          assert.equal(last.user, reg.username);
        });

        it('grants only the requested repository scope', async () => {
          const token = await tokenFor(reg, reg.username!, reg.password!, 'repository:demo/app:pull,push');
          const ca = await readFile(reg.caFile!);
          const own = await get(`${reg.url}/v2/demo/app/tags/list`, {
            ca,
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(own.status, 404, own.body); // allowed, but nothing pushed yet
          const other = await get(`${reg.url}/v2/demo/other/tags/list`, {
            ca,
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(other.status, 401);
          const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
            access: unknown;
          };
          assert.deepEqual(claims.access, [
            { type: 'repository', name: 'demo/app', actions: ['pull', 'push'] },
          ]);
        });
      }

      it('stop() ends the registry and frees its port', async () => {
        const other = await startRegistry({ mode });
        assert.equal(await portOpen(other.host), true);
        await other.stop();
        assert.equal(await portOpen(other.host), false);
        await other.stop(); // idempotent
      });
    });
  }

  it('refuses readOnlyUser outside token mode', async () => {
    await assert.rejects(
      startRegistry({ mode: 'basic', readOnlyUser: true }),
      /readOnlyUser needs mode 'token'/,
    );
  });

  it('token mode with readOnlyUser: the reader gets pull but never push', async () => {
    const reg = await startRegistry({ mode: 'token', readOnlyUser: true });
    try {
      assert.ok(reg.readOnlyUsername && reg.readOnlyPassword);
      assert.notEqual(reg.readOnlyUsername, reg.username);
      const token = await tokenFor(
        reg,
        reg.readOnlyUsername,
        reg.readOnlyPassword,
        'repository:demo/app:pull,push',
      );
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
        access: unknown;
      };
      assert.deepEqual(claims.access, [{ type: 'repository', name: 'demo/app', actions: ['pull'] }]);
      const ca = await readFile(reg.caFile!);
      const push = await get(`${reg.url}/v2/demo/app/blobs/uploads/`, {
        ca,
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(push.status, 401);
    } finally {
      await reg.stop();
    }
  });
});
