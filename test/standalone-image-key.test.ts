/**
 * `lading-load verify --image-key KEY` from the STANDALONE loader (scripts/build-loader: one
 * executable, no Node.js on PATH), issue 10 §2: a bundle built with a `verify:` rule carries the
 * vendor's cosign signatures (written from the public format into a real Distribution 2.8); at the
 * site the executable re-checks them offline with the vendor key (exit 0, the report names each
 * signature) and refuses another key (exit 3, each image named). The provenance code is loaded
 * lazily by verify, so this is also the check that the single-file build carries it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createBundle } from '@lading/builder';
import { writeKeyPair } from '@lading/core';
import {
  type CollectedRun,
  type RegistryServer,
  runCollect,
  seedRegistry,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';
import { cosignSign } from '@lading/testkit/cosign';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const EXE_NAME = 'lading-load-linux-x64';

describe('standalone lading-load verify --image-key (single executable, no Node.js on PATH)', function () {
  this.timeout(600_000);
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let src: RegistryServer;
  let images: TestImage[];
  let exe: string;
  let env: NodeJS.ProcessEnv;
  let bundle: string;
  let releasePub: string;
  let vendorPub: string;
  let otherPub: string;

  const run = (args: string[]): Promise<CollectedRun> => runCollect(exe, args, { env, cwd: tmp.path });

  before(async () => {
    tmp = await tmpDir('lading-standalone-imagekey-');
    // the executable, built as a release is
    const out = join(tmp.path, 'out');
    await promisify(execFile)('bash', [join(REPO, 'scripts', 'build-loader'), '--out', out], {
      cwd: REPO,
      maxBuffer: 16 * 1024 * 1024,
    });
    exe = join(out, EXE_NAME);
    assert.ok(existsSync(exe), `scripts/build-loader wrote no ${exe}`);
    // a field host's PATH: a few system tools, no node
    const bin = join(tmp.path, 'bin');
    await mkdir(bin);
    for (const t of ['sh', 'tar', 'sha256sum']) {
      const p = [`/usr/bin/${t}`, `/bin/${t}`].find((x) => existsSync(x));
      if (p) await symlink(p, join(bin, t));
    }
    await mkdir(join(tmp.path, 'home'));
    env = { PATH: bin, HOME: join(tmp.path, 'home'), LANG: 'C.UTF-8', CI: '1' };

    // the vendor signs its images (cosign's simple-signing format) in the source registry
    src = await startRegistry({ mode: 'http' });
    images = (await writeTestImages(join(tmp.path, 'layout'), { largeLayerBytes: 1024 })).filter((i) =>
      ['demo/app', 'demo/multi'].includes(i.name),
    );
    await seedRegistry(src, join(tmp.path, 'layout'), images);
    const vendor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const i of images) await cosignSign(src, i.name, i.digest, vendor.privateKey);
    vendorPub = join(tmp.path, 'vendor.pub');
    await writeFile(vendorPub, vendor.publicKey.export({ type: 'spki', format: 'pem' }));
    otherPub = join(tmp.path, 'other.pub');
    await writeFile(
      otherPub,
      generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
        type: 'spki',
        format: 'pem',
      }),
    );
    // the release engineer builds with a verify: rule, so the signatures travel in the bundle
    const keys = await writeKeyPair(join(tmp.path, 'release'));
    releasePub = keys.publicKeyPath;
    const spec = join(tmp.path, 'lading.yaml');
    await writeFile(
      spec,
      [
        'apiVersion: lading/v1',
        'name: signed',
        'version: 1.0.0',
        'images:',
        ...images.map((i) => `  - ${src.host}/${i.name}:${i.tag}`),
        'verify:',
        `  - images: ["${src.host}/demo/**"]`,
        '    keys: [vendor.pub]',
        '',
      ].join('\n'),
    );
    bundle = (
      await createBundle({
        spec,
        output: join(tmp.path, 'signed.tar'),
        key: keys.privateKeyPath,
        cache: join(tmp.path, 'cache'),
      })
    ).path;
    // the site is offline: nothing upstream to ask
    await src.stop();
  });
  after(async () => {
    await tmp?.cleanup();
  });

  it('the vendor key: exit 0, and the report names every image and the signature that covers it', async () => {
    const r = await run(['verify', bundle, '--key', releasePub, '--image-key', vendorPub]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stdout,
      new RegExp(`Upstream signatures \\(--image-key ${vendorPub} sha256:[0-9a-f]{64}\\): 2 image\\(s\\)`),
    );
    for (const i of images) {
      assert.match(
        r.stdout,
        new RegExp(`OK +\\S*${i.name}:${i.tag} +cosign over ${i.digest} \\(signature sha256:[0-9a-f]{64}\\)`),
        `${i.name}: ${r.stdout}`,
      );
    }
    const json = await run(['verify', bundle, '--key', releasePub, '--image-key', vendorPub, '--json']);
    assert.equal(json.status, 0, json.stderr);
    const j = JSON.parse(json.stdout) as {
      ok: boolean;
      imageSignatures: {
        images: { ref: string; ok: boolean; signatures: { scheme: string; digest: string }[] }[];
      };
    };
    assert.equal(j.ok, true);
    assert.deepEqual(
      j.imageSignatures.images.map((i) => [i.ref, i.ok, i.signatures.map((s) => [s.scheme, s.digest])]),
      images.map((i) => [`${src.host}/${i.name}:${i.tag}`, true, [['cosign', i.digest]]]),
    );
  });

  it('another key: exit 3, each image named as lacking a valid upstream signature', async () => {
    const r = await run(['verify', bundle, '--key', releasePub, '--image-key', otherPub]);
    assert.equal(r.status, 3, `${r.stdout}\n${r.stderr}`);
    for (const i of images) {
      assert.match(
        `${r.stdout}\n${r.stderr}`,
        new RegExp(`${i.name}:${i.tag} \\(upstream-signature\\): no valid upstream signature by ${otherPub}`),
      );
    }
    assert.doesNotMatch(r.stderr, /at .*\(.*:\d+:\d+\)/, 'no stack trace');
  });
});
