import { type CallOptions, type Fetcher, fetchAll } from '../content/index.ts';
import type { Digest } from '../digest/index.ts';
import { type Descriptor, MediaType, parseManifest } from '../model/index.ts';
import {
  COSIGN_SIGNATURE_ANNOTATION,
  SIGSTORE_BUNDLE_MEDIA_TYPE,
  simpleSigningDigest,
  verifyWithImageKey,
} from './cosign.ts';
import type { FoundExtra } from './discover.ts';
import { UpstreamSignatureError } from './errors.ts';
import type { ImageKey } from './keys.ts';

export type SignatureScheme = 'cosign' | 'sigstore-bundle';

/** One valid upstream signature (lading.json `images[].signatures[]`). */
export interface SignatureResult {
  /** The manifest digest the signature covers (the image, a platform manifest or the upstream index). */
  digest: Digest;
  /** Fingerprint of the key that verified it. */
  key: Digest;
  /** Digest of the manifest that carries the signature (the `.sig` manifest or the bundle referrer). */
  signature: Digest;
  scheme: SignatureScheme;
}

export interface SignatureCheck {
  /** Image reference, for messages. */
  image: string;
  /** The rule, for messages (`verify[0] (keys/vendor.pub)`). */
  rule: string;
  /** Where the signature manifests, payloads and signed manifests are read (cache or bundle). */
  fetcher: Fetcher;
  /** The image's supply-chain artifacts (only `sig` and Sigstore-bundle referrers are used). */
  extras: readonly Pick<FoundExtra, 'kind' | 'subject' | 'descriptor'>[];
  /** Descriptors of the manifests a signature may cover (the Sigstore message signature needs their bytes). */
  manifests: ReadonlyMap<string, Descriptor>;
  keys: readonly ImageKey[];
  /**
   * Ways to satisfy the rule, in order: each is a list of digests that ALL need a valid signature
   * (`[[index]]`, or `[[upstream index], [platform 1, platform 2]]` for a filtered index).
   */
  alternatives: readonly (readonly Digest[])[];
}

const MAX_SIG_BYTES = 4 * 1024 * 1024;

/** The valid signatures of `digest` among the extras, with the reasons the others failed. */
async function signaturesOf(
  c: SignatureCheck,
  digest: Digest,
  opts: CallOptions,
): Promise<{ ok: SignatureResult[]; reasons: string[] }> {
  const ok: SignatureResult[] = [];
  const reasons: string[] = [];
  const keysText = c.keys.map((k) => k.fingerprint).join(', ');
  const candidates = c.extras.filter(
    (e) => e.subject === digest && (e.kind === 'sig' || e.kind === 'referrer'),
  );
  for (const e of candidates) {
    const where = `${e.kind === 'sig' ? 'cosign signature' : 'referrer'} ${e.descriptor.digest}`;
    let parsed: ReturnType<typeof parseManifest>;
    try {
      const bytes = await fetchAll(c.fetcher, e.descriptor, { ...opts, source: where });
      parsed = parseManifest(bytes, e.descriptor.mediaType, where);
    } catch (err) {
      reasons.push(`${where}: ${(err as Error).message}`);
      continue;
    }
    if (parsed.kind !== 'manifest') continue;
    const m = parsed.manifest;
    if (e.kind === 'sig') {
      for (const layer of m.layers) {
        const sigB64 = layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION];
        if (sigB64 === undefined) continue;
        try {
          const payload = await fetchAll(c.fetcher, layer, {
            ...opts,
            limit: MAX_SIG_BYTES,
            source: `${where} payload`,
          });
          let named: Digest;
          try {
            named = simpleSigningDigest(payload);
          } catch (err) {
            reasons.push(`${where}: ${(err as Error).message}`);
            continue;
          }
          if (named !== digest) {
            reasons.push(
              `${where}: its payload names ${named}, not ${digest} (a signature replayed from another image)`,
            );
            continue;
          }
          const sig = Buffer.from(sigB64, 'base64');
          const key = c.keys.find((k) => verifyWithImageKey(payload, sig, k));
          if (key)
            ok.push({ digest, key: key.fingerprint, signature: e.descriptor.digest, scheme: 'cosign' });
          else reasons.push(`${where}: signature does not verify with ${keysText} (signed with another key)`);
        } catch (err) {
          reasons.push(`${where}: ${(err as Error).message}`);
        }
      }
    } else {
      const type = m.artifactType ?? m.config.mediaType;
      const layer = m.layers.find((l) => l.mediaType.startsWith('application/vnd.dev.sigstore.bundle'));
      if (!layer || !(type.startsWith('application/vnd.dev.sigstore.bundle') || type === MediaType.ociEmpty))
        continue;
      const signed = c.manifests.get(digest);
      if (!signed) {
        reasons.push(`${where}: the signed manifest ${digest} is not at hand`);
        continue;
      }
      try {
        const bundle = await fetchAll(c.fetcher, layer, {
          ...opts,
          limit: MAX_SIG_BYTES,
          source: `${where} bundle`,
        });
        const manifest = await fetchAll(c.fetcher, signed, { ...opts, source: digest });
        // loaded on first use: @sigstore/verify is only needed when a Sigstore bundle is carried
        const { verifySigstoreBundle } = await import('./sigstore.ts');
        let last = '';
        let good: ImageKey | undefined;
        for (const k of c.keys) {
          try {
            verifySigstoreBundle(bundle, k, digest, manifest);
            good = k;
            break;
          } catch (err) {
            last = (err as Error).message;
          }
        }
        if (good)
          ok.push({
            digest,
            key: good.fingerprint,
            signature: e.descriptor.digest,
            scheme: 'sigstore-bundle',
          });
        else reasons.push(`${where}: ${last}`);
      } catch (err) {
        reasons.push(`${where}: ${(err as Error).message}`);
      }
    }
  }
  if (ok.length === 0 && reasons.length === 0) {
    reasons.push(
      `no signature of ${digest} (neither a cosign ${COSIGN_TAG_HINT} tag nor a ${SIGSTORE_BUNDLE_MEDIA_TYPE} referrer)`,
    );
  }
  return { ok, reasons };
}

const COSIGN_TAG_HINT = 'sha256-<hex>.sig';

/**
 * Check that the image meets its rule: one alternative of `alternatives` whose every digest has
 * a valid signature by one of the keys. Returns those signatures; throws UpstreamSignatureError
 * (exit 3) naming image, rule and every reason otherwise.
 */
export async function checkSignatures(c: SignatureCheck, opts: CallOptions = {}): Promise<SignatureResult[]> {
  const reasons: string[] = [];
  for (const alt of c.alternatives) {
    const results: SignatureResult[] = [];
    let met = true;
    for (const d of alt) {
      const r = await signaturesOf(c, d, opts);
      if (r.ok.length === 0) {
        met = false;
        for (const x of r.reasons) if (!reasons.includes(x)) reasons.push(x);
      }
      results.push(...r.ok);
    }
    if (met) return results;
  }
  throw new UpstreamSignatureError(c.image, c.rule, reasons);
}
