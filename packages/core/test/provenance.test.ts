import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import {
  type RegistryServer,
  seedRegistry,
  startRegistry,
  type TestImage,
  tmpDir,
  writeTestImages,
} from '@lading/testkit';
import {
  attachReferrer,
  cosignSign,
  type ReferrersStandIn,
  SIGSTORE_BUNDLE_TYPE,
  sigstoreBundle,
  startReferrersStandIn,
} from '@lading/testkit/cosign';
import type { Digest } from '../src/digest/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import { OciLayout } from '../src/layout/index.ts';
import type { Descriptor } from '../src/model/index.ts';
import {
  artifactNodes,
  checkSignatures,
  copyArtifact,
  cosignTag,
  digestOfTag,
  discoverExtras,
  type FoundExtra,
  type ImageKey,
  ImageKeyError,
  imageKeyFromPem,
  referrersTag,
  UpstreamSignatureError,
} from '../src/provenance/index.ts';
import { Registry } from '../src/registry/index.ts';

const noKeychain = { get: async () => undefined };

function pair(type: 'ec' | 'rsa' | 'ed25519', opt: Record<string, unknown> = {}) {
  const kp =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: (opt.curve as string) ?? 'prime256v1' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: (opt.bits as number) ?? 2048 })
        : generateKeyPairSync('ed25519');
  const pem = kp.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    priv: kp.privateKey as KeyObject,
    pem,
    get key(): ImageKey {
      return imageKeyFromPem(pem, `${type}.pub`);
    },
  };
}

const SBOM_TYPE = 'application/vnd.cyclonedx+json';
const sbom = Buffer.from(
  JSON.stringify({
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    components: [{ type: 'library', name: 'busybox', version: '1.36.1' }],
  }),
);

describe('provenance: image keys', () => {
  it('reads ECDSA P-256 and P-384, RSA 2048 and Ed25519 public keys, with a sha256 fingerprint', () => {
    assert.equal(pair('ec').key.type, 'ecdsa-p256');
    assert.equal(pair('ec', { curve: 'secp384r1' }).key.type, 'ecdsa-p384');
    assert.equal(pair('rsa').key.type, 'rsa');
    const ed = pair('ed25519').key;
    assert.equal(ed.type, 'ed25519');
    assert.match(ed.fingerprint, /^sha256:[0-9a-f]{64}$/);
  });
  it('refuses RSA under 2048 bits, other curves and non-keys: exit 2 naming the file', () => {
    for (const [pem, re] of [
      [pair('rsa', { bits: 1024 }).pem, /1024 bits is too weak/],
      [pair('ec', { curve: 'secp256k1' }).pem, /unsupported curve/],
      ['not a key', /not a PEM public key/],
    ] as const) {
      assert.throws(
        () => imageKeyFromPem(pem, 'keys/vendor.pub'),
        (e: unknown) =>
          e instanceof ImageKeyError &&
          e.exitCode === ExitCode.usage &&
          /keys\/vendor\.pub/.test(e.message) &&
          re.test(e.message),
      );
    }
  });
  it('tag names: cosign scheme and referrers tag schema, and back', () => {
    const d = `sha256:${'a'.repeat(64)}` as Digest;
    assert.equal(cosignTag(d, 'sig'), `sha256-${'a'.repeat(64)}.sig`);
    assert.equal(referrersTag(d), `sha256-${'a'.repeat(64)}`);
    assert.deepEqual(digestOfTag(`sha256-${'a'.repeat(64)}.att`), { digest: d, suffix: 'att' });
    assert.equal(digestOfTag('1.0'), undefined);
  });
});

describe('provenance against Distribution 2.8 (no referrers API: tag schema)', function () {
  this.timeout(120_000);
  let reg: RegistryServer;
  let registry: Registry;
  let dir: Awaited<ReturnType<typeof tmpDir>>;
  let images: TestImage[];
  let cache: OciLayout;
  const vendorPair = pair('ec');
  const otherPair = pair('ec');
  const vendor = { priv: vendorPair.priv, key: vendorPair.key };
  const other = { priv: otherPair.priv, key: otherPair.key };
  const img = (n: string) => images.find((i) => i.name === n)!;
  const descOf = (i: TestImage): Descriptor => ({
    mediaType: i.mediaType,
    digest: i.digest as Digest,
    size: i.size,
  });

  before(async () => {
    dir = await tmpDir('lading-prov-');
    reg = await startRegistry({ mode: 'http' });
    images = (await writeTestImages(join(dir.path, 'layout'), { largeLayerBytes: 1024 })).filter(
      (i) => i.name !== 'demo/big',
    );
    await seedRegistry(reg, join(dir.path, 'layout'), images);
    registry = new Registry(reg.host, { plainHttp: true, keychain: noKeychain });
    cache = await OciLayout.open(join(dir.path, 'cache'), { create: true });
  });
  after(async () => {
    await registry?.close();
    await reg?.stop();
    await dir?.cleanup();
  });

  /** Discover the extras of `digests`, copy them into the cache, and return them. */
  async function carried(repoName: string, digests: Digest[]): Promise<FoundExtra[]> {
    const repo = registry.repository(repoName);
    const extras = await discoverExtras(repo, digests, { source: repoName });
    for (const e of extras) {
      const nodes = await artifactNodes(
        repo,
        e.descriptor,
        e.kind === 'referrer' ? { subject: e.subject } : {},
      );
      await copyArtifact(repo, cache, nodes);
    }
    return extras;
  }

  async function check(
    repoName: string,
    digest: Digest,
    keys: ImageKey[],
    manifests = new Map<string, Descriptor>(),
  ) {
    const extras = await carried(repoName, [digest]);
    return checkSignatures({
      image: `${reg.host}/${repoName}`,
      rule: 'verify[0]',
      fetcher: cache,
      extras,
      manifests,
      keys,
      alternatives: [[digest]],
    });
  }

  it('finds a cosign signature and an SBOM referrer through the tag schema, and verifies the signature', async () => {
    const app = img('demo/app');
    const signed = await cosignSign(reg, 'demo/app', app.digest, vendor.priv);
    const ref = await attachReferrer(reg, 'demo/app', descOf(app), SBOM_TYPE, sbom);
    const extras = await carried('demo/app', [app.digest as Digest]);
    assert.deepEqual(
      extras.map((e) => [e.kind, e.descriptor.digest, e.tag]),
      [
        ['referrer', ref.digest, undefined],
        ['sig', signed.manifest.digest, cosignTag(app.digest as Digest, 'sig')],
      ],
    );
    assert.equal(extras[0]!.artifactType, SBOM_TYPE);
    const results = await check('demo/app', app.digest as Digest, [other.key, vendor.key]);
    assert.deepEqual(results, [
      {
        digest: app.digest,
        key: vendor.key.fingerprint,
        signature: signed.manifest.digest,
        scheme: 'cosign',
      },
    ]);
  });

  it('a wrong key, a replayed payload and an unparsable payload each fail with exit 3 and their reason', async () => {
    const legacy = img('demo/legacy');
    const app = img('demo/app');
    await cosignSign(reg, 'demo/legacy', legacy.digest, other.priv);
    await assert.rejects(check('demo/legacy', legacy.digest as Digest, [vendor.key]), (e: unknown) => {
      assert.ok(e instanceof UpstreamSignatureError);
      assert.equal(e.exitCode, ExitCode.verification);
      assert.match(e.message, /demo\/legacy/);
      assert.match(e.message, /verify\[0\]/);
      assert.match(e.message, /does not verify with .*another key/);
      return true;
    });
    // a valid vendor signature of demo/app copied under demo/legacy's tag: replayed
    await cosignSign(reg, 'demo/legacy', legacy.digest, vendor.priv, { payloadDigest: app.digest });
    await assert.rejects(
      check('demo/legacy', legacy.digest as Digest, [vendor.key]),
      /payload names sha256:[0-9a-f]+, not sha256:.*replayed/,
    );
    await cosignSign(reg, 'demo/legacy', legacy.digest, vendor.priv, {
      payload: Buffer.from('{"critical":'),
    });
    await assert.rejects(check('demo/legacy', legacy.digest as Digest, [vendor.key]), /payload is not JSON/);
  });

  it('no signature at all: exit 3 naming the digest', async () => {
    const multi = img('demo/multi');
    await assert.rejects(
      check('demo/multi', multi.digest as Digest, [vendor.key]),
      (e: unknown) =>
        e instanceof UpstreamSignatureError &&
        e.exitCode === 3 &&
        e.message.includes(`no signature of ${multi.digest}`),
    );
  });

  for (const dsse of [false, true]) {
    it(`a Sigstore bundle referrer (${dsse ? 'DSSE in-toto statement' : 'message signature'}) verifies with the key offline; another key does not`, async () => {
      const child = img('demo/multi').manifests![dsse ? 1 : 0]!;
      const d = child.digest as Digest;
      const manifestBytes = Buffer.from(
        await (
          await fetch(`${reg.url}/v2/demo/multi/manifests/${d}`, { headers: { accept: child.mediaType } })
        ).arrayBuffer(),
      );
      const bundle = sigstoreBundle(vendor.priv, manifestBytes, { dsse });
      const r = await attachReferrer(reg, 'demo/multi', child, SIGSTORE_BUNDLE_TYPE, bundle);
      const repo = registry.repository('demo/multi');
      const manifests = new Map([[d, { mediaType: child.mediaType, digest: d, size: child.size }]]);
      await copyArtifact(repo, cache, [{ mediaType: child.mediaType, digest: d, size: child.size }]);
      const ok = await check('demo/multi', d, [vendor.key], manifests);
      assert.deepEqual(ok, [
        { digest: d, key: vendor.key.fingerprint, signature: r.digest, scheme: 'sigstore-bundle' },
      ]);
      await assert.rejects(check('demo/multi', d, [other.key], manifests), /does not verify with key/);
    });
  }

  it('a Sigstore bundle for another image is refused as replayed', async () => {
    const [a, b] = img('demo/multi').manifests!.slice(2, 3).concat(img('demo/multi').manifests!.slice(0, 1));
    const bBytes = Buffer.from(
      await (
        await fetch(`${reg.url}/v2/demo/multi/manifests/${b!.digest}`, { headers: { accept: b!.mediaType } })
      ).arrayBuffer(),
    );
    await attachReferrer(
      reg,
      'demo/multi',
      a!,
      SIGSTORE_BUNDLE_TYPE,
      sigstoreBundle(vendor.priv, bBytes, { dsse: true }),
    );
    const manifests = new Map([
      [a!.digest, { mediaType: a!.mediaType, digest: a!.digest as Digest, size: a!.size }],
    ]);
    await copyArtifact(registry.repository('demo/multi'), cache, [...manifests.values()]);
    await assert.rejects(
      check('demo/multi', a!.digest as Digest, [vendor.key], manifests),
      /names sha256:[0-9a-f]+, not .*another image/,
    );
  });

  describe('through the referrers API (a stand-in proxy that answers it, in front of the real registry)', () => {
    let standIn: ReferrersStandIn;
    let proxied: Registry;
    before(async () => {
      standIn = await startReferrersStandIn(reg);
      proxied = new Registry(standIn.host, { plainHttp: true, keychain: noKeychain });
    });
    after(async () => {
      await proxied?.close();
      await standIn?.stop();
    });

    it('lists referrers from the API and does not look at the tag schema', async () => {
      const app = img('demo/app');
      const extras = await discoverExtras(proxied.repository('demo/app'), [app.digest as Digest]);
      assert.deepEqual(
        extras.map((e) => e.kind),
        ['referrer', 'sig'],
      );
      assert.ok(standIn.requests.some((s) => s.includes(`/referrers/${app.digest}`)));
      assert.ok(
        !standIn.requests.some((s) => s.endsWith(`/manifests/${referrersTag(app.digest as Digest)}`)),
        standIn.requests.join('\n'),
      );
    });
  });
});
