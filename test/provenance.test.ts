/**
 * Provenance end to end (issue 10 §1): cosign signatures and an SBOM referrer written from the
 * public formats into a real Distribution 2.8 (no referrers API), carried by create with a
 * verify: rule, pushed by push to another Distribution, and checked THERE with independent tools:
 * skopeo fetches the `.sig` manifest and its payload, openssl verifies the vendor's signature over
 * the payload, and the payload names the digest the target serves for the image.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createBundle } from '@lading/builder';
import {
  type BundleImage,
  BundleTarget,
  type Digest,
  discoverExtras,
  openBundle,
  Registry,
  writeKeyPair,
} from '@lading/core';
import {
  needs,
  type RegistryServer,
  seedRegistry,
  skopeo,
  skopeoRawManifest,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';
import { attachReferrer, cosignSign, getManifest, startReferrersStandIn } from '@lading/testkit/cosign';
import { pushBundle } from '../packages/loader/src/lib/push/index.ts';
import { renderMarkdownReport } from '../packages/loader/src/lib/report.ts';
import { renderHtmlReport } from '../packages/loader/src/lib/report-html.ts';
import { startBundleRegistry } from '../packages/loader/src/lib/serve/index.ts';
import { formatVerifyText, runVerify } from '../packages/loader/src/lib/verify.ts';

const pexec = promisify(execFile);
const SBOM_TYPE = 'application/vnd.cyclonedx+json';

describe('provenance: signatures and referrers travel to the target registry (Distribution 2.8 both sides)', function () {
  this.timeout(300_000);
  let tmp: Awaited<ReturnType<typeof tmpDir>>;
  let src: RegistryServer;
  let dst: RegistryServer;
  let images: TestImage[];
  let bundlePath: string;
  let releasePub: string;
  let lading: { images: BundleImage[] };
  const vendor = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const img = (n: string) => images.find((i) => i.name === n)!;

  before(async () => {
    tmp = await tmpDir('lading-prov-e2e-');
    [src, dst] = await Promise.all([startRegistry({ mode: 'http' }), startRegistry({ mode: 'http' })]);
    images = (await writeTestImages(join(tmp.path, 'layout'), { largeLayerBytes: 1024 })).filter((i) =>
      ['demo/app', 'demo/multi'].includes(i.name),
    );
    await seedRegistry(src, join(tmp.path, 'layout'), images);
    const app = img('demo/app');
    await cosignSign(src, 'demo/app', app.digest, vendor.privateKey);
    await attachReferrer(
      src,
      'demo/app',
      app,
      SBOM_TYPE,
      Buffer.from('{"bomFormat":"CycloneDX","specVersion":"1.5","version":1}'),
    );
    // cosign sign --recursive: the index and each platform manifest
    await cosignSign(src, 'demo/multi', img('demo/multi').digest, vendor.privateKey);
    for (const m of img('demo/multi').manifests!)
      await cosignSign(src, 'demo/multi', m.digest, vendor.privateKey);
    const pem = vendor.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(join(tmp.path, 'vendor.pub'), pem);
    const keys = await writeKeyPair(join(tmp.path, 'release'));
    releasePub = keys.publicKeyPath;
    const spec = join(tmp.path, 'lading.yaml');
    await writeFile(
      spec,
      `apiVersion: lading/v1
name: prov
version: 1.0.0
images:
  - ${src.host}/demo/app:1.0
  - ref: ${src.host}/demo/multi:3.0
    platforms: [linux/amd64, linux/arm64]
verify:
  - images: ["${src.host}/demo/**"]
    keys: [vendor.pub]
`,
    );
    const s = await createBundle({
      spec,
      output: join(tmp.path, 'prov.tar'),
      key: keys.privateKeyPath,
      cache: join(tmp.path, 'cache'),
    });
    bundlePath = s.path;
    const b = await openBundle(bundlePath);
    lading = b.ladingJson;
    await b.close();
  });
  after(async () => {
    await src?.stop();
    await dst?.stop();
    await tmp?.cleanup();
  });

  it('push writes the .sig under the same tag; skopeo and openssl verify the vendor signature at the target', async () => {
    const r = await pushBundle({
      bundle: bundlePath,
      publicKey: releasePub,
      registry: { host: dst.host, prefix: 'site' },
      registryOptions: { plainHttp: true, keychain: { get: async () => undefined } },
    });
    assert.ok(r.summary.extras.pushed >= 2, JSON.stringify(r.summary.extras));
    const app = img('demo/app');
    const tag = `${app.digest.replace(':', '-')}.sig`;
    // the target serves the image under the same digest
    const served = await skopeoRawManifest(`${dst.host}/site/demo/app:1.0`, dst);
    assert.equal(`sha256:${createHash('sha256').update(served).digest('hex')}`, app.digest);
    // skopeo copies the signature artifact out of the target registry
    const out = join(tmp.path, 'sig-dir');
    await skopeo(['copy', `docker://${dst.host}/site/demo/app:${tag}`, `dir:${out}`], { src: dst });
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      layers: { digest: string; annotations: Record<string, string> }[];
    };
    const layer = manifest.layers[0]!;
    const payloadFile = join(out, layer.digest.slice(7));
    const payload = JSON.parse(await readFile(payloadFile, 'utf8')) as {
      critical: { image: { 'docker-manifest-digest': string } };
    };
    assert.equal(payload.critical.image['docker-manifest-digest'], app.digest);
    const sigFile = join(tmp.path, 'payload.sig');
    await writeFile(sigFile, Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'));
    const { stdout } = await pexec('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      join(tmp.path, 'vendor.pub'),
      '-signature',
      sigFile,
      payloadFile,
    ]);
    assert.match(stdout, /Verified OK/);
  });

  it('the SBOM referrer is at the target with its subject, listed in the referrers tag schema index', async () => {
    const app = img('demo/app');
    const entry = lading.images
      .find((i) => i.ref.endsWith('/demo/app:1.0'))!
      .extras!.find((e) => e.kind === 'referrer')!;
    const index = JSON.parse(
      (await skopeoRawManifest(`${dst.host}/site/demo/app:${app.digest.replace(':', '-')}`, dst)).toString(
        'utf8',
      ),
    ) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => [m.digest, m.artifactType]),
      [[entry.digest, SBOM_TYPE]],
    );
    const referrer = JSON.parse(
      (await skopeoRawManifest(`${dst.host}/site/demo/app@${entry.digest}`, dst)).toString('utf8'),
    ) as {
      subject: { digest: string };
    };
    assert.equal(referrer.subject.digest, app.digest);
  });

  it('a filtered index: the platform manifests keep their digests and their signatures arrive; the index digest changes, its signature travels under the upstream tag', async () => {
    const multi = lading.images.find((i) => i.ref.endsWith('/demo/multi:3.0'))!;
    assert.notEqual(multi.digest, multi.upstreamDigest);
    const kept = img('demo/multi').manifests!.filter((x) => multi.platforms.includes(x.platform));
    assert.deepEqual(kept.map((m) => m.platform).sort(), ['linux/amd64', 'linux/arm64/v8']);
    for (const m of kept) {
      const sig = await getManifest(dst, 'site/demo/multi', `${m.digest.replace(':', '-')}.sig`);
      assert.ok(sig, `signature of ${m.platform} ${m.digest} at the target`);
    }
    assert.ok(await getManifest(dst, 'site/demo/multi', `${multi.upstreamDigest.replace(':', '-')}.sig`));
    assert.equal(
      await getManifest(dst, 'site/demo/multi', `${multi.digest.replace(':', '-')}.sig`),
      undefined,
    );
  });

  it('a re-push sends no artifact again; a .sig tag naming another manifest at the target is replaced and listed', async () => {
    // the site's registry holds another signature manifest under the image's .sig tag
    const app = img('demo/app');
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const theirs = await cosignSign(dst, 'site/demo/app', app.digest, other.privateKey);
    const r = await pushBundle({
      bundle: bundlePath,
      publicKey: releasePub,
      registry: { host: dst.host, prefix: 'site' },
      registryOptions: { plainHttp: true, keychain: { get: async () => undefined } },
    });
    assert.equal(r.summary.extras.pushed, 1);
    assert.ok(r.summary.extras.skipped >= 2);
    assert.equal(r.summary.extras.indexes, 0);
    const sigTag = `${app.digest.replace(':', '-')}.sig`;
    const bundled = lading.images
      .find((i) => i.ref.endsWith('/demo/app:1.0'))!
      .extras!.find((e) => e.kind === 'sig')!;
    assert.deepEqual(r.summary.extras.replaced, [
      {
        target: `${dst.host}/site/demo/app:${sigTag}`,
        existing: theirs.manifest.digest,
        bundled: bundled.digest,
      },
    ]);
    const again = await pushBundle({
      bundle: bundlePath,
      publicKey: releasePub,
      registry: { host: dst.host, prefix: 'site' },
      registryOptions: { plainHttp: true, keychain: { get: async () => undefined } },
    });
    assert.equal(again.summary.extras.pushed, 0);
    assert.deepEqual(again.summary.extras.replaced, []);
  });

  it('serve offers both schemes: the cosign tag, the referrers API and the referrers tag schema; skopeo and openssl verify there too', async () => {
    const target = await BundleTarget.open(bundlePath);
    const served = await startBundleRegistry(target, { host: '127.0.0.1', port: 0 });
    const host = new URL(served.url).host;
    const client = new Registry(host, { plainHttp: true, keychain: { get: async () => undefined } });
    try {
      const app = img('demo/app');
      const repo = client.repository('demo/app');
      const api = await repo.referrers(app.digest as Digest);
      assert.deepEqual(
        api?.map((d) => d.artifactType),
        [SBOM_TYPE],
      );
      const tags: string[] = [];
      for await (const t of repo.tags()) tags.push(t);
      assert.ok(tags.includes(`${app.digest.replace(':', '-')}.sig`), tags.join(' '));
      assert.ok(tags.includes(app.digest.replace(':', '-')), tags.join(' '));
      const found = await discoverExtras(repo, [app.digest as Digest]);
      assert.deepEqual(
        found.map((e) => e.kind),
        ['referrer', 'sig'],
      );
      const out = join(tmp.path, 'served-sig');
      const fake = { host, url: served.url, mode: 'http' } as unknown as RegistryServer;
      await skopeo(
        [
          'copy',
          '--src-tls-verify=false',
          `docker://${host}/demo/app:${app.digest.replace(':', '-')}.sig`,
          `dir:${out}`,
        ],
        { src: fake },
      );
      const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
        layers: { digest: string; annotations: Record<string, string> }[];
      };
      const layer = manifest.layers[0]!;
      const sigFile = join(tmp.path, 'served.sig');
      await writeFile(
        sigFile,
        Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'),
      );
      const { stdout } = await pexec('openssl', [
        'dgst',
        '-sha256',
        '-verify',
        join(tmp.path, 'vendor.pub'),
        '-signature',
        sigFile,
        join(out, layer.digest.slice(7)),
      ]);
      assert.match(stdout, /Verified OK/);
    } finally {
      await client.close();
      await served.close();
      await target.close();
    }
  });

  it('verify --image-key re-checks the carried signatures offline: the vendor key passes, another key fails with exit-3 problems', async () => {
    const ok = await runVerify({
      bundle: bundlePath,
      keyFile: releasePub,
      imageKeys: [join(tmp.path, 'vendor.pub')],
    });
    assert.equal(ok.ok, true, JSON.stringify(ok.problems));
    assert.deepEqual(
      ok.imageSignatures?.images.map((i) => [i.ref.replace(/^[^/]+\//, ''), i.ok, i.signatures[0]?.scheme]),
      [
        ['demo/app:1.0', true, 'cosign'],
        ['demo/multi:3.0', true, 'cosign'],
      ],
    );
    // the filtered index: met by the signature on the carried upstream index
    const multi = lading.images.find((i) => i.ref.endsWith('/demo/multi:3.0'))!;
    assert.equal(ok.imageSignatures!.images[1]!.signatures[0]!.digest, multi.upstreamDigest);
    assert.match(formatVerifyText(ok), /upstream sha256:[0-9a-f]{64} -> bundled sha256:/);
    assert.match(
      formatVerifyText(ok),
      /upstream signature \(checked at build time\): cosign over sha256:[0-9a-f]{64}, key sha256:/,
    );
    const md = renderMarkdownReport(ok, { tool: { name: 'lading-load', version: 'test' } });
    assert.match(md, /## Upstream signatures \(--image-key\)/);
    // issue 10 §4: the reports say the filtered index is new, with the upstream digest beside it
    const filtered = `platform filter: new index; upstream ${multi.upstreamDigest}`;
    assert.ok(md.includes(filtered), md);
    assert.ok(
      renderHtmlReport(ok, { tool: { name: 'lading-load', version: 'test' } }).includes(filtered),
      'the HTML report names the upstream index digest',
    );

    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await writeFile(join(tmp.path, 'other.pub'), other);
    const bad = await runVerify({
      bundle: bundlePath,
      keyFile: releasePub,
      imageKeys: [join(tmp.path, 'other.pub')],
    });
    assert.equal(bad.ok, false);
    assert.deepEqual(
      bad.problems.map((p) => p.kind),
      ['upstream-signature', 'upstream-signature'],
    );
    assert.match(bad.problems[0]!.message, /does not verify/);
  });

  it("docs/provenance.md's standard-tools steps, run as written on the bundle: openssl verifies both links, the payload names the image", async function () {
    needs(this, spawnSync('sh', ['-c', 'command -v jq'], { stdio: 'ignore' }).status === 0, 'jq');
    const doc = await readFile(new URL('../docs/provenance.md', import.meta.url), 'utf8');
    const block = /\*\*With standard tools only\*\*[^\n]*\n+```sh\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block, 'the "With standard tools only" block in docs/provenance.md');
    const work = join(tmp.path, 'doc-steps');
    await mkdir(work);
    await copyFile(bundlePath, join(work, 'bundle.tar'));
    await copyFile(releasePub, join(work, 'release.pub'));
    await copyFile(join(tmp.path, 'vendor.pub'), join(work, 'vendor.pub'));
    const { stdout } = await pexec('sh', ['-e', '-c', block], { cwd: work });
    const lines = stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['Verified OK', 'Verified OK'], stdout);
    assert.equal(lines.at(-1), lading.images[0]!.digest, 'the payload names images[0]');
    assert.equal(lading.images[0]!.digest, img('demo/app').digest);
    // and it can fail: another vendor key does not verify the payload
    await writeFile(
      join(work, 'vendor.pub'),
      generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
        type: 'spki',
        format: 'pem',
      }),
    );
    await rm(join(work, 'b'), { recursive: true });
    await assert.rejects(pexec('sh', ['-e', '-c', block], { cwd: work }), (err: { stdout?: string }) => {
      assert.match(err.stdout ?? '', /Verified OK\nVerification failure/);
      return true;
    });
  });

  it('a target with the referrers API (a stand-in in front of Distribution): referrers pushed with their subject, no tag schema index written', async () => {
    const backing = await startRegistry({ mode: 'http' });
    const standIn = await startReferrersStandIn(backing);
    try {
      const r = await pushBundle({
        bundle: bundlePath,
        publicKey: releasePub,
        registry: { host: standIn.host, prefix: 'site' },
        registryOptions: { plainHttp: true, keychain: { get: async () => undefined } },
      });
      assert.equal(r.summary.extras.indexes, 0);
      const app = img('demo/app');
      const entry = lading.images
        .find((i) => i.ref.endsWith('/demo/app:1.0'))!
        .extras!.find((e) => e.kind === 'referrer')!;
      const listed = (await (
        await fetch(`${standIn.url}/v2/site/demo/app/referrers/${app.digest}`)
      ).json()) as {
        manifests: { digest: string }[];
      };
      assert.deepEqual(
        listed.manifests.map((m) => m.digest),
        [entry.digest],
      );
      assert.equal(await getManifest(backing, 'site/demo/app', app.digest.replace(':', '-')), undefined);
      assert.ok(await getManifest(backing, 'site/demo/app', entry.digest));
    } finally {
      await standIn.stop();
      await backing.stop();
    }
  });
});
