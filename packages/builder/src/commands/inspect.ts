import { LadingCommand, paragraphs } from '@lading/cli';
import { Args } from '@oclif/core';
import { formatInspect, type InspectResult, inspectBundle } from '../lib/inspect.ts';

export default class Inspect extends LadingCommand<InspectResult> {
  static override summary =
    'Show what a bundle holds: images, charts, releases, files, base bundle, signature.';

  static override description = paragraphs(
    `Reads the bundle's metadata only (lading.json, index.json, SHA256SUMS, member list): fast even
for a large bundle, nothing is extracted. BUNDLE is a bundle .tar, the first part of a split bundle (NAME.tar.000) or
an extracted folder. This does NOT verify the bundle: use \`lading-load verify BUNDLE --key release.pub\` for that.

Per image: its supply-chain artifacts by kind (EXTRAS: cosign sig/att/sbom, OCI referrers), and, when a platform filter
wrote a new index, upstream -> bundled digest; the upstream signatures the spec's verify: rules checked at build time
(scheme, signed digest, key fingerprint, signature manifest). --json has them as images[].extras and images[].signatures.`,
  );

  static override examples = [
    '<%= config.bin %> inspect dist/shop-2.4.0.tar',
    '<%= config.bin %> inspect dist/shop-2.4.0.tar.000 --json',
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description: 'bundle .tar, first part (.tar.000) or extracted folder',
    }),
  };

  async run(): Promise<InspectResult> {
    const { args } = await this.parse(Inspect);
    const result = await inspectBundle(args.bundle, this.signal);
    this.log(formatInspect(result));
    return result;
  }
}
