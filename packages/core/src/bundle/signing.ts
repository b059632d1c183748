import {
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { VerificationError } from '../errors/index.ts';
import { publicKeyFromPem } from './keys.ts';

/**
 * Signatures over SHA256SUMS: SHA-256 digest, DER (ASN.1) encoded ECDSA signature — exactly what
 * `openssl dgst -sha256 -sign key -out SHA256SUMS.sig SHA256SUMS` writes and `-verify` checks.
 *
 * ECDSA signatures are deterministic (RFC 6979 nonces), so the same key and SHA256SUMS give the
 * same SHA256SUMS.sig and a signed bundle stays byte-identical between builds. The curve point
 * multiplication k·G is done by OpenSSL (through ECDH); only scalar arithmetic mod n is done here.
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

interface CurveParams {
  /** Name for crypto.createECDH. */
  ecdh: string;
  n: bigint;
  bits: number;
}

const CURVES: Record<string, CurveParams> = {
  prime256v1: {
    ecdh: 'prime256v1',
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    bits: 256,
  },
  secp384r1: {
    ecdh: 'secp384r1',
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    bits: 384,
  },
  secp521r1: {
    ecdh: 'secp521r1',
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    bits: 521,
  },
};

function toBigInt(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
}

function toBytes(v: bigint, len: number): Buffer {
  return Buffer.from(v.toString(16).padStart(len * 2, '0'), 'hex');
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

/** RFC 6979 bits2int: the leftmost `qbits` bits of `b` as an integer. */
function bits2int(b: Uint8Array, qbits: number): bigint {
  const v = toBigInt(b);
  const blen = b.length * 8;
  return blen > qbits ? v >> BigInt(blen - qbits) : v;
}

function derInteger(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return Buffer.concat([Buffer.from([0x02]), derLength(b.length), b]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x >>= 8) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** ECDSA-SHA256 with an RFC 6979 deterministic nonce; DER (r, s). */
function signEcdsaDeterministic(data: Uint8Array, key: KeyObject, curve: CurveParams): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const d = toBigInt(Buffer.from(jwk.d!, 'base64url'));
  const { n, bits } = curve;
  const rlen = Math.ceil(bits / 8);
  const h1 = createHash('sha256').update(data).digest();
  const e = bits2int(h1, bits);
  const x = toBytes(d, rlen);
  const h1o = toBytes(bits2int(h1, bits) % n, rlen);
  const hmac = (k: Buffer, ...parts: Buffer[]) => {
    const m = createHmac('sha256', k);
    for (const p of parts) m.update(p);
    return m.digest();
  };
  let V = Buffer.alloc(32, 0x01);
  let K = Buffer.alloc(32, 0x00);
  K = hmac(K, V, Buffer.from([0x00]), x, h1o);
  V = hmac(K, V);
  K = hmac(K, V, Buffer.from([0x01]), x, h1o);
  V = hmac(K, V);
  const ecdh = createECDH(curve.ecdh);
  for (;;) {
    let T = Buffer.alloc(0);
    while (T.length < rlen) {
      V = hmac(K, V);
      T = Buffer.concat([T, V]);
    }
    const k = bits2int(T, bits);
    if (k >= 1n && k < n) {
      ecdh.setPrivateKey(toBytes(k, rlen));
      const point = ecdh.getPublicKey(); // 04 || X || Y, computed by OpenSSL
      const r = toBigInt(point.subarray(1, 1 + (point.length - 1) / 2)) % n;
      const s = (modPow(k, n - 2n, n) * ((e + r * d) % n)) % n;
      if (r !== 0n && s !== 0n) {
        const body = Buffer.concat([derInteger(r), derInteger(s)]);
        return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
      }
    }
    K = hmac(K, V, Buffer.from([0x00]));
    V = hmac(K, V);
  }
}

/**
 * Sign bytes with a private key (SHA-256, DER signature). ECDSA on P-256/P-384/P-521 uses
 * deterministic RFC 6979 nonces (same input, same signature); RSA uses PKCS#1 v1.5 (also
 * deterministic). Every ECDSA signature is verified before it is returned.
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
