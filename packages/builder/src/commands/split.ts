import { formatBytes, LadingCommand, paragraphs } from '@lading/cli';
import { KEY_PASSPHRASE_ENV, loadPrivateKey, type SplitResult, splitBundle } from '@lading/core';
import { Args, Flags } from '@oclif/core';

export default class Split extends LadingCommand<SplitResult> {
  static override summary = 'Split an existing bundle into parts without rebuilding it.';

  static override description = paragraphs(
    `Writes NAME.tar.000, NAME.tar.001, … plus NAME.tar.sha256 (coreutils format over the parts) beside
the bundle, or under --output. The parts concatenated are the bundle, byte for byte; every Lading reader accepts the
first part directly. The bundle itself is left in place. The same as \`create --split-size\` for a bundle that
already exists. With --key (the release key that signed the bundle) NAME.tar.sha256 is signed as NAME.tar.sha256.sig,
which \`lading-load verify\` checks and an auditor checks with
openssl dgst -sha256 -verify release.pub -signature NAME.tar.sha256.sig NAME.tar.sha256.`,
  );

  static override examples = [
    '<%= config.bin %> split dist/shop-2.4.0.tar --size 700MB --key release.key',
    '<%= config.bin %> split dist/shop-2.4.0.tar --size 4GiB --output /media/usb/shop-2.4.0.tar',
  ];

  static override args = {
    bundle: Args.string({ required: true, description: 'the bundle .tar to split' }),
  };

  static override flags = {
    size: Flags.string({
      required: true,
      description:
        'part size, e.g. 4GiB, 700MB (KB/MB/GB powers of 1000, K/M/G and KiB/MiB/GiB of 1024); at most 1000 parts',
    }),
    output: Flags.string({
      char: 'o',
      description:
        'name the parts are derived from (default: the bundle path); a folder (existing, or ending in /) takes them under the bundle name',
    }),
    force: Flags.boolean({ char: 'f', description: 'replace existing parts' }),
    key: Flags.string({
      char: 'k',
      helpValue: 'FILE',
      description: `private key that signed the bundle: signs NAME.tar.sha256 as NAME.tar.sha256.sig (passphrase from $${KEY_PASSPHRASE_ENV})`,
    }),
  };

  async run(): Promise<SplitResult> {
    const { args, flags } = await this.parse(Split);
    const key = flags.key ? await loadPrivateKey(flags.key, process.env[KEY_PASSPHRASE_ENV]) : undefined;
    const result = await splitBundle(args.bundle, {
      size: flags.size,
      ...(key ? { key } : {}),
      ...(flags.output ? { output: flags.output } : {}),
      overwrite: flags.force,
      signal: this.signal,
      onProgress: (p) =>
        this.progress.update({
          label: 'splitting',
          itemsLabel: 'parts',
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
          itemsDone: p.partsDone,
          itemsTotal: p.partsTotal,
        }),
    });
    this.progress.done();
    if (result.parts.length === 1)
      this.progress.line(
        `note: the bundle (${formatBytes(result.size)}) is not larger than --size ${flags.size}: ONE part was written`,
      );
    this.log(`${result.parts.length} part(s), ${formatBytes(result.size)}: ${result.parts.join(', ')}`);
    this.log(
      `parts checksum file: ${result.checksumFile}${key ? ` (signed: ${result.checksumFile}.sig)` : ''}`,
    );
    if (!key) {
      this.progress.line(
        'warning: NAME.tar.sha256 is not signed (give --key release.key): verify reports the parts list as unauthenticated',
      );
    }
    return result;
  }
}
