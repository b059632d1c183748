import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { type RegistryMode, type RegistryServer, registryRequests, startRegistry } from '@lading/testkit';
import { bytesStream, fetchAll, fetchVerified } from '../src/content/index.ts';
import { DigestMismatchError, digestOf, SizeMismatchError } from '../src/digest/index.ts';
import { AbortedError, NotFoundError, RemoteError } from '../src/errors/index.ts';
import { type Descriptor, encodeJson, MediaType } from '../src/model/index.ts';
import {
  AuthError,
  BlobUnknownError,
  type Credential,
  isLoopbackHost,
  type Keychain,
  ManifestUnknownError,
  Registry,
  type RegistryOptions,
  RepositoryUnknownError,
  TlsError,
} from '../src/registry/index.ts';

const run = promisify(execFile);
const noKeychain: Keychain = { get: async () => undefined };

/** Deterministic bytes: a SHA-256 counter stream. */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const h = createHash('sha256').update(`${seed}/${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

function desc(data: Buffer, mediaType: string, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length, ...extra };
}

/** Chunks of `data` delivered `chunk` bytes at a time (a stream, not one buffer). */
function chunked(data: Buffer, chunk = 16 * 1024): Readable {
  let off = 0;
  return new Readable({
    read() {
      if (off >= data.length) this.push(null);
      else {
        this.push(data.subarray(off, off + chunk));
        off += chunk;
      }
    },
  });
}

interface Img {
  manifest: Descriptor;
  bytes: Buffer;
  blobs: Array<[Descriptor, Buffer]>;
}

function image(seed: string, docker: boolean, arch = 'amd64'): Img {
  const cfg = encodeJson({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed });
  const cfgDesc = desc(cfg, docker ? MediaType.dockerConfig : MediaType.ociConfig);
  const layer = bytes(`${seed}-layer`, 3000);
  const layerDesc = desc(layer, docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip);
  const mt = docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const m = encodeJson({ schemaVersion: 2, mediaType: mt, config: cfgDesc, layers: [layerDesc] });
  return {
    manifest: desc(m, mt),
    bytes: m,
    blobs: [
      [cfgDesc, cfg],
      [layerDesc, layer],
    ],
  };
}

function index(children: Img[], docker: boolean): { desc: Descriptor; bytes: Buffer } {
  const mt = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const archs = ['amd64', 'arm64', 'arm'];
  const b = encodeJson({
    schemaVersion: 2,
    mediaType: mt,
    manifests: children.map((c, i) => ({ ...c.manifest, platform: { os: 'linux', architecture: archs[i] } })),
  });
  return { desc: desc(b, mt), bytes: b };
}

async function pushImage(repo: ReturnType<Registry['repository']>, img: Img, tag?: string): Promise<void> {
  for (const [d, b] of img.blobs) await repo.push(d, bytesStream(b));
  if (tag) await repo.pushReference(img.manifest, bytesStream(img.bytes), tag);
  else await repo.push(img.manifest, bytesStream(img.bytes));
}

function optionsFor(reg: RegistryServer, extra: RegistryOptions = {}): RegistryOptions {
  const creds: Credential | undefined = reg.username
    ? { username: reg.username, password: reg.password! }
    : undefined;
  return {
    plainHttp: reg.mode === 'http',
    ...(reg.caFile ? { caFile: reg.caFile } : {}),
    keychain: noKeychain,
    ...(creds ? { credentials: creds } : {}),
    retry: { maxAttempts: 2, baseDelayMs: 10 },
    ...extra,
  };
}

/** skopeo as the independent client: the digest of what it reads at ref. */
async function skopeoRawDigest(reg: RegistryServer, ref: string): Promise<string> {
  const args = ['inspect', '--raw', '--retry-times', '0'];
  if (reg.mode === 'http') args.push('--tls-verify=false');
  else args.push('--cert-dir', reg.certDir!);
  // Only the credentials given here: no auth.json or Docker config of the developer's.
  if (reg.username) args.push('--creds', `${reg.username}:${reg.password}`);
  else args.push('--no-creds');
  args.push(`docker://${reg.host}/${ref}`);
  const { stdout } = await run('skopeo', args, {
    encoding: 'buffer',
    maxBuffer: 8 * 1024 * 1024,
  });
  return digestOf(stdout);
}

const MODES: RegistryMode[] = ['http', 'tls', 'basic', 'token'];

for (const mode of MODES) {
  describe(`registry client against Distribution (${mode})`, function () {
    this.timeout(120_000);
    let reg: RegistryServer;
    let registry: Registry;

    before(async () => {
      reg = await startRegistry({ mode, ...(mode === 'token' ? { readOnlyUser: true } : {}) });
      registry = new Registry(reg.host, optionsFor(reg));
    });
    after(async () => {
      await registry?.close();
      await reg?.stop();
    });

    it('pings /v2/ and reports the auth scheme', async () => {
      const p = await registry.ping();
      assert.equal(p.apiVersion, 'registry/2.0');
      assert.equal(p.auth, { http: 'none', tls: 'none', basic: 'basic', token: 'bearer' }[mode]);
      assert.ok(p.url.startsWith(mode === 'http' ? 'http://' : 'https://'));
    });

    it('pushes a blob monolithically, HEADs it, fetches and verifies it', async () => {
      const repo = registry.repository('mono/app');
      const data = bytes('mono', 200_000);
      const d = desc(data, MediaType.ociLayer);
      assert.equal(await repo.exists(d), false);
      await repo.push(d, chunked(data));
      assert.equal(await repo.exists(d), true);
      const got = await fetchAll(repo, d, { limit: 1 << 20 });
      assert.ok(got.equals(data));
    });

    it('pushes a blob in chunks (PATCH + Content-Range) and reads it back', async () => {
      const repo = registry.repository('chunked/app', { chunkSize: 64 * 1024 });
      const data = bytes('chunked', 300_001); // 4 full chunks and a tail
      const d = desc(data, MediaType.ociLayer);
      await repo.push(d, chunked(data, 10_000));
      assert.equal(await repo.exists(d), true);
      const hash = createHash('sha256');
      for await (const c of await fetchVerified(repo, d)) hash.update(c);
      assert.equal(`sha256:${hash.digest('hex')}`, d.digest);
    });

    it('pushes a blob in one streamed PATCH (no Content-Length) and a closing PUT', async () => {
      const repo = registry.repository('streamed/app', { mode: 'streamed' });
      const data = bytes('streamed', 300_001);
      const d = desc(data, MediaType.ociLayer);
      await repo.push(d, chunked(data, 10_000));
      assert.equal(await repo.exists(d), true);
      assert.ok((await fetchAll(repo, d, { limit: 1 << 20 })).equals(data));
    });

    it('fetches a byte range of a blob', async () => {
      const repo = registry.repository('mono/app');
      const data = bytes('mono', 200_000);
      const d = desc(data, MediaType.ociLayer);
      const chunks: Buffer[] = [];
      for await (const c of await repo.fetchRange(d, 1000, 1999)) chunks.push(c);
      assert.ok(Buffer.concat(chunks).equals(data.subarray(1000, 2000)));
    });

    for (const docker of [false, true]) {
      const kind = docker ? 'Docker' : 'OCI';
      it(`pushes ${kind} manifests and an index, tags them, resolves by tag and digest`, async () => {
        const repo = registry.repository(`multi/${docker ? 'docker' : 'oci'}`);
        const a = image(`${kind}-a`, docker, 'amd64');
        const b = image(`${kind}-b`, docker, 'arm64');
        await pushImage(repo, a, 'single');
        await pushImage(repo, b);
        const idx = index([a, b], docker);
        await repo.pushReference(idx.desc, bytesStream(idx.bytes), 'multi');

        const single = await repo.resolve('single');
        assert.deepEqual(single, a.manifest);
        const multi = await repo.resolve('multi');
        assert.deepEqual(multi, idx.desc);
        assert.deepEqual(await repo.resolve(idx.desc.digest), idx.desc);
        assert.deepEqual(await repo.resolve(b.manifest.digest), b.manifest);

        // tag() re-PUTs the manifest under another tag
        await repo.tag(b.manifest, 'arm');
        assert.deepEqual(await repo.resolve('arm'), b.manifest);

        // fetch by descriptor returns the exact bytes
        assert.ok((await fetchAll(repo, idx.desc)).equals(idx.bytes));
        const gm = await repo.getManifest('single');
        assert.ok(gm.bytes.equals(a.bytes));
        assert.equal(await repo.exists(a.manifest), true);

        // the independent client reads the same digests
        assert.equal(await skopeoRawDigest(reg, `${repo.name}:multi`), idx.desc.digest);
        assert.equal(await skopeoRawDigest(reg, `${repo.name}:arm`), b.manifest.digest);
      });
    }

    it('lists tags (and the catalog) across pages', async () => {
      const repo = registry.repository('tags/app');
      const img = image('tags', false);
      await pushImage(repo, img);
      const want = ['1.0', '1.1', '2.0', 'latest', 'x'];
      for (const t of want) await repo.tag(img.manifest, t);
      const got: string[] = [];
      for await (const t of repo.tags({ pageSize: 2 })) got.push(t);
      assert.deepEqual(got.sort(), want);
      const repos: string[] = [];
      for await (const r of registry.catalog({ pageSize: 1 })) repos.push(r);
      assert.ok(repos.includes('tags/app') && repos.includes('mono/app'), repos.join(','));
      assert.equal(new Set(repos).size, repos.length);
    });

    it('mounts a blob across repositories (201) and declines an unknown one (202 → false)', async () => {
      const src = registry.repository('mount/src');
      const dst = registry.repository('mount/dst');
      const data = bytes('mount', 5000);
      const d = desc(data, MediaType.ociLayer);
      await src.push(d, bytesStream(data));
      assert.equal(await dst.exists(d), false);
      assert.equal(await dst.mount(d, 'mount/src'), true);
      assert.equal(await dst.exists(d), true);
      const unknown = desc(bytes('never-pushed', 100), MediaType.ociLayer);
      assert.equal(await dst.mount(unknown, 'mount/src'), false);
      assert.equal(await dst.exists(unknown), false);
    });

    it('throws typed NotFound errors that name the ref', async () => {
      const repo = registry.repository('mono/app');
      await assert.rejects(repo.resolve('no-such-tag'), (err: unknown) => {
        assert.ok(err instanceof ManifestUnknownError && err instanceof NotFoundError);
        assert.equal(err.ref, 'no-such-tag');
        assert.equal(err.registry, reg.host);
        assert.equal(err.repository, 'mono/app');
        assert.match(err.message, /mono\/app:no-such-tag/);
        assert.equal(err.exitCode, 4);
        return true;
      });
      const missing = desc(bytes('missing', 10), MediaType.ociLayer);
      await assert.rejects(repo.fetch(missing), (err: unknown) => {
        assert.ok(err instanceof BlobUnknownError);
        assert.ok(err.message.includes(missing.digest));
        assert.equal(err.registryCode, 'BLOB_UNKNOWN');
        return true;
      });
      const missingManifest = desc(bytes('missing-m', 10), MediaType.ociManifest);
      await assert.rejects(repo.fetch(missingManifest), ManifestUnknownError);
      if (mode !== 'token') {
        // (with token auth, Distribution answers 401 for names nobody may read)
        await assert.rejects(
          (async () => {
            for await (const _ of registry.repository('does/not-exist').tags()) void _;
          })(),
          RepositoryUnknownError,
        );
      }
    });

    for (const how of ['monolithic', 'chunked', 'streamed'] as const) {
      it(`refuses a ${how} blob whose bytes differ from its descriptor and commits nothing`, async () => {
        const repo = registry.repository(`bad/${how}`, { chunkSize: 32 * 1024, mode: how });
        const real = bytes(`real-${how}`, 100_000);
        const claimed = desc(bytes(`claimed-${how}`, 100_000), MediaType.ociLayer); // same size, other digest
        await assert.rejects(repo.push(claimed, chunked(real)), DigestMismatchError);
        assert.equal(await repo.exists(claimed), false);
        assert.equal(await repo.exists(desc(real, MediaType.ociLayer)), false);

        const short = { ...desc(real, MediaType.ociLayer), size: real.length - 1 }; // more bytes than declared
        await assert.rejects(repo.push(short, chunked(real)), SizeMismatchError);
        assert.equal(await repo.exists(desc(real, MediaType.ociLayer)), false);
        if (how !== 'monolithic') {
          // Refused by the client, not left to the registry's digest check: no closing PUT is sent.
          const puts = (await registryRequests(reg)).filter(
            (r) => r.method === 'PUT' && r.uri.includes(`/bad/${how}/blobs/uploads/`),
          );
          assert.deepEqual(puts, []);
        }
      });
    }

    it('refuses a manifest whose bytes differ from its descriptor', async () => {
      const repo = registry.repository('bad/manifest');
      const img = image('bad-manifest', false);
      for (const [d, b] of img.blobs) await repo.push(d, bytesStream(b));
      const other = Buffer.from(img.bytes);
      other[other.length - 2] = 0x20;
      await assert.rejects(repo.pushReference(img.manifest, bytesStream(other), 'bad'), DigestMismatchError);
      await assert.rejects(repo.resolve('bad'), ManifestUnknownError);
    });

    it('fails fetch when the registry serves another size than the descriptor', async () => {
      const repo = registry.repository('mono/app');
      const data = bytes('mono', 200_000);
      const wrong = { ...desc(data, MediaType.ociLayer), size: data.length + 1 };
      await assert.rejects(fetchAll(repo, wrong, { limit: 1 << 20 }), SizeMismatchError);
    });

    for (const how of ['auto', 'streamed'] as const) {
      it(`aborts a push through its AbortSignal (${how})`, async () => {
        const repo = registry.repository(`abort/${how}`, { mode: how });
        const data = bytes(`abort-${how}`, 512 * 1024);
        const d = desc(data, MediaType.ociLayer);
        let sent = 0;
        const ctrl = new AbortController();
        const slow = new Readable({
          read() {
            if (sent >= data.length) return this.push(null);
            // Abort in the middle: once a quarter of the blob has been read from the source.
            if (sent >= data.length / 4) ctrl.abort();
            setTimeout(() => {
              this.push(data.subarray(sent, sent + 8192));
              sent += 8192;
            }, 5);
          },
        });
        await assert.rejects(repo.push(d, slow, { signal: ctrl.signal }), AbortedError);
        assert.ok(sent < data.length, 'the stream was not read to the end');
        assert.equal(await repo.exists(d), false);
        if (how === 'streamed') {
          // The PATCH body was ended, not cut: the registry answered with the session's current
          // URL, so the DELETE that names it is accepted (a stale one gets BLOB_UPLOAD_INVALID).
          const deletes = (await registryRequests(reg)).filter(
            (r) => r.method === 'DELETE' && r.uri.includes(`/abort/${how}/blobs/uploads/`),
          );
          assert.equal(deletes.length, 1, JSON.stringify(deletes));
          assert.ok(deletes[0]!.status < 300, `DELETE answered ${deletes[0]!.status}`);
        }
        const pre = new AbortController();
        pre.abort();
        await assert.rejects(repo.resolve('x', { signal: pre.signal }), AbortedError);
      });
    }

    it('deletes a manifest by digest', async () => {
      const repo = registry.repository('delete/app');
      const img = image('delete', false);
      await pushImage(repo, img, 'gone');
      await repo.deleteManifest(img.manifest);
      assert.equal(await repo.exists(img.manifest), false);
    });

    if (mode !== 'http') {
      it('rejects an untrusted certificate with TlsError, and --insecure skips the check', async () => {
        const untrusted = new Registry(reg.host, { keychain: noKeychain, retry: { maxAttempts: 1 } });
        try {
          await assert.rejects(untrusted.ping(), (err: unknown) => {
            assert.ok(err instanceof TlsError && err instanceof RemoteError);
            assert.match(err.hint ?? '', /--ca-file/);
            assert.match(err.message, new RegExp(reg.host.replace(/\./g, '\\.')));
            return true;
          });
          await assert.rejects(untrusted.repository('mono/app').resolve('x'), TlsError);
        } finally {
          await untrusted.close();
        }
        const insecure = new Registry(reg.host, { ...optionsFor(reg), caFile: undefined, insecure: true });
        try {
          await insecure.ping();
        } finally {
          await insecure.close();
        }
      });
    }

    if (mode === 'http') {
      it('a loopback registry without TLS is reached over plain HTTP (as Docker and crane do)', async () => {
        const r = new Registry(reg.host, { keychain: noKeychain });
        try {
          const p = await r.ping();
          assert.ok(p.url.startsWith('http://'));
        } finally {
          await r.close();
        }
        // Any other host: no fallback; the error says the registry speaks plain HTTP.
        const strict = new Registry(reg.host, {
          keychain: noKeychain,
          plainHttpFallback: false,
          retry: { maxAttempts: 1 },
        });
        try {
          await assert.rejects(strict.ping(), (err: unknown) => {
            assert.ok(err instanceof TlsError, String(err));
            assert.equal(err.speaksPlainHttp, true);
            assert.match(err.hint ?? '', /--plain-http/);
            return true;
          });
        } finally {
          await strict.close();
        }
      });

      it('loopback hosts are localhost, 127.0.0.0/8 and ::1 only', () => {
        for (const h of [
          'localhost',
          'localhost:5000',
          '127.0.0.1:5000',
          '127.1.2.3',
          '[::1]:5000',
          'reg.localhost',
        ])
          assert.equal(isLoopbackHost(h), true, h);
        for (const h of ['10.0.0.5:5000', 'harbor.local', '128.0.0.1', 'localhost.example.com', '[::2]:5000'])
          assert.equal(isLoopbackHost(h), false, h);
      });
    }

    if (mode === 'basic' || mode === 'token') {
      it('wrong password → AuthError with a credentials hint', async () => {
        const bad = new Registry(
          reg.host,
          optionsFor(reg, { credentials: { username: reg.username!, password: 'wrong' } }),
        );
        try {
          await assert.rejects(bad.repository('mono/app').resolve('x'), (err: unknown) => {
            assert.ok(err instanceof AuthError, String(err));
            assert.match(err.hint ?? '', /docker login|--username/);
            assert.equal(err.exitCode, 4);
            assert.ok(err.message.includes(reg.host));
            return true;
          });
          await assert.rejects(bad.ping(), AuthError);
        } finally {
          await bad.close();
        }
      });

      it('no credentials → AuthError', async () => {
        const anon = new Registry(reg.host, optionsFor(reg, { credentials: undefined }));
        try {
          const repo = anon.repository('mono/app');
          const data = bytes('anon', 100);
          await assert.rejects(repo.push(desc(data, MediaType.ociLayer), bytesStream(data)), AuthError);
        } finally {
          await anon.close();
        }
      });
    }

    if (mode === 'token') {
      it('caches one token per scope set and reuses it', async () => {
        const r = new Registry(reg.host, optionsFor(reg));
        try {
          const repo = r.repository('mono/app');
          const d = desc(bytes('mono', 200_000), MediaType.ociLayer);
          const before = reg.tokenRequests!.length;
          for (let i = 0; i < 5; i++) assert.equal(await repo.exists(d), true);
          const pullOnly = reg.tokenRequests!.slice(before);
          assert.equal(pullOnly.length, 1, JSON.stringify(pullOnly));
          assert.deepEqual(pullOnly[0]!.scopes, ['repository:mono/app:pull']);
          assert.equal(pullOnly[0]!.user, reg.username);
          // a push needs another scope: one more token, then cached too
          const data = bytes('cache', 1000);
          await repo.push(desc(data, MediaType.ociLayer), bytesStream(data));
          await repo.push(desc(bytes('cache2', 10), MediaType.ociLayer), bytesStream(bytes('cache2', 10)));
          const after = reg.tokenRequests!.slice(before + 1);
          assert.equal(after.length, 1, JSON.stringify(after));
          assert.deepEqual(after[0]!.scopes, ['repository:mono/app:pull,push']);
        } finally {
          await r.close();
        }
      });

      it('a pull-only user can read but a push is refused with AuthError', async () => {
        const ro = new Registry(
          reg.host,
          optionsFor(reg, {
            credentials: { username: reg.readOnlyUsername!, password: reg.readOnlyPassword! },
          }),
        );
        try {
          const repo = ro.repository('mono/app');
          const d = desc(bytes('mono', 200_000), MediaType.ociLayer);
          assert.equal(await repo.exists(d), true);
          const data = bytes('ro', 100);
          await assert.rejects(repo.push(desc(data, MediaType.ociLayer), bytesStream(data)), AuthError);
        } finally {
          await ro.close();
        }
      });

      it('an identity token goes through the refresh_token grant (POST), never as a password', async () => {
        const r = new Registry(
          reg.host,
          optionsFor(reg, { credentials: { identityToken: reg.identityToken! } }),
        );
        try {
          const repo = r.repository('idtok/app');
          const data = bytes('idtok', 1000);
          const before = reg.tokenRequests!.length;
          await repo.push(desc(data, MediaType.ociLayer), bytesStream(data));
          assert.equal(await repo.exists(desc(data, MediaType.ociLayer)), true);
          const seen = reg.tokenRequests!.slice(before);
          assert.ok(seen.length > 0);
          for (const q of seen) {
            assert.equal(q.method, 'POST');
            assert.equal(q.grant, 'refresh_token');
            assert.equal(q.user, reg.username, 'the token server knew the user by the identity token');
            assert.equal(q.status, 200);
          }
          assert.ok(seen.some((q) => q.granted.includes('repository:idtok/app:pull,push')));
        } finally {
          await r.close();
        }
        const bad = new Registry(
          reg.host,
          optionsFor(reg, { credentials: { identityToken: 'not-the-token' } }),
        );
        try {
          await assert.rejects(bad.repository('idtok/app').resolve('x'), (err: unknown) => {
            assert.ok(err instanceof AuthError);
            assert.match(err.message, /refused the identity token/);
            return true;
          });
        } finally {
          await bad.close();
        }
      });

      it('a registry token is sent as the bearer token as it is: no request to the token server', async () => {
        // A token the token server issued for this scope, fetched here with the user's password.
        const url = new URL(reg.tokenRealm!);
        url.searchParams.set('service', reg.tokenService!);
        url.searchParams.set('scope', 'repository:regtok/app:pull,push');
        const { stdout } = await run('curl', [
          '-fsS',
          '--cacert',
          reg.caFile!,
          '-u',
          `${reg.username}:${reg.password}`,
          url.href,
        ]);
        const token = (JSON.parse(stdout) as { token: string }).token;
        const r = new Registry(reg.host, optionsFor(reg, { credentials: { registryToken: token } }));
        try {
          const repo = r.repository('regtok/app');
          const data = bytes('regtok', 1000);
          const before = reg.tokenRequests!.length;
          await repo.push(desc(data, MediaType.ociLayer), bytesStream(data));
          assert.equal(await repo.exists(desc(data, MediaType.ociLayer)), true);
          assert.equal(reg.tokenRequests!.length, before, 'the token server was not asked');
          // The token's scope is what it is: another repository is refused.
          await assert.rejects(
            r.repository('other/app').push(desc(data, MediaType.ociLayer), bytesStream(data)),
            AuthError,
          );
        } finally {
          await r.close();
        }
      });
    }
  });
}
