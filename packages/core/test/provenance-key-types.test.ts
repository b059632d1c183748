/**
 * verify: rules accept ECDSA P-256/P-384, RSA >= 2048 and Ed25519 keys (issue 10 §2). Each key
 * pair is made by the openssl CLI and each signature over a cosign simple-signing payload is made
 * by openssl too (the independent party): ECDSA as DER over SHA-256 (cosign's default; P-384
 * also over SHA-384), RSA PKCS#1 v1.5 over SHA-256, Ed25519 over the payload itself.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyWithImageKey } from '../src/provenance/cosign.ts';
import { loadImageKey } from '../src/provenance/keys.ts';

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

describe('provenance: upstream signatures by every accepted key type, made by openssl', () => {
  let dir: string;
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': 'registry.example/acme/app' },
        image: { 'docker-manifest-digest': `sha256:${'ab'.repeat(32)}` },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'lading-keytypes-'));
    writeFileSync(join(dir, 'payload.json'), payload);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases: { name: string; type: string; gen: string[]; sign: (key: string) => string[][] }[] = [
    {
      name: 'ECDSA P-256',
      type: 'ecdsa-p256',
      gen: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      sign: (k) => [['dgst', '-sha256', '-sign', k]],
    },
    {
      name: 'ECDSA P-384',
      type: 'ecdsa-p384',
      gen: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      sign: (k) => [
        ['dgst', '-sha384', '-sign', k],
        ['dgst', '-sha256', '-sign', k],
      ],
    },
    {
      name: 'RSA 3072',
      type: 'rsa',
      gen: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'],
      sign: (k) => [['dgst', '-sha256', '-sign', k]],
    },
    {
      name: 'Ed25519',
      type: 'ed25519',
      gen: ['-algorithm', 'ED25519'],
      sign: (k) => [['pkeyutl', '-sign', '-rawin', '-inkey', k, '-in', 'payload.json']],
    },
  ];

  for (const c of cases) {
    it(`${c.name}: openssl's signature verifies; another payload or another key of the type does not`, async () => {
      const key = `${c.type}.key`;
      const other = `${c.type}-other.key`;
      for (const k of [key, other]) {
        openssl(['genpkey', ...c.gen, '-out', k], dir);
        openssl(['pkey', '-in', k, '-pubout', '-out', `${k}.pub`], dir);
      }
      const pub = await loadImageKey(join(dir, `${key}.pub`));
      const otherPub = await loadImageKey(join(dir, `${other}.pub`));
      assert.equal(pub.type, c.type);
      for (const [i, args] of c.sign(key).entries()) {
        const sigFile = `${c.type}-${i}.sig`;
        const full =
          args[0] === 'pkeyutl' ? [...args, '-out', sigFile] : [...args, '-out', sigFile, 'payload.json'];
        openssl(full, dir);
        const sig = readFileSync(join(dir, sigFile));
        assert.equal(verifyWithImageKey(payload, sig, pub), true, `${args.join(' ')}`);
        const replayed = Buffer.from(payload.toString('utf8').replace('ab', 'cd'));
        assert.equal(verifyWithImageKey(replayed, sig, pub), false, 'another payload');
        assert.equal(verifyWithImageKey(payload, sig, otherPub), false, 'another key');
      }
    });
  }
});
