import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { publicKeyFingerprint } from '../bundle/keys.ts';
import type { Digest } from '../digest/index.ts';
import { ImageKeyError } from './errors.ts';

/** A vendor's public key for image signatures: ECDSA P-256/P-384, RSA >= 2048 bits, Ed25519. */
export interface ImageKey {
  /** Where it came from (file path), for messages. */
  source: string;
  key: KeyObject;
  /** sha256 of the DER SubjectPublicKeyInfo (as for the bundle key). */
  fingerprint: Digest;
  type: 'ecdsa-p256' | 'ecdsa-p384' | 'rsa' | 'ed25519';
}

const HINT = 'give a PEM public key (cosign.pub): ECDSA P-256 or P-384, RSA of 2048 bits or more, or Ed25519';

/** Parse a PEM public key (a private key's public half is not accepted: give the .pub). */
export function imageKeyFromPem(pem: string, source = '<inline PEM>'): ImageKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new ImageKeyError(source, `${source} is not a PEM public key`, HINT, err);
  }
  const details = key.asymmetricKeyDetails ?? {};
  let type: ImageKey['type'];
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (details.namedCurve === 'prime256v1') type = 'ecdsa-p256';
      else if (details.namedCurve === 'secp384r1') type = 'ecdsa-p384';
      else throw new ImageKeyError(source, `${source}: unsupported curve ${details.namedCurve ?? '?'}`, HINT);
      break;
    case 'rsa':
      if ((details.modulusLength ?? 0) < 2048) {
        throw new ImageKeyError(
          source,
          `${source}: RSA key of ${details.modulusLength ?? 0} bits is too weak`,
          'RSA keys need 2048 bits or more',
        );
      }
      type = 'rsa';
      break;
    case 'ed25519':
      type = 'ed25519';
      break;
    default:
      throw new ImageKeyError(
        source,
        `${source}: unsupported key type ${key.asymmetricKeyType ?? '?'}`,
        HINT,
      );
  }
  return { source, key, fingerprint: publicKeyFingerprint(key), type };
}

/** Read a PEM public key file. */
export async function loadImageKey(path: string): Promise<ImageKey> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new ImageKeyError(path, `cannot read key ${path}: ${(err as Error).message}`, HINT, err);
  }
  return imageKeyFromPem(pem, path);
}
