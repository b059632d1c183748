/**
 * Where credentials may go (issue 10 §3): Authorization only to the registry's own origin —
 * scheme, host and port — so not after an https → http redirect to the same host; and a bearer
 * token realm over plain HTTP gets no password unless the registry itself is plain HTTP.
 *
 * The registry `reg.test` is reached on its default ports (443 and 80) through a STAND-IN HTTP
 * proxy on 127.0.0.1 that hands every tunnel to an in-process server: real TLS (a test CA made
 * with openssl), real redirects, the real client and transport; only the name resolution is
 * the proxy's.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeTestCA, tmpDir } from '@lading/testkit';
import { AuthError, RegistryClient } from '../src/registry/index.ts';

interface Seen {
  scheme: 'http' | 'https';
  path: string;
  headers: IncomingHttpHeaders;
}

describe('registry client: where credentials go', function () {
  this.timeout(60_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let ca: string;
  let proxy: http.Server;
  let proxyUrl: string;
  const seen: Seen[] = [];
  /** What the https side answers, per test. */
  let httpsHandler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  let tls: https.Server;
  let plain: http.Server;
  const BASIC = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;

  before(async () => {
    dir = await tmpDir('lading-auth-origin-');
    const pki = await makeTestCA(dir.path, ['reg.test']);
    ca = await readFile(pki.caFile, 'utf8');
    tls = https.createServer(
      { cert: await readFile(pki.certFile), key: await readFile(pki.keyFile) },
      (req, res) => {
        seen.push({ scheme: 'https', path: req.url ?? '', headers: req.headers });
        httpsHandler(req, res);
      },
    );
    plain = http.createServer((req, res) => {
      seen.push({
        scheme: 'http',
        path: new URL(req.url ?? '/', 'http://reg.test').pathname,
        headers: req.headers,
      });
      if (req.url?.includes('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t0k"}');
      } else res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    proxy = http.createServer((req, res) => plain.emit('request', req, res));
    proxy.on('connect', (req, socket, head) => {
      const port = Number((req.url ?? '').split(':')[1]);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) socket.unshift(head);
      (port === 443 ? tls : plain).emit('connection', socket);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  after(async () => {
    proxy?.closeAllConnections();
    proxy?.close();
    tls?.closeAllConnections();
    plain?.closeAllConnections();
    await dir?.cleanup();
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const client = (plainHttp = false) =>
    new RegistryClient('reg.test', {
      proxy: proxyUrl,
      ca,
      plainHttp,
      credentials: { username: 'alice', password: 's3cret' },
      retry: { maxAttempts: 1 },
    });

  it('an https → http redirect to the same host keeps no Authorization', async () => {
    httpsHandler = (req, res) => {
      if (req.headers.authorization !== BASIC) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' }).end();
      } else {
        res.writeHead(307, { location: `http://reg.test${req.url}` }).end();
      }
    };
    const res = await client().send({
      method: 'GET',
      path: '/v2/a/b/blobs/sha256:00',
      scopes: [],
      kind: 'blob',
    });
    assert.equal(await res.body.text(), 'ok');
    const https1 = seen.filter((s) => s.scheme === 'https');
    assert.equal(https1.at(-1)?.headers.authorization, BASIC, 'the registry itself got the password');
    const leg = seen.find((s) => s.scheme === 'http');
    assert.ok(leg, JSON.stringify(seen.map((s) => `${s.scheme} ${s.path}`)));
    assert.equal(leg.headers.authorization, undefined, 'no credentials over plain HTTP');
  });

  it('an https registry with a plain-HTTP token realm: refused, no password sent', async () => {
    httpsHandler = (req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://reg.test/token",service="reg"' }).end();
      void req;
    };
    await assert.rejects(
      client().send({
        method: 'GET',
        path: '/v2/a/b/manifests/1',
        scopes: ['repository:a/b:pull'],
        kind: 'manifest',
      }),
      (err: unknown) =>
        err instanceof AuthError && /plain HTTP/.test(err.message) && /https/.test(err.hint ?? ''),
    );
    const token = seen.filter((s) => s.path.startsWith('/token'));
    assert.ok(
      token.every((s) => s.headers.authorization === undefined),
      'the realm never got Basic credentials',
    );
  });

  it('a plain-HTTP registry may use a plain-HTTP realm with the password', async () => {
    // The http side is the registry here: /v2/... answers a bearer challenge, /token a token.
    const handler = plain.listeners('request')[0] as (
      req: http.IncomingMessage,
      res: http.ServerResponse,
    ) => void;
    plain.removeAllListeners('request');
    plain.on('request', (req, res) => {
      if (req.url?.includes('/v2/') && req.headers.authorization !== 'Bearer t0k') {
        seen.push({
          scheme: 'http',
          path: new URL(req.url, 'http://reg.test').pathname,
          headers: req.headers,
        });
        res
          .writeHead(401, { 'www-authenticate': 'Bearer realm="http://reg.test/token",service="reg"' })
          .end();
        return;
      }
      handler(req, res);
    });
    try {
      const res = await client(true).send({
        method: 'GET',
        path: '/v2/a/b/blobs/sha256:00',
        scopes: ['repository:a/b:pull'],
        kind: 'blob',
      });
      assert.equal(await res.body.text(), 'ok');
      const token = seen.find((s) => s.path.startsWith('/token'));
      assert.equal(token?.headers.authorization, BASIC);
    } finally {
      plain.removeAllListeners('request');
      plain.on('request', handler);
    }
  });
});
