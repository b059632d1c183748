import { LadingCommand, paragraphs } from '@lading/cli';
import { formatBytes } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { type FetchBundleResult, fetchBundle } from '../lib/fetch.ts';

export default class Fetch extends LadingCommand<FetchBundleResult> {
  static override summary =
    'Download a bundle from S3 (or an S3-compatible store), verified as it downloads.';

  static override description = paragraphs(
    `Downloads s3://bucket/key with parallel ranged GETs into a temporary file beside the output and checks its sha256: against the lading-sha256 metadata that \`lading-build publish\` stores on the object (when the object has none, only the size is checked — run \`lading-load verify\` afterwards, which checks the signature and every member in any case).

A split bundle (s3://bucket/NAME.tar.000, or s3://bucket/NAME.tar when only its parts exist) is fetched whole: NAME.tar.sha256 first, then every part it lists, each checked against it. Parts keep their names (the .sha256 file lists them by name), so --output is then a folder (or the path of the first part).

Only complete, verified files are moved into place: on any failure nothing is left at --output. Every request carries If-Match with the object's ETag, so an object replaced during the download fails the fetch instead of mixing versions.

Credentials and region come from the AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, IMDS); --endpoint selects an S3-compatible store with path-style addressing. Progress (bytes) goes to stderr.

Exit codes: 0 fetched and verified; 3 a checksum did not match (the object is named); 4 S3 failed: credentials, bucket, missing object, network (bucket and key named); 2 bad usage (URL, --output).`,
  );

  static override examples = [
    {
      description: 'Fetch a bundle from AWS S3',
      command: '<%= config.bin %> fetch s3://releases/shop/shop-2.4.0.tar --output shop-2.4.0.tar',
    },
    {
      description: 'Fetch a split bundle (every part and shop-2.4.0.tar.sha256) from MinIO into a folder',
      command:
        '<%= config.bin %> fetch s3://dropzone/shop/shop-2.4.0.tar.000 --output ./incoming/ --endpoint https://minio.site.internal:9000',
    },
    {
      description: 'Eight parallel ranged GETs, JSON result',
      command:
        '<%= config.bin %> fetch s3://releases/shop-2.4.0.tar --output shop.tar --concurrency 8 --json',
    },
  ];

  static override args = {
    url: Args.string({
      required: true,
      description: 's3://bucket/key of the bundle (or of the first part NAME.tar.000 of a split bundle)',
    }),
  };

  static override flags = {
    output: Flags.string({
      char: 'o',
      required: true,
      helpValue: 'FILE|DIR',
      description:
        'where to write the bundle: a file path, or an existing folder (the object keeps its name); a split bundle needs a folder',
    }),
    endpoint: Flags.string({
      helpValue: 'URL',
      description:
        'S3-compatible endpoint (MinIO, Ceph RGW), e.g. https://s3.site.internal:9000; path-style addressing is used with it. Default: AWS S3',
    }),
    region: Flags.string({
      helpValue: 'REGION',
      description: 'S3 region. Default: AWS_REGION or the profile’s region, else us-east-1',
    }),
    concurrency: Flags.integer({
      char: 'c',
      min: 1,
      max: 64,
      default: 4,
      description: 'parallel ranged GETs (16 MiB each)',
    }),
  };

  async run(): Promise<FetchBundleResult> {
    const { args, flags } = await this.parse(Fetch);
    const progress = this.progress;
    progress.line(`fetching ${args.url}`);
    const result = await fetchBundle(args.url, flags.output, {
      endpoint: flags.endpoint,
      region: flags.region,
      concurrency: flags.concurrency,
      signal: this.signal,
      onProgress: (p) =>
        progress.update({
          label: `fetching ${p.key}`,
          itemsLabel: 'files',
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
          itemsDone: p.filesDone,
          itemsTotal: p.filesTotal,
        }),
    });
    progress.done();
    for (const f of result.files) {
      const how =
        f.verifiedAgainst === 'parts-file'
          ? 'sha256 verified against the parts checksum file'
          : f.verifiedAgainst === 'metadata'
            ? 'sha256 verified against the object’s lading-sha256 metadata'
            : f.verifiedAgainst === 'none'
              ? 'size checked (the object has no lading-sha256 metadata; run lading-load verify)'
              : 'parts checksum file';
      this.log(`${f.output}  ${formatBytes(f.size)}  sha256 ${f.sha256}  (${how})`);
    }
    this.log(
      `fetched ${result.url}: ${result.files.length} file(s), ${formatBytes(result.size)} in ${(result.durationMs / 1000).toFixed(1)} s`,
    );
    this.log(`next: lading-load verify ${result.bundle} --key release.pub`);
    return result;
  }
}
