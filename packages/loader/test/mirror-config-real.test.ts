/**
 * The registries.conf output checked for real: skopeo reads containers-registries.conf(5) mirrors,
 * so `skopeo --registries-conf FILE inspect docker://<original source ref>` must resolve through
 * the mirror. The original sources are 127.0.0.2:<closed port> — nothing listens there, so the
 * only way to succeed is the mirror, and no traffic leaves loopback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleTarget } from '@lading/core';
import { freePort, needs, type RegistryServer, seedRegistry, startRegistry, tmpDir } from '@lading/testkit';
import { parse } from 'yaml';
import { mirrorConfig, writeMirrorFiles } from '../src/lib/mirror-config/index.ts';
import { parseRegistryTarget } from '../src/lib/registry-target.ts';
import { type BundleRegistry, startBundleRegistry } from '../src/lib/serve/index.ts';
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

describe('mirror-config registries-conf, checked with skopeo through a real mirror', function () {
  this.timeout(300_000);
  let dir: { path: string; cleanup(): Promise<void> };
  let tb: TestBundle;
  let deadHost: string;
  let target: BundleTarget;
  let served: BundleRegistry;
  let registry: RegistryServer | undefined;

  before(async function () {
    needs(this, hasSkopeo(), 'skopeo');
    dir = await tmpDir('lading-mirror-');
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
    tb = await buildTestBundle(dir.path, { renameImages: rename });
    target = await BundleTarget.open(tb.path);
    served = await startBundleRegistry(target, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await served?.close();
    await target?.close();
    await registry?.stop();
    await dir?.cleanup();
  });

  async function inspect(conf: string, ref: string) {
    return runAsync('skopeo', ['--registries-conf', conf, 'inspect', '--raw', `docker://${ref}`]);
  }

  it('control: without the mirror the original references do not resolve', async () => {
    const empty = join(dir.path, 'empty.conf');
    await writeFile(empty, '# no mirrors\n');
    const r = await inspect(empty, `${deadHost}/demo/app:1.0`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /127\.0\.0\.2/);
  });

  it('every original reference resolves through `lading-load serve` as the mirror (no prefix)', async () => {
    const host = served.url.replace('http://', '');
    const config = mirrorConfig('registries-conf', {
      target: parseRegistryTarget(host),
      images: tb.images.map((i) => `${deadHost}/${i.ref}`),
      plainHttp: true,
      name: 'testkit',
    });
    const [file] = await writeMirrorFiles(join(dir.path, 'serve-conf'), config.files);
    assert.ok(file);
    const text = await readFile(file, 'utf8');
    assert.match(text, new RegExp(`prefix = "${deadHost.replace(/\./g, '\\.')}"`));
    assert.match(text, /insecure = true/);
    for (const img of tb.images) {
      const r = await inspect(file, `${deadHost}/${img.ref}`);
      assert.equal(r.status, 0, `${img.ref}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), img.digest, img.ref);
    }
  });

  it('with a prefix: a Distribution registry seeded under PREFIX serves as the mirror', async () => {
    registry = await startRegistry({ mode: 'http' });
    await seedRegistry(registry, tb.layout, tb.images, { prefix: 'airgap/site' });
    const config = mirrorConfig('registries-conf', {
      target: parseRegistryTarget(`${registry.host}/airgap/site`),
      images: tb.images.map((i) => `${deadHost}/${i.ref}`),
      plainHttp: true,
      name: 'testkit',
    });
    const [file] = await writeMirrorFiles(join(dir.path, 'prefix-conf'), config.files);
    for (const img of tb.images) {
      const r = await inspect(file!, `${deadHost}/${img.ref}`);
      assert.equal(r.status, 0, `${img.ref}: ${r.stderr}`);
      assert.equal(sha256(r.stdout), img.digest, img.ref);
    }
    // A wrong prefix in the mirror fails: the prefix really is used.
    const wrong = mirrorConfig('registries-conf', {
      target: parseRegistryTarget(`${registry.host}/elsewhere`),
      images: [`${deadHost}/demo/app:1.0`],
      plainHttp: true,
      name: 'wrong',
    });
    const [wfile] = await writeMirrorFiles(join(dir.path, 'wrong-conf'), wrong.files);
    assert.notEqual((await inspect(wfile!, `${deadHost}/demo/app:1.0`)).status, 0);
  });

  describe('the CLI', () => {
    before(async function () {
      needs(this, await cliBuilt(), 'the built lading-load (pnpm exec turbo run build)');
    });

    it('prints files with headers; --json gives {format, files, instructions}; --output writes them', async () => {
      const printed = run(process.execPath, [
        CLI,
        'mirror-config',
        tb.path,
        '--key',
        tb.publicKey,
        '--registry',
        'harbor.local/airgap',
        '--format',
        'k3s',
      ]);
      assert.equal(printed.status, 0, printed.stderr);
      assert.match(printed.stdout, /^# ==> registries\.yaml <==$/m);
      const k3s = parse(printed.stdout.split('\n\n# ')[0]!) as {
        mirrors: Record<string, { rewrite: Record<string, string> }>;
      };
      assert.equal(k3s.mirrors[deadHost]?.rewrite['^(.*)$'], 'airgap/$1');
      const json = run(process.execPath, [
        CLI,
        'mirror-config',
        tb.path,
        '--key',
        tb.publicKey,
        '--registry',
        'harbor.local',
        '--format',
        'idms',
        '--json',
      ]);
      assert.equal(json.status, 0, json.stderr);
      const doc = JSON.parse(json.stdout);
      assert.equal(doc.format, 'idms');
      assert.equal(doc.files.length, 1);
      assert.match(doc.files[0].content, /ImageDigestMirrorSet/);
      assert.match(doc.files[0].content, new RegExp(`source: ${deadHost.replace(/\./g, '\\.')}/demo/multi`));
      assert.ok(doc.instructions.length > 0);
      const out = join(dir.path, 'cli-out');
      await mkdir(out);
      const w = run(process.execPath, [
        CLI,
        'mirror-config',
        tb.path,
        '--key',
        tb.publicKey,
        '--registry',
        'harbor.local:8443/airgap',
        '--format',
        'containerd',
        '--ca-file',
        '/etc/pki/harbor-ca.crt',
        '--output',
        out,
      ]);
      assert.equal(w.status, 0, w.stderr);
      const toml = await readFile(join(out, 'certs.d', deadHost, 'hosts.toml'), 'utf8');
      assert.match(toml, /^\[host\."https:\/\/harbor\.local:8443\/v2\/airgap"\]$/m);
      assert.match(toml, /ca = "\/etc\/pki\/harbor-ca\.crt"/);
      // Nothing but the files themselves (no temporary leftovers).
      assert.deepEqual(await readdir(join(out, 'certs.d', deadHost)), ['hosts.toml']);
      assert.ok((await stat(join(out, 'certs.d', deadHost, 'hosts.toml'))).isFile());
    });

    it('refuses without --key or --skip-verify (exit 2); --skip-verify reads the bundle unverified', () => {
      const args = ['mirror-config', tb.path, '--registry', 'harbor.local', '--format', 'k3s'];
      const none = run(process.execPath, [CLI, ...args]);
      assert.equal(none.status, 2, none.stderr);
      assert.match(none.stderr, /--key/);
      assert.equal(none.stdout, '', 'nothing printed from an unverified bundle');
      const skip = run(process.execPath, [CLI, ...args, '--skip-verify']);
      assert.equal(skip.status, 0, skip.stderr);
      assert.match(skip.stdout, /registries\.yaml/);
    });

    it('bad --registry or --format: exit 2', () => {
      const bad = run(process.execPath, [
        CLI,
        'mirror-config',
        tb.path,
        '--key',
        tb.publicKey,
        '--registry',
        'https://x',
        '--format',
        'k3s',
      ]);
      assert.equal(bad.status, 2, bad.stderr);
      const fmt = run(process.execPath, [
        CLI,
        'mirror-config',
        tb.path,
        '--key',
        tb.publicKey,
        '--registry',
        'x.local',
        '--format',
        'nope',
      ]);
      assert.equal(fmt.status, 2, fmt.stderr);
    });
  });
});
