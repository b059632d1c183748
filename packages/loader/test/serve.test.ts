import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleTarget, generateKeyPair } from '@lading/core';
import { needs, tmpDir } from '@lading/testkit';
import {
  acceptedTypes,
  type BundleRegistry,
  parseRange,
  parseServeAddress,
  servedName,
  startBundleRegistry,
} from '../src/lib/serve/index.ts';
import {
  buildTestBundle,
  CLI,
  cliBuilt,
  hasSkopeo,
  run,
  runAsync,
  type TestBundle,
} from './serve-fixtures.ts';

interface Json {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
  repositories?: string[];
  name?: string;
  tags?: string[];
}
const j = async (r: Response): Promise<Json> => (await r.json()) as Json;

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Where serve offers a ref of index.json: source host dropped. */
function served(ref: string): string {
  return ref.startsWith('docker.io/') ? ref.slice('docker.io/'.length) : ref;
}

describe('serve: pure helpers', () => {
  it('parses addresses', () => {
    assert.deepEqual(parseServeAddress('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(parseServeAddress('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseServeAddress(':8080'), { host: '0.0.0.0', port: 8080 });
    for (const bad of ['127.0.0.1', 'x:99999', 'http://a:1']) {
      assert.throws(
        () => parseServeAddress(bad),
        (e: unknown) => (e as { exitCode?: number }).exitCode === 2,
        bad,
      );
    }
  });
  it('names: host dropped; chart versions that are not tags become Helm OCI tags', () => {
    assert.deepEqual(servedName('docker.io/library/nginx:1.27.3'), {
      repository: 'library/nginx',
      tag: '1.27.3',
      origin: 'docker.io/library/nginx',
    });
    assert.deepEqual(servedName('charts/webapp:1.0.0+build.1'), {
      repository: 'charts/webapp',
      tag: '1.0.0_build.1',
      origin: 'charts/webapp',
    });
    const pinned = servedName(`ghcr.io/acme/api@sha256:${'a'.repeat(64)}`);
    assert.equal(pinned.repository, 'acme/api');
    assert.equal(pinned.tag, undefined);
  });
  it('parses Range headers', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 10 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 100 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 100 });
    assert.deepEqual(parseRange('bytes=95-200', 100), { start: 95, end: 100 });
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=5-2', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange(undefined, 100), undefined);
  });
  it('reads Accept headers', () => {
    assert.equal(acceptedTypes(undefined), undefined);
    assert.equal(acceptedTypes('*/*'), undefined);
    assert.deepEqual(
      [...(acceptedTypes('application/vnd.oci.image.manifest.v1+json; q=0.5, application/json') ?? [])],
      ['application/vnd.oci.image.manifest.v1+json', 'application/json'],
    );
  });
});

describe('serve: a read-only registry straight from the bundle', function () {
  this.timeout(300_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;
  let target: BundleTarget;
  let reg: BundleRegistry;
  let host: string;

  before(async function () {
    needs(this, hasSkopeo(), 'skopeo');
    dir = await tmpDir('lading-serve-');
    tb = await buildTestBundle(dir.path, {
      chart: true,
      // One image under a full docker.io source path, to check the host is dropped.
      renameImages: { 'demo/base-b:1': 'docker.io/library/base-b:1' },
    });
    target = await BundleTarget.open(tb.path);
    reg = await startBundleRegistry(target, { host: '127.0.0.1', port: 0 });
    host = reg.url.replace('http://', '');
  });
  after(async () => {
    await reg?.close();
    await target?.close();
    await dir?.cleanup();
  });

  it('names: images under their source path without the host, charts under charts/', () => {
    assert.deepEqual(reg.catalog.names(), [
      'charts/webapp',
      'demo/app',
      'demo/base-a',
      'demo/big',
      'demo/legacy',
      'demo/multi',
      'library/base-b',
    ]);
  });

  it('skopeo inspect --raw and copy --all give every image and the chart with identical digests', async () => {
    assert.equal(tb.refs.length, 7);
    await mkdir(join(dir.path, 'copies'), { recursive: true });
    for (const r of tb.refs) {
      const src = `docker://${host}/${served(r.ref)}`;
      const raw = await runAsync('skopeo', [
        '--insecure-policy',
        'inspect',
        '--raw',
        '--tls-verify=false',
        src,
      ]);
      assert.equal(raw.status, 0, `${r.ref}: ${raw.stderr}`);
      assert.equal(sha256(raw.stdout), r.digest, r.ref);
      const out = join(dir.path, 'copies', served(r.ref).replace(/[/:]/g, '_'));
      const copy = await runAsync('skopeo', [
        '--insecure-policy',
        'copy',
        '--all',
        '--preserve-digests',
        '--src-tls-verify=false',
        src,
        // OCI layouts hold OCI manifests only; the Docker-typed image goes to a dir: copy.
        r.mediaType.startsWith('application/vnd.docker.') ? `dir:${out}` : `oci:${out}:x`,
      ]);
      assert.equal(copy.status, 0, `${r.ref}: ${copy.stderr}`);
      if (r.mediaType.startsWith('application/vnd.docker.')) {
        assert.equal(sha256(await readFile(join(out, 'manifest.json'))), r.digest, r.ref);
      } else {
        const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
        assert.equal(idx.manifests[0].digest, r.digest, r.ref);
      }
    }
  });

  it('skopeo list-tags and the catalog', async () => {
    const tags = await runAsync('skopeo', ['list-tags', '--tls-verify=false', `docker://${host}/demo/multi`]);
    assert.equal(tags.status, 0, tags.stderr);
    assert.deepEqual(JSON.parse(tags.stdout).Tags, ['3.0']);
    const chart = await runAsync('skopeo', [
      'list-tags',
      '--tls-verify=false',
      `docker://${host}/charts/webapp`,
    ]);
    assert.deepEqual(JSON.parse(chart.stdout).Tags, ['1.4.2']);
  });

  it('GET /v2/ says it is a registry; catalog and tags paginate with n/last and Link', async () => {
    const v2 = await fetch(`${reg.url}/v2/`);
    assert.equal(v2.status, 200);
    assert.equal(v2.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const c1 = await fetch(`${reg.url}/v2/_catalog?n=3`);
    assert.deepEqual((await j(c1)).repositories, ['charts/webapp', 'demo/app', 'demo/base-a']);
    assert.equal(c1.headers.get('link'), '</v2/_catalog?n=3&last=demo%2Fbase-a>; rel="next"');
    const c2 = await fetch(`${reg.url}/v2/_catalog?n=3&last=demo%2Fbase-a`);
    assert.deepEqual((await j(c2)).repositories, ['demo/big', 'demo/legacy', 'demo/multi']);
    const c3 = await fetch(`${reg.url}/v2/_catalog?last=demo%2Fmulti`);
    assert.deepEqual((await j(c3)).repositories, ['library/base-b']);
    assert.equal(c3.headers.get('link'), null);
    const t = await fetch(`${reg.url}/v2/demo/app/tags/list?n=0`);
    assert.deepEqual(await j(t), { name: 'demo/app', tags: [] });
  });

  it('manifests: Content-Type, Docker-Content-Digest, Content-Length; HEAD; by digest; Accept', async () => {
    const multi = tb.images.find((i) => i.ref === 'demo/multi:3.0')!;
    const head = await fetch(`${reg.url}/v2/demo/multi/manifests/3.0`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
    assert.equal(head.headers.get('docker-content-digest'), multi.digest);
    assert.equal(head.headers.get('content-length'), String(multi.size));
    // A child manifest by digest, in its repository.
    const child = multi.manifests![1]!;
    const byDigest = await fetch(`${reg.url}/v2/demo/multi/manifests/${child.digest}`);
    assert.equal(byDigest.status, 200);
    assert.equal(sha256(Buffer.from(await byDigest.arrayBuffer())), child.digest);
    // A client that takes no index gets the linux/amd64 image (as Distribution does).
    const amd = await fetch(`${reg.url}/v2/demo/multi/manifests/3.0`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(amd.status, 200);
    assert.equal(amd.headers.get('docker-content-digest'), multi.manifests![0]!.digest);
    // An OCI manifest to a client that only takes Docker types: 404 MANIFEST_UNKNOWN.
    const no = await fetch(`${reg.url}/v2/demo/app/manifests/1.0`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.equal(no.status, 404);
    assert.equal((await j(no)).errors[0]?.code, 'MANIFEST_UNKNOWN');
  });

  it('404 bodies per the spec: unknown tag, unknown name, blob of another repository', async () => {
    const tag = await fetch(`${reg.url}/v2/demo/app/manifests/9.9`);
    assert.equal(tag.status, 404);
    assert.match(tag.headers.get('content-type') ?? '', /^application\/json/);
    const body = await j(tag);
    assert.equal(body.errors[0]?.code, 'MANIFEST_UNKNOWN');
    assert.deepEqual(body.errors[0]?.detail, { name: 'demo/app', tag: '9.9' });
    const name = await fetch(`${reg.url}/v2/nope/nope/manifests/1`);
    assert.equal(name.status, 404);
    assert.equal((await j(name)).errors[0]?.code, 'NAME_UNKNOWN');
    // The big layer exists in the bundle but demo/app does not reference it.
    const big = tb.images.find((i) => i.ref === 'demo/big:1.0')!;
    const layer = big.blobs[big.blobs.length - 1]!;
    const ok = await fetch(`${reg.url}/v2/demo/big/blobs/${layer}`, { method: 'HEAD' });
    assert.equal(ok.status, 200);
    const other = await fetch(`${reg.url}/v2/demo/app/blobs/${layer}`);
    assert.equal(other.status, 404);
    assert.equal((await j(other)).errors[0]?.code, 'BLOB_UNKNOWN');
    const unknownDigest = await fetch(`${reg.url}/v2/demo/app/manifests/sha256:${'0'.repeat(64)}`);
    assert.equal(unknownDigest.status, 404);
  });

  it('blobs: Range with curl (206, Content-Range), suffix ranges, 416', async () => {
    const big = tb.images.find((i) => i.ref === 'demo/big:1.0')!;
    const layer = big.blobs[big.blobs.length - 1]!;
    const whole = Buffer.from(await (await fetch(`${reg.url}/v2/demo/big/blobs/${layer}`)).arrayBuffer());
    assert.equal(sha256(whole), layer);
    const out = join(dir.path, 'range.bin');
    const r = await runAsync('curl', [
      '-sS',
      '-D',
      '-',
      '-o',
      out,
      '-H',
      'Range: bytes=1000-1999',
      `${reg.url}/v2/demo/big/blobs/${layer}`,
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 206/);
    assert.match(r.stdout, new RegExp(`content-range: bytes 1000-1999/${whole.length}`, 'i'));
    assert.match(r.stdout, /content-length: 1000\r?\n/i);
    assert.deepEqual(await readFile(out), whole.subarray(1000, 2000));
    const suffix = await fetch(`${reg.url}/v2/demo/big/blobs/${layer}`, { headers: { Range: 'bytes=-100' } });
    assert.equal(suffix.status, 206);
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), whole.subarray(whole.length - 100));
    const bad = await runAsync('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      `Range: bytes=${whole.length}-`,
      `${reg.url}/v2/demo/big/blobs/${layer}`,
    ]);
    assert.equal(bad.stdout, '416');
  });

  it('serves an extracted bundle folder the same way', async () => {
    const x = join(dir.path, 'extracted');
    await mkdir(x);
    assert.equal((await runAsync('tar', ['-xf', tb.path, '-C', x])).status, 0);
    const t2 = await BundleTarget.open(x);
    const r2 = await startBundleRegistry(t2, { host: '127.0.0.1', port: 0 });
    try {
      const multi = tb.images.find((i) => i.ref === 'demo/multi:3.0')!;
      const raw = await runAsync('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${r2.url.replace('http://', '')}/demo/multi:3.0`,
      ]);
      assert.equal(raw.status, 0, raw.stderr);
      assert.equal(sha256(raw.stdout), multi.digest);
    } finally {
      await r2.close();
      await t2.close();
    }
  });

  it('anything that writes gets 405 UNSUPPORTED (read-only)', async () => {
    const put = await runAsync('curl', [
      '-sS',
      '-X',
      'PUT',
      '-w',
      '\n%{http_code}',
      '--data-binary',
      '{}',
      `${reg.url}/v2/demo/app/manifests/evil`,
    ]);
    const code = put.stdout.slice(put.stdout.lastIndexOf('\n') + 1);
    assert.equal(code, '405');
    const err = JSON.parse(put.stdout.slice(0, put.stdout.lastIndexOf('\n'))).errors[0];
    assert.equal(err.code, 'UNSUPPORTED');
    assert.match(err.message, /read-only/);
    for (const [method, path] of [
      ['POST', '/v2/demo/app/blobs/uploads/'],
      ['DELETE', `/v2/demo/app/manifests/${tb.images[0]!.digest}`],
      ['PATCH', '/v2/demo/app/blobs/uploads/x'],
    ] as const) {
      const res = await fetch(`${reg.url}${path}`, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
    }
    // Still serving the original afterwards.
    const m = await fetch(`${reg.url}/v2/demo/app/manifests/evil`);
    assert.equal(m.status, 404);
  });
});

describe('serve: the CLI', function () {
  this.timeout(300_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;

  before(async function () {
    needs(this, hasSkopeo(), 'skopeo');
    needs(this, await cliBuilt(), 'the built lading-load (pnpm exec turbo run build)');
    dir = await tmpDir('lading-serve-cli-');
    tb = await buildTestBundle(dir.path);
  });
  after(async () => dir?.cleanup());

  function start(args: string[]): {
    child: ChildProcess;
    ready: Promise<string>;
    done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  } {
    const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let resolveReady: (s: string) => void;
    const ready = new Promise<string>((r) => {
      resolveReady = r;
    });
    const check = () => {
      const m = /at (http:\/\/\S+)/.exec(stdout + stderr);
      if (m) resolveReady(m[1]!);
    };
    child.stdout!.on('data', (c) => {
      stdout += c;
      check();
    });
    child.stderr!.on('data', (c) => {
      stderr += c;
      check();
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
      child.on('exit', (code) => r({ code, stdout, stderr })),
    );
    return { child, ready, done };
  }

  it('verifies, prints the address and images, serves skopeo, stops cleanly on SIGTERM', async () => {
    // Port 0: the server binds a free port and prints the address it got.
    const s = start([tb.path, '--key', tb.publicKey, '--address', '127.0.0.1:0']);
    const url = await Promise.race([s.ready, s.done.then((d) => Promise.reject(new Error(d.stderr)))]);
    const port = Number(/^http:\/\/127\.0\.0\.1:(\d+)$/.exec(url)?.[1]);
    assert.ok(port > 0, url);
    const app = tb.images.find((i) => i.ref === 'demo/app:1.0')!;
    const raw = run('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://127.0.0.1:${port}/demo/app:1.0`,
    ]);
    assert.equal(sha256(raw.stdout), app.digest);
    s.child.kill('SIGTERM');
    const d = await s.done;
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, new RegExp(`127\\.0\\.0\\.1:${port}/demo/app:1\\.0 +${app.digest}`));
    assert.match(d.stdout, /stopped: \d+ request/);
  });

  it('--json: readiness on stderr, the result on stdout after SIGINT', async () => {
    const s = start([tb.path, '--skip-verify', '--address', '127.0.0.1:0', '--json']);
    const url = await s.ready;
    assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    const res = await fetch(`${url}/v2/demo/legacy/manifests/2.0`);
    assert.equal(res.status, 200);
    s.child.kill('SIGINT');
    const d = await s.done;
    assert.equal(d.code, 0, d.stderr);
    const json = JSON.parse(d.stdout);
    assert.equal(json.verified, false);
    assert.equal(json.manifests, 1);
    assert.ok(
      json.repositories.some(
        (r: { name: string; tags: string[] }) => r.name === 'demo/legacy' && r.tags[0] === '2.0',
      ),
    );
  });

  it('refuses without --key or --skip-verify (exit 2) and with the wrong key (exit 3)', async () => {
    const none = run(process.execPath, [CLI, 'serve', tb.path, '--address', '127.0.0.1:0']);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /--key/);
    const other = join(dir.path, 'other.pub');
    await writeFile(other, generateKeyPair().publicKeyPem);
    const wrong = run(process.execPath, [CLI, 'serve', tb.path, '--key', other, '--address', '127.0.0.1:0']);
    assert.equal(wrong.status, 3, wrong.stderr);
  });
});
