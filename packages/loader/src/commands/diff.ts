import { LadingCommand, paragraphs } from '@lading/cli';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags } from '../lib/bundle-location.ts';
import { type BundleDiff, compareBundles, formatDiffText, openForDiff } from '../lib/diff/index.ts';

export default class Diff extends LadingCommand<BundleDiff> {
  static override summary =
    'What changed between two bundles: images, charts, releases and values, files, bytes.';

  static override description = paragraphs(
    `Compares OLD and NEW, each a bundle tar, the first part of a split bundle, an extracted directory or s3://bucket/key,
reading only their metadata (and the values files of their releases). With --key each is verified first, in full
(exit 3 if either fails); without it the output says they were not verified.

Reports: images added, removed or moved to another digest (bundled and upstream digests, platforms); the bundles'
platforms; charts added, removed, at another version or with other content; releases added, removed or changed
(chart, namespace, values files, profiles) and a unified diff of each values file whose text changed; extra files;
the supply-chain extras and upstream signature results the bundles record; and the bytes NEW holds that OLD does
not — what a differential bundle (create --since OLD) would carry. A differential NEW is compared with its base
as with any bundle, and the output says whether OLD is that base.

Exit 0 whatever the difference; 2 a bundle cannot be read; 3 verification failed; 4 S3 failed.`,
  );

  static override examples = [
    '<%= config.bin %> diff shop-2.4.0.tar shop-2.5.0.tar --key release.pub',
    '<%= config.bin %> diff shop-2.4.0.tar shop-2.5.0-since-2.4.0.tar --key release.pub --json',
    '<%= config.bin %> diff ./shop-2.4.0/ s3://dropzone/shop/shop-2.5.0.tar --endpoint https://minio.site.internal:9000',
  ];

  static override args = {
    old: Args.string({
      required: true,
      description:
        'the earlier bundle: tar, first part (NAME.tar.000), extracted directory, or s3://bucket/key',
    }),
    new: Args.string({ required: true, description: 'the later bundle, in any of the same forms' }),
  };

  static override flags = {
    key: Flags.string({
      char: 'k',
      helpValue: 'FILE',
      description: 'release public key (SPKI PEM): verify both bundles before comparing them',
    }),
    ...bundleLocationFlags,
  };

  async run(): Promise<BundleDiff> {
    const { args, flags } = await this.parse(Diff);
    const opts = {
      key: flags.key,
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
      onVerify: (b: string) => this.progress.line(`verifying ${b}`),
    };
    const a = await openForDiff(args.old, opts);
    try {
      const b = await openForDiff(args.new, opts);
      try {
        const diff = await compareBundles(a.snapshot, b.snapshot);
        this.log(formatDiffText(diff));
        return diff;
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  }
}
