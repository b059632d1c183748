import { verify as cryptoVerify } from 'node:crypto';
import { type Digest, isDigest } from '../digest/index.ts';
import type { ImageKey } from './keys.ts';

/** cosign's tag scheme and simple-signing format, and the OCI referrers tag schema. */

export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGSTORE_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export type CosignSuffix = 'sig' | 'att' | 'sbom';
export const COSIGN_SUFFIXES: readonly CosignSuffix[] = ['sig', 'att', 'sbom'];

/** `sha256:<hex>` → `sha256-<hex>.sig` (cosign's tag for the signatures of that digest). */
export function cosignTag(digest: Digest, suffix: CosignSuffix): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

/** `sha256:<hex>` → `sha256-<hex>` (OCI referrers tag schema: an index of the referrers). */
export function referrersTag(digest: Digest): string {
  return digest.replace(':', '-');
}

/** The digest a cosign or referrers tag is about (`sha256-<hex>[.sig]` → `sha256:<hex>`), if it is one. */
export function digestOfTag(tag: string): { digest: Digest; suffix?: CosignSuffix } | undefined {
  const m = /^(sha256|sha512)-([a-f0-9]{64}|[a-f0-9]{128})(?:\.(sig|att|sbom))?$/.exec(tag);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  if (!isDigest(digest)) return undefined;
  return m[3] ? { digest: digest as Digest, suffix: m[3] as CosignSuffix } : { digest: digest as Digest };
}

/**
 * Read a simple-signing payload (`{"critical":{"image":{"docker-manifest-digest":…},…},…}`) and
 * return the digest it names. Throws an Error whose message is the reason it does not parse.
 */
export function simpleSigningDigest(payload: Uint8Array): Digest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new Error('the simple-signing payload is not JSON');
  }
  const critical = (json as { critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } } })
    ?.critical;
  const digest = critical?.image?.['docker-manifest-digest'];
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new Error('the simple-signing payload has no critical.image.docker-manifest-digest');
  }
  if (critical?.type !== undefined && critical.type !== 'cosign container image signature') {
    throw new Error(`the simple-signing payload has type ${String(critical.type)}`);
  }
  return digest as Digest;
}

/**
 * Whether `signature` (DER for ECDSA, raw for Ed25519 and RSA PKCS#1 v1.5) is `key`'s signature
 * over `data`, as cosign makes them: SHA-256 (SHA-384 also accepted for P-384), Ed25519 pure.
 */
export function verifyWithImageKey(data: Uint8Array, signature: Uint8Array, key: ImageKey): boolean {
  const tryOne = (alg: string | null): boolean => {
    try {
      return cryptoVerify(
        alg,
        data,
        key.type.startsWith('ecdsa') ? { key: key.key, dsaEncoding: 'der' } : key.key,
        signature,
      );
    } catch {
      return false;
    }
  };
  if (key.type === 'ed25519') return tryOne(null);
  if (key.type === 'ecdsa-p384') return tryOne('sha384') || tryOne('sha256');
  return tryOne('sha256');
}
