import { createHash } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { type TrustMaterial, toSignedEntity, Verifier } from '@sigstore/verify';
import type { Digest } from '../digest/index.ts';
import type { ImageKey } from './keys.ts';

/**
 * A Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) attached to an image as a
 * referrer, checked offline with a public key: no transparency log, no certificate authority, no
 * timestamp (`@sigstore/verify` with empty trust material and thresholds of 0). What is signed:
 * - a DSSE envelope whose payload is an in-toto statement naming the image digest in `subject`
 *   (what `cosign sign --new-bundle-format` makes), or
 * - a message signature over the image manifest bytes themselves (messageDigest = the image digest).
 * Throws an Error whose message is the reason when it does not verify.
 */
export function verifySigstoreBundle(
  bundleBytes: Uint8Array,
  key: ImageKey,
  digest: Digest,
  manifestBytes: Uint8Array,
): void {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bundleBytes).toString('utf8'));
  } catch {
    throw new Error('the Sigstore bundle is not JSON');
  }
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(json);
  } catch (err) {
    throw new Error(`the Sigstore bundle does not parse (${(err as Error).message})`);
  }
  const hex = digest.slice(digest.indexOf(':') + 1);
  const content = bundle.content;
  if (content.$case === 'dsseEnvelope') {
    const env = content.dsseEnvelope;
    if (env.payloadType !== 'application/vnd.in-toto+json') {
      throw new Error(`the DSSE payload type is ${env.payloadType}, not an in-toto statement`);
    }
    let subjects: Array<{ digest?: Record<string, string> }>;
    try {
      const stmt = JSON.parse(Buffer.from(env.payload).toString('utf8')) as { subject?: unknown };
      subjects = Array.isArray(stmt.subject) ? (stmt.subject as typeof subjects) : [];
    } catch {
      throw new Error('the DSSE payload is not JSON');
    }
    if (!subjects.some((s) => s?.digest?.sha256 === hex)) {
      const named = subjects.map((s) => s?.digest?.sha256).filter(Boolean);
      throw new Error(
        `the in-toto statement names ${named.length ? named.map((h) => `sha256:${h}`).join(', ') : 'no digest'}, not ${digest} (a signature of another image)`,
      );
    }
  } else {
    const md = content.messageSignature.messageDigest;
    const got = md ? Buffer.from(md.digest).toString('hex') : '';
    if (got !== hex)
      throw new Error(
        `the message signature names sha256:${got || '?'}, not ${digest} (a signature of another image)`,
      );
    if (createHash('sha256').update(manifestBytes).digest('hex') !== hex) {
      throw new Error(`the manifest bytes do not hash to ${digest}`);
    }
  }
  const trust: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => ({ publicKey: key.key, validFor: () => true }),
  };
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new Error(
      'the Sigstore bundle carries a certificate, not a key hint (keyless signatures need the Sigstore trust root, which this offline check does not use)',
    );
  }
  try {
    // Offline: the transparency-log entries and timestamps are not checked (no log keys here).
    const entity = toSignedEntity(bundle, Buffer.from(manifestBytes));
    verifier.verify({ ...entity, tlogEntries: [], timestamps: [] });
  } catch (err) {
    throw new Error(
      `the Sigstore bundle does not verify with key ${key.fingerprint} (${(err as Error).message})`,
    );
  }
}
