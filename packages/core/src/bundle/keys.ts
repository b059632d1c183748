import {
  createCipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  pbkdf2Sync,
  randomBytes,
} from 'node:crypto';
import { lstat, mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Digest } from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import { OutputExistsError, writeFileAtomic } from '../util/atomic-file.ts';

/**
 * Signing keys: ECDSA P-256 by default, private keys as PKCS#8 PEM (encrypted when a passphrase is
 * given: PBES2, PBKDF2-HMAC-SHA256 with `KEY_KDF_ITERATIONS` iterations, aes-256-cbc — what
 * `openssl pkey -passin` reads), public keys as SPKI PEM — what `openssl dgst -verify` reads.
 */

/**
 * PBKDF2-HMAC-SHA256 iterations for an encrypted private key: OWASP's current guidance (600,000).
 * Node's own PEM encryption uses OpenSSL's default of 2,048, too cheap to guess passphrases against.
 */
export const KEY_KDF_ITERATIONS = 600_000;

/** RSA keys shorter than this are refused (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;

/** The environment variable the CLIs read the private key passphrase from. */
export const KEY_PASSPHRASE_ENV = 'LADING_KEY_PASSPHRASE';

export class KeyError extends InvalidInputError {
  override readonly code: string;
  /** The key file (or `<inline PEM>`). */
  readonly file: string;
  constructor(code: string, file: string, message: string, hint: string, cause?: unknown) {
    super(message, { hint, cause });
    this.code = code;
    this.file = file;
  }
}

export interface GeneratedKeyPair {
  /** PKCS#8 PEM; `-----BEGIN ENCRYPTED PRIVATE KEY-----` when a passphrase was given. */
  privateKeyPem: string;
  /** SPKI PEM. */
  publicKeyPem: string;
}

/** Generate an ECDSA P-256 key pair. */
export function generateKeyPair(opts: { passphrase?: string } = {}): GeneratedKeyPair {
  const passphrase = opts.passphrase;
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  const privateKeyPem =
    passphrase !== undefined && passphrase !== ''
      ? encryptPkcs8(privateKey, passphrase)
      : pem('PRIVATE KEY', privateKey);
  privateKey.fill(0);
  return { privateKeyPem, publicKeyPem: publicKey };
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

// Minimal DER for EncryptedPrivateKeyInfo (RFC 5958) with PBES2 (RFC 8018).
function derLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...body: Buffer[]) => {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.from([tag]), derLen(b.length), b]);
};
const seq = (...body: Buffer[]) => tlv(0x30, ...body);
const oid = (hex: string) => Buffer.from(hex, 'hex');
const derUint = (v: number) => {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return tlv(0x02, Buffer.from(hex, 'hex'));
};
const OID_PBES2 = oid('06092a864886f70d01050d');
const OID_PBKDF2 = oid('06092a864886f70d01050c');
const OID_HMAC_SHA256 = oid('06082a864886f70d0209');
const OID_AES256_CBC = oid('060960864801650304012a');

/**
 * Encrypt a PKCS#8 DER private key as `ENCRYPTED PRIVATE KEY` PEM: PBES2 with
 * PBKDF2-HMAC-SHA256 (`iterations`, 16-byte random salt) and aes-256-cbc — readable by
 * `openssl pkey -passin` and Node's createPrivateKey.
 */
export function encryptPkcs8(pkcs8Der: Buffer, passphrase: string, iterations = KEY_KDF_ITERATIONS): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(passphrase, salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  key.fill(0);
  const algorithm = seq(
    OID_PBES2,
    seq(
      seq(OID_PBKDF2, seq(tlv(0x04, salt), derUint(iterations), seq(OID_HMAC_SHA256, Buffer.from([5, 0])))),
      seq(OID_AES256_CBC, tlv(0x04, iv)),
    ),
  );
  return pem('ENCRYPTED PRIVATE KEY', seq(algorithm, tlv(0x04, encrypted)));
}

/**
 * Write `PREFIX.key` (mode 0600) and `PREFIX.pub`. A PREFIX that already ends in `.key` or `.pub`
 * loses it (`release.key` → `release.key` and `release.pub`, not `release.key.key`); missing
 * folders are created (0700). Refuses to replace existing files unless `overwrite`, and then
 * writes neither. Each file appears complete or not at all. File-system failures are
 * InvalidInputError naming the path.
 */
export async function writeKeyPair(
  prefix: string,
  opts: { passphrase?: string; overwrite?: boolean } = {},
): Promise<{ privateKeyPath: string; publicKeyPath: string; fingerprint: Digest; createdDir?: string }> {
  const base = keyPrefix(prefix);
  const privateKeyPath = `${base}.key`;
  const publicKeyPath = `${base}.pub`;
  const overwrite = opts.overwrite ?? false;
  if (!overwrite) {
    for (const p of [privateKeyPath, publicKeyPath]) {
      if (await exists(p))
        throw new KeyError(
          'KEY_EXISTS',
          p,
          `${p} already exists`,
          'choose another --output, or --force to replace it',
        );
    }
  }
  const dir = dirname(privateKeyPath);
  let createdDir: string | undefined;
  try {
    createdDir = await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fsError(err, dir, 'create the folder');
  }
  const pair = generateKeyPair(opts.passphrase === undefined ? {} : { passphrase: opts.passphrase });
  await writeAtomic(privateKeyPath, pair.privateKeyPem, 0o600, overwrite);
  await writeAtomic(publicKeyPath, pair.publicKeyPem, 0o644, overwrite);
  return {
    privateKeyPath,
    publicKeyPath,
    fingerprint: publicKeyFingerprint(pair.publicKeyPem),
    ...(createdDir ? { createdDir } : {}),
  };
}

/** `release.key`, `release.pub` and `release` all name the pair `release`. */
function keyPrefix(prefix: string): string {
  if (!prefix || prefix.endsWith('/') || basename(prefix) === '.' || basename(prefix) === '..')
    throw new KeyError(
      'KEY_PREFIX_INVALID',
      prefix,
      `"${prefix}" is a folder, not a key file prefix`,
      'give a path prefix such as keys/release: it writes keys/release.key and keys/release.pub',
    );
  const m = /^(.+)\.(key|pub)$/.exec(prefix);
  return m ? (m[1] as string) : prefix;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function fsError(err: unknown, path: string, what: string): Error {
  const code = (err as NodeJS.ErrnoException)?.code;
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a file is in the way'
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'ENOSPC'
            ? 'no space left'
            : ((err as Error)?.message ?? String(err));
  return new KeyError(
    'KEY_WRITE_FAILED',
    path,
    `cannot ${what} ${path}: ${why}`,
    'choose another --output',
    err,
  );
}

async function writeAtomic(path: string, text: string, mode: number, overwrite: boolean): Promise<void> {
  try {
    await writeFileAtomic(path, text, { mode, overwrite });
  } catch (err) {
    if (err instanceof OutputExistsError) {
      throw new KeyError(
        'KEY_EXISTS',
        path,
        `${path} already exists`,
        'choose another --output, or --force to replace it',
      );
    }
    throw fsError(err, path, 'write');
  }
}

function isPem(source: string | Uint8Array): boolean {
  const head = typeof source === 'string' ? source : Buffer.from(source).subarray(0, 4096).toString('latin1');
  return head.includes('-----BEGIN ');
}

async function readKeySource(source: string | Uint8Array): Promise<{ pem: string; file: string }> {
  if (isPem(source)) {
    return {
      pem: typeof source === 'string' ? source : Buffer.from(source).toString('utf8'),
      file: '<inline PEM>',
    };
  }
  const file = typeof source === 'string' ? source : Buffer.from(source).toString('utf8');
  try {
    return { pem: await readFile(file, 'utf8'), file };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KeyError(
      code === 'ENOENT' ? 'KEY_NOT_FOUND' : 'KEY_UNREADABLE',
      file,
      `cannot read key file ${file}: ${code ?? String(err)}`,
      'give the path of a PEM key file (lading-build keys generate writes one)',
      err,
    );
  }
}

/** `openssl ecparam -genkey` writes an `EC PARAMETERS` block before the key: drop it. */
function stripEcParameters(pem: string): string {
  return pem.replace(/-----BEGIN EC PARAMETERS-----[\s\S]*?-----END EC PARAMETERS-----\s*/g, '');
}

function checkKeyType(key: KeyObject, file: string): void {
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'rsa') {
    throw new KeyError(
      'INVALID_KEY',
      file,
      `${file}: unsupported key type ${type ?? 'unknown'}`,
      'use an ECDSA (P-256 recommended) or RSA key; openssl dgst -sha256 must be able to verify with it',
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (type === 'rsa' && bits < MIN_RSA_BITS) {
    throw new KeyError(
      'KEY_TOO_WEAK',
      file,
      `${file}: an RSA key of ${bits} bits is too short (at least ${MIN_RSA_BITS})`,
      'use lading-build keys generate (ECDSA P-256), or an RSA key of 2048 bits or more',
    );
  }
}

/**
 * Load a private key from a PEM string/buffer or from a file path. PKCS#8 (plain or
 * encrypted), SEC1 (`EC PRIVATE KEY`) and PKCS#1 RSA keys are accepted.
 * Errors: KEY_NOT_FOUND, KEY_PASSPHRASE (encrypted and no or wrong passphrase), INVALID_KEY.
 */
export async function loadPrivateKey(source: string | Uint8Array, passphrase?: string): Promise<KeyObject> {
  const { pem, file } = await readKeySource(source);
  return privateKeyFromPem(pem, file, passphrase);
}

/** Synchronous core of `loadPrivateKey` for PEM text already in memory. */
export function privateKeyFromPem(pem: string, file = '<inline PEM>', passphrase?: string): KeyObject {
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new KeyError(
      'KEY_PASSPHRASE',
      file,
      `${file} is encrypted and no passphrase was given`,
      `set ${KEY_PASSPHRASE_ENV} to the key's passphrase`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: stripEcParameters(pem),
      format: 'pem',
      ...(passphrase !== undefined && passphrase !== '' ? { passphrase } : {}),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (encrypted || /PASSPHRASE|DECRYPT/i.test(code)) {
      throw new KeyError(
        'KEY_PASSPHRASE',
        file,
        `cannot decrypt ${file}: wrong passphrase`,
        `set ${KEY_PASSPHRASE_ENV} to the passphrase the key was created with`,
        err,
      );
    }
    throw new KeyError(
      'INVALID_KEY',
      file,
      `${file} is not a private key Lading can read`,
      'give a PEM private key (PKCS#8, as written by lading-build keys generate)',
      err,
    );
  }
  checkKeyType(key, file);
  return key;
}

/**
 * Load a public key (SPKI PEM) from a file or PEM text. A private key there is refused
 * (KEY_IS_PRIVATE, exit 2): the release key belongs on the build side, and verifying with it
 * means it was carried across. (A KeyObject, private or public, gives its public half.)
 */
export async function loadPublicKey(source: string | Uint8Array | KeyObject): Promise<KeyObject> {
  if (typeof source === 'object' && 'asymmetricKeyType' in source) return toPublic(source);
  const { pem, file } = await readKeySource(source as string | Uint8Array);
  if (/-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----/.test(pem)) {
    throw new KeyError(
      'KEY_IS_PRIVATE',
      file,
      `${file} is a private key: verification needs the public key`,
      'give the public key (release.pub; openssl pkey -in release.key -pubout -out release.pub makes it) — and keep the private key off the site: it signs bundles',
    );
  }
  return publicKeyFromPem(pem, file);
}

export function publicKeyFromPem(pem: string, file = '<inline PEM>'): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: stripEcParameters(pem), format: 'pem' });
  } catch (err) {
    throw new KeyError(
      'INVALID_KEY',
      file,
      `${file} is not a public key Lading can read`,
      'give the SPKI PEM public key (PREFIX.pub from lading-build keys generate)',
      err,
    );
  }
  checkKeyType(key, file);
  return key;
}

function toPublic(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** sha256 of the DER SubjectPublicKeyInfo: a stable id for a key (shown by inspect/verify). */
export function publicKeyFingerprint(key: KeyObject | string): Digest {
  const k = typeof key === 'string' ? publicKeyFromPem(key) : toPublic(key);
  const der = k.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(der).digest('hex')}` as Digest;
}
