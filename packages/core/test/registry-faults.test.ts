import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type RegistryServer, startRegistry } from '@lading/testkit';
import { bytesStream, fetchAll, fetchVerified } from '../src/content/index.ts';
import { DigestMismatchError, digestOf } from '../src/digest/index.ts';
import { type Descriptor, encodeJson, MediaType } from '../src/model/index.ts';
import {
  type Keychain,
  parseRetryAfter,
  Registry,
  RegistryTimeoutError,
  RegistryUnavailableError,
  RetryPolicy,
} from '../src/registry/index.ts';

/**
 * Faults on loopback: a tiny node:http proxy in front of the real Distribution registry injects
 * 503 + Retry-After, dropped connections and paginated tag lists; stand-in servers stall.
 */
const noKeychain: Keychain = { get: async () => undefined };

type Fault = 'pass' | 'reset' | { status: number; headers?: Record<string, string>; body?: string };

interface Proxy {
  host: string;
  log: Array<{ method: string; url: string; fault: string }>;
  fault: (req: IncomingMessage, n: number) => Fault | ((res: ServerResponse) => void);
  stop(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function startProxy(target: string): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let n = 0;
  const proxy: Proxy = {
    host: '',
    log: [],
    fault: () => 'pass',
    stop: async () => closeServer(server, sockets),
  };
  const server = createServer((req, res) => {
    const f = proxy.fault(req, n++);
    proxy.log.push({ method: req.method!, url: req.url!, fault: typeof f === 'string' ? f : 'custom' });
    if (f === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof f === 'function') {
      f(res);
      return;
    }
    if (f !== 'pass') {
      req.resume();
      res.writeHead(f.status, f.headers ?? {});
      res.end(f.body ?? '');
      return;
    }
    const [h, p] = target.split(':');
    const up = httpRequest(
      { host: h, port: Number(p), method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  proxy.host = await listen(server);
  return proxy;
}

function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let i = 0; off < size; i++) off += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off);
  return out;
}

function desc(data: Buffer, mediaType: string): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length };
}

describe('registry client: retries, resume, timeouts (loopback fault injection)', function () {
  this.timeout(60_000);
  let reg: RegistryServer;
  let proxy: Proxy;
  let registry: Registry;
  const img = (() => {
    const cfg = encodeJson({ architecture: 'amd64', os: 'linux' });
    const cd = desc(cfg, MediaType.ociConfig);
    const m = encodeJson({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: cd, layers: [] });
    return { cfg, cd, m, md: desc(m, MediaType.ociManifest) };
  })();

  before(async () => {
    reg = await startRegistry({ mode: 'http' });
    proxy = await startProxy(reg.host);
    registry = new Registry(proxy.host, {
      plainHttp: true,
      keychain: noKeychain,
      retry: { maxAttempts: 4, baseDelayMs: 20 },
    });
    const repo = registry.repository('faults/app');
    await repo.push(img.cd, bytesStream(img.cfg));
    await repo.pushReference(img.md, bytesStream(img.m), 'v1');
  });
  beforeEach(() => {
    proxy.fault = () => 'pass';
    proxy.log.length = 0;
  });
  after(async () => {
    await registry?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  it('retries a 503 after the Retry-After delay it asked for, then succeeds', async () => {
    let failures = 0;
    proxy.fault = (req) =>
      req.url?.includes('/manifests/') && failures++ < 1
        ? {
            status: 503,
            headers: { 'retry-after': '1' },
            body: '{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}',
          }
        : 'pass';
    const waits: number[] = [];
    const recording = new Registry(proxy.host, {
      plainHttp: true,
      keychain: noKeychain,
      retry: { maxAttempts: 4, baseDelayMs: 20, sleep: async (ms) => void waits.push(ms) },
    });
    try {
      const d = await recording.repository('faults/app').resolve('v1');
      assert.equal(d.digest, img.md.digest);
    } finally {
      await recording.close();
    }
    assert.equal(proxy.log.filter((l) => l.url.includes('/manifests/')).length, 2);
    assert.deepEqual(waits, [1000], 'one back-off, of the 1 s Retry-After said');
  });

  it('retries 429 and connection resets, and gives up with RegistryUnavailable naming the registry', async () => {
    let k = 0;
    proxy.fault = (req) => {
      if (!req.url?.includes('/manifests/')) return 'pass';
      k++;
      return k === 1 ? 'reset' : k === 2 ? { status: 429 } : 'pass';
    };
    assert.equal((await registry.repository('faults/app').resolve('v1')).digest, img.md.digest);
    assert.equal(k, 3);

    proxy.fault = () => ({
      status: 503,
      body: '{"errors":[{"code":"UNAVAILABLE","message":"maintenance window"}]}',
    });
    await assert.rejects(registry.repository('faults/app').getManifest('v1'), (err: unknown) => {
      assert.ok(err instanceof RegistryUnavailableError);
      assert.equal(err.status, 503);
      assert.equal(err.registryMessage, 'maintenance window');
      assert.ok(err.message.includes(proxy.host) && err.message.includes('faults/app:v1'));
      return true;
    });
    assert.equal(proxy.log.length, 4 + 3, 'four attempts for the second call');
  });

  it('does not retry a streamed upload body, but resumes a chunked upload after a dropped PATCH', async () => {
    const repo = registry.repository('faults/chunked', { chunkSize: 64 * 1024 });
    const data = bytes('resume', 200_000);
    const d = desc(data, MediaType.ociLayer);
    let patches = 0;
    proxy.fault = (req) => (req.method === 'PATCH' && ++patches === 2 ? 'reset' : 'pass');
    await repo.push(d, Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]));
    const methods = proxy.log.map((l) => `${l.method}${l.fault === 'reset' ? '!' : ''}`);
    // 4 chunks: the second PATCH is dropped, a GET asks the offset, the chunk is sent again
    assert.deepEqual(methods, ['POST', 'PATCH', 'PATCH!', 'GET', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
    assert.ok((await fetchAll(repo, d, { limit: 1 << 20 })).equals(data));

    // a monolithic PUT of a stream cannot be replayed: one attempt, a HEAD (did it land anyway?),
    // a typed error, session cancelled
    proxy.log.length = 0;
    const mono = registry.repository('faults/mono');
    const m = bytes('mono-fault', 1000);
    proxy.fault = (req) => (req.method === 'PUT' ? { status: 503 } : 'pass');
    await assert.rejects(
      mono.push(desc(m, MediaType.ociLayer), Readable.from([m])),
      RegistryUnavailableError,
    );
    assert.deepEqual(
      proxy.log.map((l) => l.method),
      ['POST', 'PUT', 'HEAD', 'DELETE'],
    );
    proxy.fault = () => 'pass';
    assert.equal(await mono.exists(desc(m, MediaType.ociLayer)), false);
  });

  it('a closing PUT that committed but lost its answer: a HEAD finds the blob, no 404 from a PUT sent again; one that never arrived is sent again (streamed, chunked)', async () => {
    for (const mode of ['streamed', 'chunked'] as const) {
      proxy.log.length = 0;
      const repo = registry.repository(`faults/lost-${mode}`, { mode, chunkSize: 64 * 1024 });
      const data = bytes(`lost-${mode}`, 150_000);
      const d = desc(data, MediaType.ociLayer);
      let lost = 0;
      proxy.fault = (req) => {
        if (req.method !== 'PUT' || !req.url?.includes('digest=') || lost++ > 0) return 'pass';
        // forwarded: the registry commits the blob; then the connection drops before the answer
        return (res) => {
          const [h, p] = reg.host.split(':');
          const up = httpRequest(
            { host: h, port: Number(p), method: req.method, path: req.url, headers: req.headers },
            (ur) => {
              ur.resume();
              ur.on('end', () => res.socket?.destroy());
            },
          );
          up.on('error', () => res.destroy());
          req.pipe(up);
        };
      };
      await repo.push(d, Readable.from([data]));
      const methods = proxy.log.map((l) => l.method);
      assert.equal(
        methods.filter((m) => m === 'PUT').length,
        1,
        `${mode}: the PUT is not sent again: ${methods}`,
      );
      assert.equal(methods.at(-1), 'HEAD', `${mode}: a HEAD decides: ${methods}`);
      assert.ok(!methods.includes('DELETE'), `${mode}: nothing cancelled: ${methods}`);
      proxy.fault = () => 'pass';
      assert.ok((await fetchAll(repo, d, { limit: 1 << 20 })).equals(data));

      // dropped before it reached the registry: the HEAD misses, the empty PUT is sent again
      proxy.log.length = 0;
      const unsent = bytes(`unsent-${mode}`, 150_000);
      const u = desc(unsent, MediaType.ociLayer);
      let puts = 0;
      proxy.fault = (req) => (req.method === 'PUT' && ++puts === 1 ? 'reset' : 'pass');
      await repo.push(u, Readable.from([unsent]));
      const again = proxy.log.map((l) => `${l.method}${l.fault === 'reset' ? '!' : ''}`);
      assert.deepEqual(again.slice(-3), ['PUT!', 'HEAD', 'PUT'], `${mode}: ${again}`);
      assert.ok(!again.includes('DELETE'), `${mode}: nothing cancelled: ${again}`);
      proxy.fault = () => 'pass';
      assert.ok((await fetchAll(repo, u, { limit: 1 << 20 })).equals(unsent));
    }
  });

  it('serves paginated tag lists through Link headers', async () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    proxy.fault = (req) => {
      if (!req.url?.includes('/tags/list')) return 'pass';
      const u = new URL(req.url, 'http://x');
      const n = Number(u.searchParams.get('n') ?? 100);
      const last = u.searchParams.get('last');
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (start + n < all.length) {
        headers.link = `</v2/faults/app/tags/list?last=${page[page.length - 1]}&n=${n}>; rel="next"`;
      }
      return { status: 200, headers, body: JSON.stringify({ name: 'faults/app', tags: page }) };
    };
    const got: string[] = [];
    for await (const t of registry.repository('faults/app').tags({ pageSize: 2 })) got.push(t);
    assert.deepEqual(got, all);
    assert.deepEqual(
      proxy.log.map((l) => l.url),
      [
        '/v2/faults/app/tags/list?n=2',
        '/v2/faults/app/tags/list?last=b&n=2',
        '/v2/faults/app/tags/list?last=d&n=2',
      ],
    );
  });

  it('times out on a server that never answers (headers) or stalls mid-body', async () => {
    const stalled = new Registry(proxy.host, {
      plainHttp: true,
      keychain: noKeychain,
      headersTimeoutMs: 500,
      bodyTimeoutMs: 500,
      retry: { maxAttempts: 2, baseDelayMs: 10 },
    });
    try {
      proxy.fault = () => () => {
        /* never answer */
      };
      await assert.rejects(stalled.repository('faults/app').resolve('v1'), RegistryTimeoutError);
      assert.equal(proxy.log.length, 2, 'one retry');

      const data = bytes('stall', 10_000);
      proxy.fault = () => (res: ServerResponse) => {
        res.writeHead(200, { 'content-length': String(data.length) });
        res.write(data.subarray(0, 1000)); // … and then nothing
      };
      const d = desc(data, MediaType.ociLayer);
      proxy.log.length = 0;
      await assert.rejects(fetchAll(stalled.repository('faults/app'), d), RegistryTimeoutError);
      assert.equal(
        proxy.log.length,
        1,
        'the stall is detected on the one GET (a started body is not fetched again here)',
      );
    } finally {
      await stalled.close();
    }
  });

  it('aborts an upload the server stops reading instead of hanging', async () => {
    const stalled = new Registry(proxy.host, {
      plainHttp: true,
      keychain: noKeychain,
      uploadIdleTimeoutMs: 500,
      headersTimeoutMs: 30_000,
      retry: { maxAttempts: 1 },
    });
    try {
      proxy.fault = (req) =>
        req.method === 'PUT'
          ? () => {
              req.pause(); // never read the body, never answer
            }
          : 'pass';
      const size = 64 * 1024 * 1024;
      let produced = 0;
      const endless = new Readable({
        read() {
          if (produced >= size) this.push(null);
          else {
            produced += 1 << 20;
            this.push(Buffer.alloc(1 << 20, 7));
          }
        },
      });
      await assert.rejects(
        stalled
          .repository('faults/stall', { mode: 'monolithic' })
          .push({ mediaType: MediaType.ociLayer, digest: digestOf('x'), size }, endless),
        RegistryTimeoutError,
      );
      assert.ok(produced < size, 'stopped reading the source');
      assert.ok(
        proxy.log.some((l) => l.method === 'DELETE'),
        'the upload session was cancelled',
      );
    } finally {
      await stalled.close();
    }
  });

  it('a blob GET redirected to another host (blob storage): no Authorization there, the bytes still verified', async () => {
    // The proxy stands for a registry that keeps blobs in object storage: it wants basic
    // credentials and answers a blob GET with 307 to a storage host on another port (another
    // origin), which records what it was sent and serves what the test put there.
    const user = 'lading';
    const pass = 'not-for-storage';
    const basic = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    const data = bytes('redirected', 300_000);
    const d = desc(data, MediaType.ociLayer);
    let served: Buffer = data;
    const storageSeen: Array<{ url: string; authorization: string | undefined }> = [];
    const storageSockets = new Set<Socket>();
    const storage = createServer((req, res) => {
      storageSeen.push({ url: req.url!, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-length': String(served.length) });
      res.end(served);
    });
    storage.on('connection', (sock) => {
      storageSockets.add(sock);
      sock.on('close', () => storageSockets.delete(sock));
    });
    const storageHost = await listen(storage);
    const authorized: string[] = [];
    proxy.fault = (req): Fault => {
      if (req.headers.authorization !== basic) {
        return { status: 401, headers: { 'www-authenticate': 'Basic realm="blobs"' }, body: '' };
      }
      authorized.push(`${req.method} ${req.url}`);
      if (req.method === 'GET' && req.url === `/v2/faults/redirect/blobs/${d.digest}`) {
        return {
          status: 307,
          headers: { location: `http://${storageHost}/bucket/${d.digest.slice(7)}?X-Amz-Signature=abc` },
        };
      }
      return 'pass';
    };
    const authed = new Registry(proxy.host, {
      plainHttp: true,
      keychain: noKeychain,
      credentials: { username: user, password: pass },
      retry: { maxAttempts: 1 },
    });
    const readAll = async () => {
      const chunks: Buffer[] = [];
      for await (const c of await fetchVerified(authed.repository('faults/redirect'), d))
        chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    try {
      assert.ok((await readAll()).equals(data));
      assert.ok(
        authorized.includes(`GET /v2/faults/redirect/blobs/${d.digest}`),
        'the registry got the credentials',
      );
      assert.deepEqual(storageSeen, [
        { url: `/bucket/${d.digest.slice(7)}?X-Amz-Signature=abc`, authorization: undefined },
      ]);
      // Storage serving other bytes of the same size: the digest check still applies after a redirect.
      served = Buffer.from(data);
      served[1000] = (served[1000] ?? 0) ^ 0xff;
      await assert.rejects(readAll(), DigestMismatchError);
      assert.equal(storageSeen.length, 2);
      assert.equal(storageSeen[1]!.authorization, undefined);
    } finally {
      await authed.close();
      await closeServer(storage, storageSockets);
    }
  });

  it('retry policy: Retry-After as seconds or HTTP date, jittered backoff within bounds', () => {
    assert.equal(parseRetryAfter('3'), 3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('soon'), undefined);
    const p = new RetryPolicy({
      baseDelayMs: 100,
      maxDelayMs: 1000,
      maxRetryAfterMs: 5000,
      random: () => 0.999,
    });
    assert.ok(p.delayMs(1)! <= 100 && p.delayMs(1)! >= 50);
    assert.ok(p.delayMs(10)! <= 1000);
    assert.equal(p.delayMs(1, '2'), 2000);
    assert.equal(p.delayMs(1, '60'), undefined, 'a Retry-After beyond the cap fails instead of waiting');
    assert.ok(p.retryableStatus(503) && p.retryableStatus(429) && !p.retryableStatus(404));
    assert.ok(p.retryableError(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
    assert.ok(!p.retryableError(new Error('x')));
  });
});
