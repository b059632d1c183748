import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BundleTarget,
  type Digest,
  ExitCode,
  fetchAll,
  openBundle,
  UpstreamSignatureError,
  verifyBundle,
} from '@lading/core';
import {
  attachReferrer,
  cosignSign,
  getManifest,
  SIGSTORE_BUNDLE_TYPE,
  sigstoreBundle,
} from '@lading/testkit/cosign';
import { formatCreateSummary } from '../src/commands/create.ts';
import { rulesCovering } from '../src/lib/chart-images.ts';
import { type CreateOptions, createBundle } from '../src/lib/create.ts';
import { UpstreamSignaturesError } from '../src/lib/extras.ts';
import { describeBundle, formatInspect } from '../src/lib/inspect.ts';
import { PinnedIndexFilterError } from '../src/lib/plan.ts';
import { type Fixture, startFixture } from './helpers.ts';

function ecKey(): { priv: KeyObject; pem: string } {
  const kp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { priv: kp.privateKey, pem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const SBOM_TYPE = 'application/vnd.cyclonedx+json';

describe('lading-build create: supply-chain artifacts and verify: rules (Distribution 2.8, tag schema)', function () {
  this.timeout(180_000);
  let fx: Fixture;
  const vendor = ecKey();
  const other = ecKey();
  let n = 0;

  const spec = async (body: string): Promise<string> => {
    const file = join(fx.dir, `prov-${++n}.yaml`);
    await writeFile(file, `apiVersion: lading/v1\nname: prov\nversion: 1.0.${n}\n${body}`);
    return file;
  };
  const opts = (specFile: string, extra: Partial<CreateOptions> = {}): CreateOptions => ({
    spec: specFile,
    output: join(fx.dir, `out-${n}.tar`),
    key: fx.key,
    cache: join(fx.dir, 'cache'),
    ...extra,
  });
  const noBundle = async () => {
    const left = (await readdir(fx.dir)).filter(
      (f) => f.startsWith(`out-${n}.`) || f.startsWith(`.out-${n}.`),
    );
    assert.deepEqual(left, []);
  };

  before(async () => {
    fx = await startFixture({ bigBytes: 1024 });
    await writeFile(join(fx.dir, 'vendor.pub'), vendor.pem);
    await writeFile(join(fx.dir, 'other.pub'), other.pem);
    const app = fx.image('demo/app');
    await cosignSign(fx.registry, 'demo/app', app.digest, vendor.priv);
    await attachReferrer(
      fx.registry,
      'demo/app',
      app,
      SBOM_TYPE,
      Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components: [] })),
    );
    // the vendor signs the multi-arch index itself (cosign sign without --recursive)
    await cosignSign(fx.registry, 'demo/multi', fx.image('demo/multi').digest, vendor.priv);
  });
  after(async () => {
    await fx?.stop();
  });

  it('carries the signature and the SBOM referrer, checks the rule, records the results in lading.json', async () => {
    const host = fx.registry.host;
    const s = await createBundle(
      opts(
        await spec(`images:
  - ${host}/demo/app:1.0
  - ref: ${host}/demo/multi:3.0
    platforms: [linux/amd64]
  - ${host}/demo/legacy:2.0
verify:
  - images: ["${host}/demo/app", "${host}/demo/multi:*"]
    keys: [other.pub, vendor.pub]
`),
      ),
    );
    const b = await BundleTarget.open(s.path);
    try {
      const app = b.bundle.ladingJson.images.find((i) => i.ref === fx.ref('demo/app'))!;
      assert.deepEqual(
        app.extras?.map((e) => [e.kind, e.subject, e.tag ?? e.artifactType]),
        [
          ['referrer', app.digest, SBOM_TYPE],
          ['sig', app.digest, `${app.digest.replace(':', '-')}.sig`],
        ],
      );
      assert.equal(app.signatures?.length, 1);
      assert.equal(app.signatures![0]!.scheme, 'cosign');
      assert.equal(app.signatures![0]!.digest, app.digest);
      assert.equal(app.signatures![0]!.signature, app.extras![1]!.digest);
      // every node of every extra is in the bundle
      for (const e of app.extras!) {
        const bytes = await fetchAll(b, { mediaType: e.mediaType, digest: e.digest as Digest, size: e.size });
        const m = JSON.parse(bytes.toString('utf8')) as {
          config: { digest: Digest; size: number };
          layers: { digest: Digest; size: number; mediaType: string }[];
        };
        for (const l of [m.config, ...m.layers]) assert.ok(b.bundle.hasBlob(l.digest), l.digest);
      }
      // the filtered index: a new digest, the upstream index carried and its signature accepted
      const multi = b.bundle.ladingJson.images.find((i) => i.ref === fx.ref('demo/multi'))!;
      assert.notEqual(multi.digest, multi.upstreamDigest);
      assert.equal(multi.upstreamDigest, fx.image('demo/multi').digest);
      assert.ok(multi.upstreamIndex);
      const upstream = await fetchAll(b, {
        mediaType: multi.upstreamIndex.mediaType,
        digest: multi.upstreamDigest as Digest,
        size: multi.upstreamIndex.size,
      });
      assert.deepEqual(upstream, await getManifest(fx.registry, 'demo/multi', multi.upstreamDigest));
      assert.equal(multi.signatures?.[0]?.digest, multi.upstreamDigest);
      // not covered by a rule, no extras upstream
      const legacy = b.bundle.ladingJson.images.find((i) => i.ref === fx.ref('demo/legacy'))!;
      assert.equal(legacy.extras, undefined);
      assert.equal(legacy.signatures, undefined);
      // the SBOM counts them and names the signatures
      const bom = JSON.parse((await b.bundle.readMember('sbom.cdx.json')).toString('utf8')) as {
        components: { name: string; properties?: { name: string; value: string }[] }[];
      };
      const props = bom.components.find((c) => c.name.endsWith('demo/app'))!.properties!;
      assert.equal(props.find((p) => p.name === 'lading:extras')?.value, '2');
      assert.equal(props.filter((p) => p.name === 'lading:upstreamSignature').length, 1);
      // inspect counts them and shows the signatures and the digest change
      const inspected = describeBundle(b.bundle);
      assert.deepEqual(inspected.images.find((i) => i.ref === app.ref)!.extras, { referrer: 1, sig: 1 });
      const text = formatInspect(inspected);
      assert.match(text, /UPSTREAM SIGNATURES/);
      assert.match(
        text,
        new RegExp(
          `${fx.ref('demo/multi').replace(/\./g, '\\.')}  upstream ${multi.upstreamDigest} -> bundled ${multi.digest}`,
        ),
      );
      const line = s.imageList.find((i) => i.ref === fx.ref('demo/multi'))!;
      assert.deepEqual(line.rules, ['verify[0] (other.pub, vendor.pub)']);
      // create's own summary says it too (issue 10 §4), and --json carries both digests
      assert.ok(
        formatCreateSummary(s).includes(
          `  ${fx.ref('demo/multi')}: filtered index, digest changed: upstream ${multi.upstreamDigest} -> bundled ${multi.digest}`,
        ),
        formatCreateSummary(s),
      );
      assert.deepEqual([line.upstreamDigest, line.digest], [multi.upstreamDigest, multi.digest]);
    } finally {
      await b.bundle.close();
    }
  });

  it('extras: false (top level, or on one image) leaves them out', async () => {
    const host = fx.registry.host;
    const s = await createBundle(
      opts(
        await spec(`extras: false
images:
  - ${host}/demo/app:1.0
  - ref: ${host}/demo/multi:3.0
    extras: true
`),
      ),
    );
    const b = await openBundle(s.path);
    try {
      assert.equal(b.ladingJson.images[0]!.extras, undefined);
      assert.equal(b.ladingJson.images[1]!.extras?.length, 1);
    } finally {
      await b.close();
    }
  });

  it('a Sigstore bundle referrer (DSSE, key hint) meets a rule; a differential bundle keeps the extras and verifies', async () => {
    const host = fx.registry.host;
    const baseA = fx.image('demo/base-a');
    const bytes = (await getManifest(fx.registry, 'demo/base-a', baseA.digest))!;
    const ref = await attachReferrer(
      fx.registry,
      'demo/base-a',
      baseA,
      SIGSTORE_BUNDLE_TYPE,
      sigstoreBundle(vendor.priv, bytes, { dsse: true, image: `${host}/demo/base-a` }),
    );
    const body = `images:\n  - ${host}/demo/base-a:1\n  - ${host}/demo/app:1.0\nverify:\n  - images: ["${host}/demo/base-a"]\n    keys: [vendor.pub]\n`;
    const first = await createBundle(opts(await spec(body)));
    const b1 = await openBundle(first.path);
    try {
      const img = b1.ladingJson.images.find((i) => i.ref === fx.ref('demo/base-a'))!;
      assert.deepEqual(
        img.signatures?.map((x) => [x.scheme, x.signature]),
        [['sigstore-bundle', ref.digest]],
      );
    } finally {
      await b1.close();
    }
    // the same images again, differential against the first: manifests (extras included) stay
    const second = await createBundle(opts(await spec(body), { since: first.path }));
    const b2 = await openBundle(second.path);
    try {
      const img = b2.ladingJson.images.find((i) => i.ref === fx.ref('demo/app'))!;
      for (const e of img.extras!)
        assert.ok(b2.hasBlob(e.digest as Digest), `extra manifest ${e.digest} kept`);
      assert.ok((b2.ladingJson.since?.omittedBlobs?.length ?? 0) > 0);
    } finally {
      await b2.close();
    }
    const report = await verifyBundle(second.path, { publicKey: fx.pub });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
  });

  const failures: Array<[string, (d: string) => Promise<unknown>, string, RegExp]> = [
    ['a missing signature', async () => {}, 'vendor.pub', /no signature of sha256:/],
    [
      'a wrong key',
      (d) => cosignSign(fx.registry, 'demo/legacy', d, other.priv),
      'vendor.pub',
      /does not verify with sha256:[0-9a-f]+ \(signed with another key\)/,
    ],
    [
      'a replayed signature (payload names another digest)',
      (d) =>
        cosignSign(fx.registry, 'demo/legacy', d, vendor.priv, {
          payloadDigest: fx.image('demo/app').digest,
        }),
      'vendor.pub',
      /payload names sha256:[0-9a-f]+, not sha256:[0-9a-f]+ \(a signature replayed from another image\)/,
    ],
    [
      'an unparsable payload',
      (d) => cosignSign(fx.registry, 'demo/legacy', d, vendor.priv, { payload: Buffer.from('not json') }),
      'vendor.pub',
      /payload is not JSON/,
    ],
  ];
  for (const [what, prepare, key, reason] of failures) {
    it(`${what}: exit 3 naming image, rule and reason, before any bundle file appears`, async () => {
      const host = fx.registry.host;
      await prepare(fx.image('demo/legacy').digest);
      await assert.rejects(
        createBundle(
          opts(
            await spec(`images:
  - ${host}/demo/app:1.0
  - ${host}/demo/legacy:2.0
verify:
  - images: ["${host}/demo/**"]
    keys: [${key}]
`),
          ),
        ),
        (e: unknown) => {
          assert.ok(e instanceof UpstreamSignatureError, String(e));
          assert.equal(e.exitCode, ExitCode.verification);
          assert.match(
            e.message,
            new RegExp(
              `${fx.ref('demo/legacy').replace(/\./g, '\\.')}: no valid signature for verify rule verify\\[0\\] \\(vendor\\.pub\\)`,
            ),
          );
          assert.match(e.message, reason);
          return true;
        },
      );
      await noBundle();
    });
  }

  it('several images without a valid signature: all of them in one error (exit 3), each with rule and reason', async () => {
    const host = fx.registry.host;
    await assert.rejects(
      createBundle(
        opts(
          await spec(`images:
  - ${host}/demo/base-b:1
  - ${host}/demo/app:1.0
  - ${host}/demo/big:1.0
verify:
  - images: ["${host}/demo/**"]
    keys: [vendor.pub]
`),
        ),
      ),
      (e: unknown) => {
        assert.ok(e instanceof UpstreamSignaturesError, String(e));
        assert.ok(e instanceof UpstreamSignatureError);
        assert.equal(e.exitCode, ExitCode.verification);
        assert.deepEqual(
          e.failures.map((f) => f.image),
          [fx.ref('demo/base-b'), fx.ref('demo/big')],
        );
        assert.match(e.message, /^2 images have no valid signature for their verify: rules:\n/);
        assert.match(
          e.message,
          /demo\/big:1\.0: no valid signature for verify rule verify\[0\] \(vendor\.pub\): no signature of sha256:/,
        );
        return true;
      },
    );
    await noBundle();
  });

  it('a digest-pinned index with a platform filter: exit 2 naming the platform manifests to pin', async () => {
    const host = fx.registry.host;
    const multi = fx.image('demo/multi');
    const amd64 = multi.manifests!.find((m) => m.platform === 'linux/amd64')!;
    await assert.rejects(
      createBundle(
        opts(await spec(`platforms: [linux/amd64]\nimages:\n  - ${host}/demo/multi@${multi.digest}\n`)),
      ),
      (e: unknown) => {
        assert.ok(e instanceof PinnedIndexFilterError, String(e));
        assert.equal(e.exitCode, ExitCode.usage);
        assert.match(
          e.hint ?? '',
          new RegExp(`${host.replace(/\./g, '\\.')}/demo/multi@${amd64.digest} \\(linux/amd64\\)`),
        );
        return true;
      },
    );
    await noBundle();
  });

  it('a verify: rule with a glob without a host or a key that is not a public key: spec error, exit 2', async () => {
    await writeFile(join(fx.dir, 'bad.pub'), 'nope');
    await assert.rejects(
      createBundle(opts(await spec(`images: []\nverify:\n  - images: ["demo/*"]\n    keys: [bad.pub]\n`))),
      (e: unknown) => {
        const err = e as { exitCode: number; message: string };
        assert.equal(err.exitCode, ExitCode.usage);
        assert.match(err.message, /does not start with a registry host/);
        assert.match(err.message, /bad\.pub is not a PEM public key/);
        return true;
      },
    );
  });
});

describe('verify: globs and the rules covering an image', () => {
  it('* stays in one segment, ** crosses them, a glob without tag or digest matches every tag and digest', () => {
    const rules = [
      { index: 0, images: ['docker.io/bitnami/*'] },
      { index: 1, images: ['ghcr.io/acme/**'] },
      { index: 2, images: ['quay.io/prometheus/node-exporter'] },
    ];
    assert.deepEqual(
      rulesCovering(
        [
          'docker.io/bitnami/nginx:1.27.3',
          'docker.io/bitnami/sub/nginx:1',
          'ghcr.io/acme/api/v2/server@sha256:' + 'a'.repeat(64),
          'quay.io/prometheus/node-exporter:v1.8.2',
          'quay.io/prometheus/node-exporter-extra:v1',
        ],
        rules,
      ),
      {
        'docker.io/bitnami/nginx:1.27.3': ['verify[0]'],
        'docker.io/bitnami/sub/nginx:1': [],
        [`ghcr.io/acme/api/v2/server@sha256:${'a'.repeat(64)}`]: ['verify[1]'],
        'quay.io/prometheus/node-exporter:v1.8.2': ['verify[2]'],
        'quay.io/prometheus/node-exporter-extra:v1': [],
      },
    );
  });
});
