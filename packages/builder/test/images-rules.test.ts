/**
 * `lading-build images CHART --spec lading.yaml` shows which verify: rules cover each image the
 * chart needs (issue 10 §2): the RULE column of the table, and `rules` in --json.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, ROOT, runCli } from './helpers.ts';

describe('lading-build images --spec: the verify: rules covering each image', function () {
  this.timeout(300_000);
  let dir: string;
  let spec: string;
  before(async () => {
    await ensureBuilt();
    dir = await mkdtemp(join(tmpdir(), 'lading-images-rules-'));
    const pub = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
      type: 'spki',
      format: 'pem',
    });
    await writeFile(join(dir, 'vendor.pub'), pub);
    spec = join(dir, 'lading.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1
name: rules
version: 1.0.0
images: [docker.io/library/nginx:1.27.3]
verify:
  - images: ["docker.io/bitnami/**"]
    keys: [vendor.pub]
  - images: ["docker.io/acme/*", "docker.io/bitnami/redis"]
    keys: [vendor.pub]
`,
    );
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('RULE column and --json rules: each image with the rules whose globs match it, "-" for none', async () => {
    const chart = join(ROOT, 'fixtures/charts/webapp');
    const human = await runCli(['images', chart, '--spec', spec]);
    assert.equal(human.code, 0, human.stderr);
    const row = (image: string) =>
      human.stdout
        .split('\n')
        .find((l) => l.startsWith(`${image} `))
        ?.trim()
        .split(/\s+/)
        .slice(4)
        .join(' ');
    assert.match(human.stdout, /^IMAGE\s+VALUES PATH\s+KIND\s+CHART\s+RULE$/m);
    assert.equal(row('docker.io/bitnami/redis:7.2.4-debian-12-r9'), 'verify[0], verify[1]');
    assert.equal(row('docker.io/bitnami/redis-exporter:7.2.4'), 'verify[0]');
    assert.equal(row('docker.io/acme/webapp:2.3.1'), 'verify[1]');
    assert.equal(row('docker.io/library/busybox:1.36'), '-');

    const json = await runCli(['images', chart, '--spec', spec, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const j = JSON.parse(json.stdout) as { images: { image: string }[]; rules: Record<string, string[]> };
    assert.deepEqual(Object.keys(j.rules).sort(), [...new Set(j.images.map((i) => i.image))].sort());
    assert.deepEqual(j.rules['docker.io/bitnami/redis:7.2.4-debian-12-r9'], ['verify[0]', 'verify[1]']);
    assert.deepEqual(j.rules['ghcr.io/acme/migrate:1.10'], []);

    // without --spec: no RULE column, no rules
    const plain = await runCli(['images', chart, '--json']);
    assert.equal((JSON.parse(plain.stdout) as { rules?: unknown }).rules, undefined);
  });
});
