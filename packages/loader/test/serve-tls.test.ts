/**
 * `serve --tls-cert/--tls-key [--client-ca]` checked with skopeo, TLS verification on, against a
 * CA the test makes with openssl (testkit); and mirror-config's https entries with the CA (--ca-cert)
 * used by skopeo as a real mirror. The original sources are 127.0.0.2:<closed port>: only the
 * mirror can answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleTarget } from '@lading/core';
import { freePort, issueCert, makeCA, needs, type TestCA, tmpDir } from '@lading/testkit';
import { mirrorConfig, writeMirrorFiles } from '../src/lib/mirror-config/index.ts';
import { parseRegistryTarget } from '../src/lib/registry-target.ts';
import { type BundleRegistry, readServeTls, startBundleRegistry } from '../src/lib/serve/index.ts';
import {
  buildTestBundle,
  CLI,
  cliBuilt,
  hasSkopeo,
  run,
  runAsync,
  type TestBundle,
} from './serve-fixtures.ts';

const sha256 = (b: string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('serve over TLS, checked with skopeo (verification on)', function () {
  this.timeout(300_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;
  let target: BundleTarget;
  let ca: TestCA;
  let server: { certFile: string; keyFile: string };
  let client: { certFile: string; keyFile: string };
  /** A containers cert dir holding only the CA. */
  let caDir: string;
  /** A containers cert dir holding the CA and the client's certificate and key (mTLS). */
  let clientDir: string;
  let deadHost: string;
  const open: BundleRegistry[] = [];

  before(async function () {
    needs(this, hasSkopeo(), 'skopeo');
    dir = await tmpDir('lading-serve-tls-');
    deadHost = `127.0.0.2:${await freePort()}`;
    const rename: Record<string, string> = {};
    for (const r of [
      'demo/app:1.0',
      'demo/legacy:2.0',
      'demo/multi:3.0',
      'demo/base-a:1',
      'demo/base-b:1',
      'demo/big:1.0',
    ]) {
      rename[r] = `${deadHost}/${r}`;
    }
    tb = await buildTestBundle(dir.path, { renameImages: rename, largeLayerBytes: 256 * 1024 });
    target = await BundleTarget.open(tb.path);
    ca = await makeCA(join(dir.path, 'ca'), 'Lading Site CA');
    server = await issueCert(ca, 'loader', { hosts: ['127.0.0.1', 'localhost'], usage: 'server' });
    client = await issueCert(ca, 'node1', { usage: 'client' });
    caDir = join(dir.path, 'certs-ca');
    await mkdir(caDir);
    await copyFile(ca.caFile, join(caDir, 'ca.crt'));
    clientDir = join(dir.path, 'certs-client');
    await mkdir(clientDir);
    await copyFile(ca.caFile, join(clientDir, 'ca.crt'));
    await copyFile(client.certFile, join(clientDir, 'client.cert'));
    await copyFile(client.keyFile, join(clientDir, 'client.key'));
  });
  after(async () => {
    for (const r of open) await r.close();
    await target?.close();
    await dir?.cleanup();
  });

  async function serve(clientCa?: string): Promise<{ reg: BundleRegistry; host: string }> {
    const tls = await readServeTls({ cert: server.certFile, key: server.keyFile, clientCa });
    const reg = await startBundleRegistry(target, { host: '127.0.0.1', port: 0 }, { tls });
    open.push(reg);
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    return { reg, host: reg.url.slice('https://'.length) };
  }
  const app = () => tb.images.find((i) => i.ref === 'demo/app:1.0')!;

  it('skopeo verifies the certificate against the site CA (--cert-dir) and reads every digest', async () => {
    const { host } = await serve();
    for (const img of tb.images) {
      const r = await runAsync('skopeo', [
        'inspect',
        '--raw',
        '--cert-dir',
        caDir,
        `docker://${host}/${img.ref}`,
      ]);
      assert.equal(r.status, 0, `${img.ref}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), img.digest, img.ref);
    }
    const out = join(dir.path, 'copied');
    const c = await runAsync('skopeo', [
      'copy',
      '--src-cert-dir',
      caDir,
      `docker://${host}/demo/app:1.0`,
      `oci:${out}:app`,
    ]);
    assert.equal(c.status, 0, c.stderr);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    assert.equal(index.manifests[0]?.digest, app().digest);
  });

  it('control: without the CA, skopeo refuses the certificate (verification really is on)', async () => {
    const { host } = await serve();
    const empty = join(dir.path, 'certs-empty');
    await mkdir(empty, { recursive: true });
    const r = await runAsync('skopeo', [
      'inspect',
      '--raw',
      '--cert-dir',
      empty,
      `docker://${host}/demo/app:1.0`,
    ]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /certificate|x509/i);
  });

  it('--client-ca: a client without a certificate is refused, one the CA signed is served', async () => {
    const { host } = await serve(ca.caFile);
    const without = await runAsync('skopeo', [
      'inspect',
      '--raw',
      '--cert-dir',
      caDir,
      `docker://${host}/demo/app:1.0`,
    ]);
    assert.notEqual(without.status, 0);
    assert.match(without.stderr, /certificate|tls/i);
    const other = await makeCA(join(dir.path, 'other-ca'), 'Another CA');
    const stranger = await issueCert(other, 'stranger', { usage: 'client' });
    const strangerDir = join(dir.path, 'certs-stranger');
    await mkdir(strangerDir, { recursive: true });
    await copyFile(ca.caFile, join(strangerDir, 'ca.crt'));
    await copyFile(stranger.certFile, join(strangerDir, 'client.cert'));
    await copyFile(stranger.keyFile, join(strangerDir, 'client.key'));
    const wrong = await runAsync('skopeo', [
      'inspect',
      '--raw',
      '--cert-dir',
      strangerDir,
      `docker://${host}/demo/app:1.0`,
    ]);
    assert.notEqual(wrong.status, 0);
    const ok = await runAsync('skopeo', [
      'inspect',
      '--raw',
      '--cert-dir',
      clientDir,
      `docker://${host}/demo/app:1.0`,
    ]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(sha256(ok.stdout), app().digest);
  });

  it('mirror-config registries-conf --ca-cert: https mirror and certs.d/<host>/ca.crt that skopeo uses as written', async () => {
    const { host } = await serve();
    const caPem = await readFile(ca.caFile, 'utf8');
    const config = mirrorConfig('registries-conf', {
      target: parseRegistryTarget(host),
      images: tb.images.map((i) => `${deadHost}/${i.ref}`),
      caCert: caPem,
      name: 'testkit',
    });
    const out = join(dir.path, 'mirror-rc');
    const written = await writeMirrorFiles(out, config.files);
    const conf = written.find((w) => w.endsWith('.conf'))!;
    assert.doesNotMatch(await readFile(conf, 'utf8'), /insecure/);
    assert.equal(await readFile(join(out, 'certs.d', host, 'ca.crt'), 'utf8'), caPem);
    for (const img of tb.images) {
      const r = await runAsync('skopeo', [
        '--registries-conf',
        conf,
        'inspect',
        '--raw',
        '--cert-dir',
        join(out, 'certs.d', host),
        `docker://${deadHost}/${img.ref}`,
      ]);
      assert.equal(r.status, 0, `${img.ref}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), img.digest, img.ref);
    }
  });

  it('mirror-config containerd and k3s --ca-cert: https entries referencing the CA they ship', () => {
    const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const images = ['docker.io/library/nginx:1.27.3', 'quay.io/acme/api:1.0'];
    const c = mirrorConfig('containerd', {
      target: parseRegistryTarget('loader.site:5443'),
      images,
      caCert: caPem,
      name: 's',
    });
    const toml = c.files.find((f) => f.path === 'certs.d/docker.io/hosts.toml')!.content;
    assert.match(toml, /\[host\."https:\/\/loader\.site:5443"\]/);
    assert.match(toml, /ca = "\/etc\/containerd\/certs\.d\/docker\.io\/ca\.crt"/);
    assert.doesNotMatch(toml, /skip_verify/);
    assert.equal(c.files.find((f) => f.path === 'certs.d/quay.io/ca.crt')?.content, caPem);
    const k = mirrorConfig('k3s', {
      target: parseRegistryTarget('loader.site:5443'),
      images,
      caCert: caPem,
      name: 's',
    });
    const yaml = k.files.find((f) => f.path === 'registries.yaml')!.content;
    assert.match(yaml, /- https:\/\/loader\.site:5443/);
    assert.match(yaml, /ca_file: \/etc\/rancher\/k3s\/registry-ca-loader\.site-5443\.crt/);
    assert.equal(k.files.find((f) => f.path === 'registry-ca-loader.site-5443.crt')?.content, caPem);
  });

  it('mirror-config --client-cert/--client-key: containerd client, k3s cert_file/key_file; registries-conf mTLS with skopeo', async () => {
    const clientCert = { cert: '/etc/pki/node.crt', key: '/etc/pki/node.key' };
    const images = ['docker.io/library/nginx:1.27.3'];
    const c = mirrorConfig('containerd', {
      target: parseRegistryTarget('loader.site:5443'),
      images,
      caFile: '/etc/pki/site-ca.pem',
      clientCert,
      name: 's',
    });
    assert.match(
      c.files[0]!.content,
      /^ {2}client = \[\["\/etc\/pki\/node\.crt", "\/etc\/pki\/node\.key"\]\]$/m,
    );
    const k = mirrorConfig('k3s', {
      target: parseRegistryTarget('loader.site:5443'),
      images,
      clientCert,
      name: 's',
    });
    assert.match(k.files[0]!.content, /cert_file: \/etc\/pki\/node\.crt\n\s+key_file: \/etc\/pki\/node\.key/);
    assert.doesNotMatch(k.files[0]!.content, /insecure_skip_verify/);

    // Real: serve requires a client certificate; the registries.conf mirror with the shipped CA,
    // plus the node's client pair where the instructions say, lets skopeo through.
    const { host } = await serve(ca.caFile);
    const rc = mirrorConfig('registries-conf', {
      target: parseRegistryTarget(host),
      images: tb.images.map((i) => `${deadHost}/${i.ref}`),
      caCert: await readFile(ca.caFile, 'utf8'),
      clientCert: { cert: client.certFile, key: client.keyFile },
      name: 'testkit',
    });
    assert.match(
      rc.instructions,
      new RegExp(`/etc/containers/certs\\.d/${host.replace(/\./g, '\\.')}/client\\.cert`),
    );
    const out = join(dir.path, 'mirror-mtls');
    const written = await writeMirrorFiles(out, rc.files);
    const conf = written.find((w) => w.endsWith('.conf'))!;
    const certDir = join(out, 'certs.d', host);
    const pull = () =>
      runAsync('skopeo', [
        '--registries-conf',
        conf,
        'inspect',
        '--raw',
        '--cert-dir',
        certDir,
        `docker://${deadHost}/demo/app:1.0`,
      ]);
    const refused = await pull();
    assert.notEqual(refused.status, 0, 'without the client pair the mirror refuses');
    await copyFile(client.certFile, join(certDir, 'client.cert'));
    await copyFile(client.keyFile, join(certDir, 'client.key'));
    const ok = await pull();
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(sha256(ok.stdout), app().digest);
  });

  describe('the CLI', () => {
    before(async function () {
      needs(this, await cliBuilt(), 'the built lading-load (pnpm exec turbo run build)');
    });

    it('serve --tls-cert --tls-key prints an https address that skopeo verifies; stops on SIGTERM', async () => {
      // Port 0: the server binds a free port and prints the address it got.
      const child = spawn(
        process.execPath,
        [
          CLI,
          'serve',
          tb.path,
          '--key',
          tb.publicKey,
          '--address',
          '127.0.0.1:0',
          '--tls-cert',
          server.certFile,
          '--tls-key',
          server.keyFile,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      const done = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c) => {
          stdout += c;
          if (/press Ctrl-C/.test(stdout)) resolve();
        });
        child.stderr.on('data', (c) => {
          stderr += c;
        });
        void done.then(() => reject(new Error(`serve exited: ${stderr}`)));
      });
      const port = Number(/at https:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
      assert.ok(port > 0, stdout);
      const r = await runAsync('skopeo', [
        'inspect',
        '--raw',
        '--cert-dir',
        caDir,
        `docker://127.0.0.1:${port}/demo/app:1.0`,
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(sha256(r.stdout), app().digest);
      child.kill('SIGTERM');
      assert.equal(await done, 0, stderr);
    });

    it('exit 2: --tls-cert without --tls-key, a key that is not PEM, a key of another certificate', async () => {
      const alone = run(process.execPath, [
        CLI,
        'serve',
        tb.path,
        '--skip-verify',
        '--tls-cert',
        server.certFile,
      ]);
      assert.equal(alone.status, 2, alone.stderr);
      assert.match(alone.stderr, /--tls-key/);
      const junk = join(dir.path, 'junk.key');
      await writeFile(junk, 'not a key\n');
      const bad = run(process.execPath, [
        CLI,
        'serve',
        tb.path,
        '--skip-verify',
        '--address',
        '127.0.0.1:0',
        '--tls-cert',
        server.certFile,
        '--tls-key',
        junk,
      ]);
      assert.equal(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /--tls-key .*junk\.key is not a PEM file/);
      const mismatch = run(process.execPath, [
        CLI,
        'serve',
        tb.path,
        '--skip-verify',
        '--address',
        '127.0.0.1:0',
        '--tls-cert',
        server.certFile,
        '--tls-key',
        client.keyFile,
      ]);
      assert.equal(mismatch.status, 2, mismatch.stderr);
      assert.match(mismatch.stderr, /--tls-cert and --tls-key cannot be used/);
      assert.doesNotMatch(mismatch.stderr, /\n\s+at /);
    });
  });
});
