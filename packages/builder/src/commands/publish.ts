import { formatBytes, formatDuration, LadingCommand, paragraphs } from '@lading/cli';
import { Args, Flags } from '@oclif/core';
import { type PublishBundleResult, publishBundle } from '../lib/publish.ts';

export default class Publish extends LadingCommand<PublishBundleResult> {
  static override rerunNote = 'an unfinished multipart upload is resumed';
  static override summary =
    'Upload a bundle (or all its parts and the parts file) to S3 or an S3-compatible store.';

  static override description = paragraphs(
    `Uploads to s3://bucket/prefix/<bundle file name> (and, for a split bundle, every NAME.tar.NNN part
plus NAME.tar.sha256). Large files go up as multipart uploads with parallel parts, each sent with Content-MD5 (and
x-amz-checksum-sha256 where the store supports it). Every object carries the metadata lading-sha256 (its own sha256)
and lading-sums-sha256 (sha256 of the bundle's SHA256SUMS). Run it again after an interruption: an unfinished
multipart upload is resumed (only missing parts are sent) and objects already there with the same sha256 are skipped.

Credentials and region come from the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
SSO, instance roles). --endpoint selects an S3-compatible store (MinIO, Ceph RGW) with path-style addressing.`,
  );

  static override examples = [
    '<%= config.bin %> publish dist/shop-2.4.0.tar s3://dropzone/releases/',
    '<%= config.bin %> publish dist/shop-2.4.0.tar.000 s3://dropzone/releases/ --endpoint https://minio.internal:9000 --json',
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description: 'bundle .tar or the first part of a split bundle (.tar.000)',
    }),
    destination: Args.string({ required: true, description: 's3://bucket/prefix/ to upload under' }),
  };

  static override flags = {
    endpoint: Flags.string({
      description: 'S3-compatible endpoint URL (path-style addressing), e.g. https://minio:9000',
    }),
    region: Flags.string({ description: 'region (default: the AWS chain, else us-east-1)' }),
    'aws-profile': Flags.string({ description: 'AWS profile from ~/.aws/config and ~/.aws/credentials' }),
    'part-size': Flags.string({ description: 'multipart part size, 5MiB to 5GiB (default 64MiB)' }),
    concurrency: Flags.integer({ char: 'c', description: 'parts uploaded in parallel', default: 4, min: 1 }),
  };

  async run(): Promise<PublishBundleResult> {
    const { args, flags } = await this.parse(Publish);
    const progress = this.progress;
    const result = await publishBundle({
      bundle: args.bundle,
      destination: args.destination,
      ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
      ...(flags.region ? { region: flags.region } : {}),
      ...(flags['aws-profile'] ? { profile: flags['aws-profile'] } : {}),
      ...(flags['part-size'] ? { partSize: flags['part-size'] } : {}),
      concurrency: flags.concurrency,
      signal: this.signal,
      // Hashing has no figures to show, and an object already there moves nothing (the lines
      // below say so): only uploads get a bar.
      onProgress: (p) => {
        if (p.phase !== 'uploading' && p.phase !== 'done') return;
        progress.update({
          label: `uploading ${p.key}`,
          itemsLabel: 'parts',
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
          itemsDone: p.partsDone,
          itemsTotal: p.partsTotal,
        });
      },
    });
    progress.done();
    for (const o of result.objects) {
      const how = o.skipped
        ? 'already there'
        : o.resumed
          ? `resumed: ${o.reusedParts} part(s) reused, ${o.uploadedParts} sent`
          : `${o.uploadedParts || 1} part(s) sent`;
      this.log(`${o.url}  ${formatBytes(o.size)}  (${how})`);
    }
    this.log(
      `published ${result.name} ${result.version}: ${result.objects.length} object(s), ${formatBytes(result.bytes)} in ${formatDuration(Math.round(result.seconds * 1000))}; lading-sums-sha256 ${result.sumsDigest.slice(7)}`,
    );
    return result;
  }
}
