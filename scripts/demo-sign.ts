// Sign an image in a registry as a vendor does with `cosign sign --key` (the demo has no cosign):
// the simple-signing payload naming the image digest, signed with the vendor's ECDSA key, pushed
// as `sha256-<hex>.sig` next to the image (written by @lading/testkit from the public format).
//
//   node --conditions=lading-source scripts/demo-sign.ts HOST REPO:TAG VENDOR.key
//
// Prints the signed digest and the signature tag.
import { createHash, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { cosignSign } from '@lading/testkit/cosign';

const [host, image, keyFile] = process.argv.slice(2);
if (!host || !image || !keyFile || !image.includes(':')) {
  process.stderr.write('usage: demo-sign.ts HOST REPO:TAG VENDOR.key\n');
  process.exit(2);
}
const [repo, tag] = image.split(':') as [string, string];
const url = `http://${host}`;
const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
  headers: {
    accept: [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ].join(', '),
  },
});
if (res.status !== 200) {
  process.stderr.write(`demo-sign: ${host}/${image}: HTTP ${res.status}\n`);
  process.exit(1);
}
const digest = `sha256:${createHash('sha256')
  .update(Buffer.from(await res.arrayBuffer()))
  .digest('hex')}`;
const key = createPrivateKey(await readFile(keyFile, 'utf8'));
const signed = await cosignSign({ url, host }, repo, digest, key);
process.stdout.write(
  `signed ${host}/${repo}@${digest}\n  signature ${host}/${repo}:${signed.tag} (${signed.manifest.digest})\n`,
);
