import { LadingCommand, paragraphs } from '@lading/cli';
import { KEY_PASSPHRASE_ENV, writeKeyPair } from '@lading/core';
import { Flags } from '@oclif/core';

export interface KeysGenerateResult {
  privateKey: string;
  publicKey: string;
  fingerprint: string;
  encrypted: boolean;
}

export default class KeysGenerate extends LadingCommand<KeysGenerateResult> {
  static override summary = 'Generate an ECDSA P-256 signing key pair for bundles.';
  static override description = paragraphs(
    `Writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
The private key is encrypted (AES-256-CBC) when ${KEY_PASSPHRASE_ENV} is set; the same variable unlocks it for
\`lading-build create --key\`. Give PREFIX.pub to operators and auditors: \`lading-load verify --key PREFIX.pub\` and
\`openssl dgst -sha256 -verify PREFIX.pub -signature SHA256SUMS.sig SHA256SUMS\` check bundles with it.`,
  );

  static override examples = [
    '<%= config.bin %> keys generate --output release',
    `${KEY_PASSPHRASE_ENV}=… <%= config.bin %> keys generate --output keys/release --json`,
  ];

  static override flags = {
    output: Flags.string({
      char: 'o',
      required: true,
      description:
        'path prefix of the key files: PREFIX.key and PREFIX.pub (a trailing .key or .pub is dropped; missing folders are created)',
    }),
    force: Flags.boolean({ char: 'f', description: 'replace existing key files' }),
  };

  async run(): Promise<KeysGenerateResult> {
    const { flags } = await this.parse(KeysGenerate);
    const passphrase = process.env[KEY_PASSPHRASE_ENV];
    const encrypted = passphrase !== undefined && passphrase !== '';
    const written = await writeKeyPair(flags.output, {
      ...(encrypted ? { passphrase } : {}),
      overwrite: flags.force,
    });
    if (written.createdDir) this.log(`created folder ${written.createdDir}`);
    this.log(`private key: ${written.privateKeyPath}${encrypted ? ' (encrypted)' : ''}`);
    this.log(`public key:  ${written.publicKeyPath}`);
    this.log(`fingerprint: ${written.fingerprint}`);
    return {
      privateKey: written.privateKeyPath,
      publicKey: written.publicKeyPath,
      fingerprint: written.fingerprint,
      encrypted,
    };
  }
}
