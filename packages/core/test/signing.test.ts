import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createECDH, createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertSignature,
  generateKeyPair,
  KeyError,
  loadPrivateKey,
  loadPublicKey,
  publicKeyFingerprint,
  SignatureError,
  sign,
  verifySignature,
  writeKeyPair,
} from '../src/bundle/index.ts';
import { VerificationError } from '../src/errors/index.ts';

function openssl(args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('bundle signing and keys', () => {
  let dir: string;
  const data = Buffer.from(`${'a'.repeat(64)}  oci-layout\n${'b'.repeat(64)}  lading.json\n`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-sign-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates P-256 PKCS#8/SPKI keys whose DER signature openssl verifies, and rejects a flipped byte', async () => {
    const pair = generateKeyPair();
    assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(pair.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
    const key = await loadPrivateKey(pair.privateKeyPem);
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');

    const sig = sign(data, key);
    assert.equal(sig[0], 0x30, 'DER SEQUENCE');
    await writeFile(join(dir, 'SHA256SUMS'), data);
    await writeFile(join(dir, 'SHA256SUMS.sig'), sig);
    await writeFile(join(dir, 'release.pub'), pair.publicKeyPem);
    const ok = openssl(
      ['dgst', '-sha256', '-verify', 'release.pub', '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      dir,
    );
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, /Verified OK/);

    const flipped = Buffer.from(data);
    flipped[3] = flipped[3]! ^ 0x01;
    await writeFile(join(dir, 'SHA256SUMS'), flipped);
    const bad = openssl(
      ['dgst', '-sha256', '-verify', 'release.pub', '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      dir,
    );
    assert.notEqual(bad.status, 0, 'openssl must reject the modified file');

    assert.equal(verifySignature(data, sig, pair.publicKeyPem), true);
    assert.equal(verifySignature(flipped, sig, pair.publicKeyPem), false);
    assert.doesNotThrow(() => assertSignature(data, sig, pair.publicKeyPem));
    assert.throws(
      () => assertSignature(flipped, sig, pair.publicKeyPem),
      (err: unknown) =>
        err instanceof SignatureError && err instanceof VerificationError && err.code === 'SIGNATURE_INVALID',
    );
    // A signature from another key does not verify; garbage is "false", not an exception.
    const other = generateKeyPair();
    assert.equal(verifySignature(data, sig, other.publicKeyPem), false);
    assert.equal(verifySignature(data, Buffer.from('not a signature'), pair.publicKeyPem), false);
    assert.throws(() => assertSignature(data, Buffer.alloc(0), pair.publicKeyPem), SignatureError);
  });

  it('verifies a signature made by the openssl CLI and loads openssl-generated keys (ecparam SEC1 and genpkey PKCS#8)', async () => {
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-out', 'ec.key'], { cwd: dir });
    execFileSync(
      'openssl',
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'pk8.key'],
      {
        cwd: dir,
      },
    );
    for (const name of ['ec.key', 'pk8.key']) {
      execFileSync('openssl', ['pkey', '-in', name, '-pubout', '-out', `${name}.pub`], { cwd: dir });
      const key = await loadPrivateKey(join(dir, name));
      const sig = sign(data, key);
      await writeFile(join(dir, 'data'), data);
      await writeFile(join(dir, 'data.sig'), sig);
      const r = openssl(['dgst', '-sha256', '-verify', `${name}.pub`, '-signature', 'data.sig', 'data'], dir);
      assert.equal(r.status, 0, `${name}: ${r.out}`);
      // openssl signs, we verify with the openssl public key file.
      execFileSync('openssl', ['dgst', '-sha256', '-sign', name, '-out', 'os.sig', 'data'], { cwd: dir });
      const pub = await loadPublicKey(join(dir, `${name}.pub`));
      assert.equal(verifySignature(data, await readFile(join(dir, 'os.sig')), pub), true, name);
      assert.equal(publicKeyFingerprint(pub), publicKeyFingerprint(key));
    }
  });

  it('encrypted keys: load with the right passphrase, clear KEY_PASSPHRASE errors otherwise', async () => {
    const { privateKeyPath, publicKeyPath, fingerprint } = await writeKeyPair(join(dir, 'release'), {
      passphrase: 's3cret',
    });
    const pem = await readFile(privateKeyPath, 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    assert.equal((await stat(privateKeyPath)).mode & 0o777, 0o600);
    // openssl reads it as aes-256-cbc encrypted PKCS#8 with the same passphrase.
    const r = openssl(['pkey', '-in', privateKeyPath, '-passin', 'pass:s3cret', '-noout'], dir);
    assert.equal(r.status, 0, r.out);
    // PBES2 with PBKDF2-HMAC-SHA256 at >= 600,000 iterations (not OpenSSL's default 2,048).
    const asn = openssl(['asn1parse', '-in', privateKeyPath], dir).out;
    assert.match(asn, /PBES2/);
    assert.match(asn, /hmacWithSHA256/);
    assert.match(asn, /aes-256-cbc/);
    const iterations = Number.parseInt(/PBKDF2[\s\S]*?INTEGER\s*:([0-9A-F]+)/.exec(asn)?.[1] ?? '0', 16);
    assert.ok(iterations >= 600_000, `${iterations} iterations`);

    const key = await loadPrivateKey(privateKeyPath, 's3cret');
    assert.equal(publicKeyFingerprint(key), fingerprint);
    const pub = await loadPublicKey(publicKeyPath);
    assert.equal(verifySignature(data, sign(data, key), pub), true);

    for (const pass of [undefined, 'wrong']) {
      await assert.rejects(
        loadPrivateKey(privateKeyPath, pass),
        (err: unknown) =>
          err instanceof KeyError &&
          err.code === 'KEY_PASSPHRASE' &&
          err.exitCode === 2 &&
          err.message.includes(privateKeyPath) &&
          (err.hint ?? '').includes('LADING_KEY_PASSPHRASE'),
        `passphrase ${pass}`,
      );
    }
    // Existing files are not replaced.
    await assert.rejects(
      writeKeyPair(join(dir, 'release')),
      (err: unknown) => err instanceof KeyError && err.code === 'KEY_EXISTS',
    );
    assert.equal(await readFile(privateKeyPath, 'utf8'), pem);
  });

  it('ECDSA signatures are deterministic (RFC 6979 test vectors) and openssl verifies them on P-256/384/521', async () => {
    function jwkKey(curve: string, crv: string, dhex: string): KeyObject {
      const e = createECDH(curve);
      e.setPrivateKey(Buffer.from(dhex, 'hex'));
      const pt = e.getPublicKey();
      const l = (pt.length - 1) / 2;
      return createPrivateKey({
        format: 'jwk',
        key: {
          kty: 'EC',
          crv,
          d: Buffer.from(dhex, 'hex').toString('base64url'),
          x: pt.subarray(1, 1 + l).toString('base64url'),
          y: pt.subarray(1 + l).toString('base64url'),
        },
      });
    }
    // RFC 6979 A.2.5 (P-256, SHA-256, "sample") and A.2.6 (P-384, SHA-256, "sample"): the RFC's
    // r, and its s in low-s form (n - s: both vectors' s are above n/2), as @noble/curves signs.
    const p256 = jwkKey(
      'prime256v1',
      'P-256',
      'C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721',
    );
    assert.equal(
      sign('sample', p256).toString('hex'),
      '3045022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716' +
        // n - 0xf7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8
        '02200834e36ad29a83bf2bc9385e491d6099c8fdf9d1ed67aa7ea5f51f93782857a9',
    );
    const p384 = jwkKey(
      'secp384r1',
      'P-384',
      '6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5',
    );
    assert.equal(
      sign('sample', p384).toString('hex'),
      '3064023021b13d1e013c7fa1392d03c5f99af8b30c570c6f98d4ea8e354b63a21d3daa33bde1e888e63355d92fa2b3c36d8fb2cd' +
        // n - 0xf3aa443fb107745bf4bd77cb3891674632068a10ca67e3d45db2266fa7d1feebefdc63eccd1ac42ec0cb8668a4fa0ab0
        '02300c55bbc04ef88ba40b428834c76e98b9cdf975ef35981c2b69b127124c652ef3683da9c57b95e34c2c20930227cb1ec3',
    );
    await writeFile(join(dir, 'data'), data);
    for (const curve of ['P-256', 'P-384', 'P-521']) {
      execFileSync(
        'openssl',
        ['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-out', 'k.pem'],
        {
          cwd: dir,
        },
      );
      execFileSync('openssl', ['pkey', '-in', 'k.pem', '-pubout', '-out', 'k.pub'], { cwd: dir });
      const key = await loadPrivateKey(join(dir, 'k.pem'));
      const sig = sign(data, key);
      assert.deepEqual(sign(data, key), sig, `${curve}: same input, same signature`);
      assert.notDeepEqual(sign(Buffer.concat([data, Buffer.from('x')]), key), sig);
      await writeFile(join(dir, 'data.sig'), sig);
      const r = openssl(['dgst', '-sha256', '-verify', 'k.pub', '-signature', 'data.sig', 'data'], dir);
      assert.equal(r.status, 0, `${curve}: ${r.out}`);
    }
  });

  it('refuses RSA keys under 2048 bits (private and public, exit 2); 2048 is accepted', async () => {
    for (const bits of [1024, 2048]) {
      execFileSync(
        'openssl',
        ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', `r${bits}.key`],
        {
          cwd: dir,
          stdio: 'pipe',
        },
      );
      execFileSync('openssl', ['pkey', '-in', `r${bits}.key`, '-pubout', '-out', `r${bits}.pub`], {
        cwd: dir,
      });
    }
    for (const load of [
      () => loadPrivateKey(join(dir, 'r1024.key')),
      () => loadPublicKey(join(dir, 'r1024.pub')),
    ]) {
      await assert.rejects(
        load(),
        (err: unknown) =>
          err instanceof KeyError &&
          err.code === 'KEY_TOO_WEAK' &&
          err.exitCode === 2 &&
          /1024 bits/.test(err.message),
      );
    }
    const key = await loadPrivateKey(join(dir, 'r2048.key'));
    assert.equal(verifySignature(data, sign(data, key), await loadPublicKey(join(dir, 'r2048.pub'))), true);
  });

  it('a private key given as the public key is refused (KEY_IS_PRIVATE, exit 2), plain or encrypted', async () => {
    const plain = await writeKeyPair(join(dir, 'plain'));
    const enc = await writeKeyPair(join(dir, 'enc'), { passphrase: 'pw' });
    for (const file of [plain.privateKeyPath, enc.privateKeyPath]) {
      await assert.rejects(
        loadPublicKey(file),
        (err: unknown) =>
          err instanceof KeyError &&
          err.code === 'KEY_IS_PRIVATE' &&
          err.exitCode === 2 &&
          /release\.pub/.test(err.hint ?? ''),
      );
    }
    assert.ok(await loadPublicKey(plain.publicKeyPath));
  });

  it('rejects things that are not keys with INVALID_KEY / KEY_NOT_FOUND', async () => {
    await writeFile(join(dir, 'junk.key'), 'hello, not a key\n');
    await assert.rejects(
      loadPrivateKey(join(dir, 'junk.key')),
      (err: unknown) => err instanceof KeyError && err.code === 'INVALID_KEY',
    );
    await assert.rejects(
      loadPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      (err: unknown) => err instanceof KeyError && err.code === 'INVALID_KEY',
    );
    // A public key is not a private key.
    const pair = generateKeyPair();
    await assert.rejects(
      loadPrivateKey(pair.publicKeyPem),
      (err: unknown) => err instanceof KeyError && err.code === 'INVALID_KEY',
    );
    await assert.rejects(
      loadPrivateKey(join(dir, 'missing.key')),
      (err: unknown) =>
        err instanceof KeyError && err.code === 'KEY_NOT_FOUND' && err.message.includes('missing.key'),
    );
    await assert.rejects(
      loadPublicKey(join(dir, 'junk.key')),
      (err: unknown) => err instanceof KeyError && err.code === 'INVALID_KEY',
    );
    // Ed25519 cannot be verified with `openssl dgst -sha256`: refused.
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', 'ed.key'], { cwd: dir });
    await assert.rejects(
      loadPrivateKey(join(dir, 'ed.key')),
      (err: unknown) => err instanceof KeyError && err.code === 'INVALID_KEY',
    );
  });
});
