import { createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { type ECDSA, ecdsa } from '@noble/curves/abstract/weierstrass.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { VerificationError } from '../errors/index.ts';
import { publicKeyFromPem } from './keys.ts';

/**
 * Signatures over SHA256SUMS: SHA-256 digest, DER (ASN.1) encoded ECDSA signature — exactly what
 * `openssl dgst -sha256 -sign key -out SHA256SUMS.sig SHA256SUMS` writes and `-verify` checks.
 *
 * ECDSA signatures are made by `@noble/curves` (audited, constant-time scalar arithmetic) with
 * deterministic RFC 6979 nonces (HMAC-DRBG over SHA-256 on every curve) and low-s, so the same
 * key and SHA256SUMS give the same SHA256SUMS.sig and a signed bundle stays byte-identical
 * between builds. Every signature is checked by OpenSSL (Node's crypto.verify) before it is returned.
 */

export class SignatureError extends VerificationError {
  override readonly code = 'SIGNATURE_INVALID';
  readonly subject: string;
  constructor(subject: string, reason = 'the signature does not match') {
    super(`${subject}: ${reason}`, {
      hint: 'the bundle was changed after signing, or it was signed with another key; check you have the right public key',
    });
    this.subject = subject;
  }
}

/** ECDSA with SHA-256 for the message digest and for the RFC 6979 nonce on every curve. */
const CURVES: Record<string, { ecdsa: ECDSA; bytes: number }> = {
  prime256v1: { ecdsa: ecdsa(p256.Point, sha256), bytes: 32 },
  secp384r1: { ecdsa: ecdsa(p384.Point, sha256), bytes: 48 },
  secp521r1: { ecdsa: ecdsa(p521.Point, sha256), bytes: 66 },
};

/** DER length at `at`: [length, offset of the content]. */
function derLength(b: Buffer, at: number): [number, number] {
  const first = b[at] as number;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (b[at + 1 + i] as number);
  return [len, at + 1 + n];
}

/**
 * The private scalar of an EC key, as bytes (never a string): from its SEC1 DER
 * `ECPrivateKey ::= SEQUENCE { version INTEGER, privateKey OCTET STRING, … }`.
 * The caller zeroes it after use.
 */
function privateScalar(key: KeyObject, bytes: number): Uint8Array {
  const der = key.export({ type: 'sec1', format: 'der' });
  try {
    let [, at] = derLength(der, 1); // inside the SEQUENCE
    if (der[at] !== 0x02) throw new Error('no version');
    const [vlen, vat] = derLength(der, at + 1);
    at = vat + vlen;
    if (der[at] !== 0x04) throw new Error('no private key');
    const [len, kat] = derLength(der, at + 1);
    const d = new Uint8Array(bytes);
    // Left-pad (or take the low bytes of) the scalar to the curve's size.
    const src = der.subarray(kat, kat + len);
    const take = src.subarray(Math.max(0, src.length - bytes));
    d.set(take, bytes - take.length);
    return d;
  } finally {
    der.fill(0);
  }
}

/** ECDSA-SHA256 with an RFC 6979 deterministic nonce and low-s; DER (r, s). */
function signEcdsaDeterministic(
  data: Uint8Array,
  key: KeyObject,
  curve: { ecdsa: ECDSA; bytes: number },
): Buffer {
  const d = privateScalar(key, curve.bytes);
  try {
    return Buffer.from(curve.ecdsa.sign(data, d, { prehash: true, lowS: true, format: 'der' }));
  } finally {
    d.fill(0);
  }
}

/**
 * Sign bytes with a private key (SHA-256, DER signature). ECDSA on P-256/P-384/P-521 uses
 * deterministic RFC 6979 nonces and low-s (same input, same signature); RSA uses PKCS#1 v1.5
 * (also deterministic). Every ECDSA signature is verified by OpenSSL before it is returned.
 */
export function sign(data: Uint8Array | string, privateKey: KeyObject): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const curve =
    privateKey.asymmetricKeyType === 'ec'
      ? CURVES[privateKey.asymmetricKeyDetails?.namedCurve ?? '']
      : undefined;
  if (!curve) return cryptoSign('sha256', bytes, { key: privateKey, dsaEncoding: 'der' });
  const sig = signEcdsaDeterministic(bytes, privateKey, curve);
  if (!cryptoVerify('sha256', bytes, { key: createPublicKey(privateKey), dsaEncoding: 'der' }, sig)) {
    throw new Error('internal error: the deterministic ECDSA signature does not verify');
  }
  return sig;
}

function publicKeyOf(key: KeyObject | string | Uint8Array): KeyObject {
  if (typeof key === 'string') return publicKeyFromPem(key);
  if (key instanceof Uint8Array) return publicKeyFromPem(Buffer.from(key).toString('utf8'));
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** Whether `signature` is a valid signature of `data` for the public key (PEM or KeyObject). */
export function verifySignature(
  data: Uint8Array | string,
  signature: Uint8Array,
  publicKey: KeyObject | string | Uint8Array,
): boolean {
  const key = publicKeyOf(publicKey);
  try {
    return cryptoVerify(
      'sha256',
      typeof data === 'string' ? Buffer.from(data) : data,
      { key, dsaEncoding: 'der' },
      signature,
    );
  } catch {
    // Malformed DER and similar: not a valid signature.
    return false;
  }
}

/** Like `verifySignature` but throws a SignatureError naming `subject` when it does not verify. */
export function assertSignature(
  data: Uint8Array | string,
  signature: Uint8Array,
  publicKey: KeyObject | string | Uint8Array,
  subject = 'SHA256SUMS.sig',
): void {
  if (signature.length === 0) throw new SignatureError(subject, 'the signature is empty');
  if (!verifySignature(data, signature, publicKey)) throw new SignatureError(subject);
}
