import { resolve } from 'node:path';
import { formatBytes, LadingCommand, paragraphs } from '@lading/cli';
import { BundleVerificationError } from '@lading/core/bundle';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags } from '../lib/bundle-location.ts';
import { renderMarkdownReport, writeReportFile } from '../lib/report.ts';
import { renderHtmlReport } from '../lib/report-html.ts';
import { formatVerifyText, runVerify, type VerifyResult } from '../lib/verify.ts';

export default class Verify extends LadingCommand<VerifyResult> {
  static override summary =
    'Verify a bundle: signature, every member, every image and chart, hashed on every core.';

  static override description = paragraphs(
    `Checks, without extracting or copying anything (a local tar or split bundle: the tar headers first, then the
members hashed in parallel on every core — the sha256 of whole files, for split parts and --report, is one more
read of the same bytes; a directory or s3:// object: one streaming pass):
  * the signature SHA256SUMS.sig over SHA256SUMS with the release public key (--key);
  * every member against SHA256SUMS, and every blob against the digest in its name;
  * that no member is missing, extra, duplicated, unsafe (../, absolute, links, devices) or out of order;
  * every image and chart of index.json: each manifest, index, config and layer it needs is present with the size its descriptor says;
  * the extra files against lading.json;
  * for a split bundle, first the parts file NAME.tar.sha256: no part missing, each part's sha256.

BUNDLE is a bundle tar, the first part of a split bundle (NAME.tar.000, its sibling parts and NAME.tar.sha256 beside it), an extracted bundle directory, or s3://bucket/key (read from S3 with ranged GETs, streaming; a split bundle in S3 as key.000, key.001, … and key.sha256).

Prints a report (bundle name and version, signature and key fingerprint, OK/FAILED per image, chart, file and part, members, bytes, time, the verdict); on failure the error on stderr lists every problem with its member, once, the root cause first (a missing part, an unsigned bundle, a signature that does not verify); --json prints the verification report as JSON, also on failure (with "ok": false and an "error"). --report FILE also writes a self-contained report for an auditor to file: date, tool version, bundle location and size, sha256 of the bundle file(s) (hashed alongside the members), sha256 of SHA256SUMS, key fingerprint, verdict, per-image/chart tables, the differential base, the SBOM summary, the upstream signatures checked at build time, problems, and the exact tar/openssl/sha256sum commands that repeat the check by hand. FILE.html (or .htm) gives one HTML page to read in a browser, forward or print to PDF (inline CSS, no script, loads nothing); any other name gives Markdown. It is written whenever the bundle could be read, passed or failed (not for exit 2).

--image-key KEY (repeatable) also re-checks, offline, the vendor signatures carried with the images (cosign
simple-signing, or Sigstore bundles), with the keys the site trusts: each must verify over the image's own digest
(for a platform-filtered index: over the carried upstream index, of which the bundled index must be a subset, or
over every bundled platform manifest). See docs/provenance.md.

Progress (bytes read) goes to stderr.

Exit codes: 0 verified; 3 verification failed (every bad member is named on stderr); 2 the bundle or key cannot be read or is not a well-formed tar/bundle; 4 S3 failed (credentials, bucket, object, network).`,
  );

  static override examples = [
    {
      description: 'Verify a bundle file with the release public key',
      command: '<%= config.bin %> verify shop-2.4.0.tar --key release.pub',
    },
    {
      description: 'Verify a split bundle from its first part and write an audit report',
      command: '<%= config.bin %> verify shop-2.4.0.tar.000 --key release.pub --report shop-2.4.0-verify.md',
    },
    {
      description: 'Write the report as one HTML page for an auditor (opens in any browser, prints to PDF)',
      command: '<%= config.bin %> verify shop-2.4.0.tar --key release.pub --report shop-2.4.0-verify.html',
    },
    {
      description: 'Verify an extracted bundle directory, JSON result',
      command: '<%= config.bin %> verify ./shop-2.4.0/ --key release.pub --json',
    },
    {
      description: 'Verify a bundle straight from an S3-compatible store (MinIO), without downloading it',
      command:
        'AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… <%= config.bin %> verify s3://dropzone/shop/shop-2.4.0.tar --key release.pub --endpoint https://minio.site.internal:9000',
    },
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description:
        'bundle tar, first part of a split bundle (NAME.tar.000), extracted directory, or s3://bucket/key',
    }),
  };

  static override flags = {
    key: Flags.string({
      char: 'k',
      required: true,
      helpValue: 'FILE',
      description: 'release public key (SPKI PEM, e.g. release.pub from `lading-build keys generate`)',
    }),
    report: Flags.string({
      helpValue: 'FILE',
      description:
        'also write a self-contained report for auditors to FILE: HTML when it ends in .html, else Markdown (atomically; also when verification fails)',
    }),
    'image-key': Flags.string({
      multiple: true,
      helpValue: 'FILE',
      description:
        'vendor public key (PEM: ECDSA P-256/P-384, RSA >= 2048, Ed25519): re-check offline the upstream image signatures the bundle carries; an image whose signatures were checked at build time (a verify: rule) fails verification (exit 3) unless one verifies with one of these keys',
    }),
    ...bundleLocationFlags,
  };

  async run(): Promise<VerifyResult> {
    const { args, flags } = await this.parse(Verify);
    const progress = this.progress;
    let total = 0;
    const result = await runVerify({
      bundle: args.bundle,
      keyFile: flags.key,
      fileDigests: flags.report !== undefined,
      ...(flags['image-key'] ? { imageKeys: flags['image-key'] } : {}),
      contents: flags.report !== undefined,
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
      onOpen: (_loc, size) => {
        total = size;
        progress.line(`verifying ${args.bundle} (${formatBytes(size)})`);
      },
      onProgress: (p) =>
        progress.update({
          label: 'verifying',
          itemsLabel: 'members',
          bytesDone: p.bytes,
          bytesTotal: total || p.totalBytes,
          itemsDone: p.members,
        }),
    });
    progress.done();
    if (flags.report) {
      const file = resolve(flags.report);
      result.reportFile = file;
      const ctx = { tool: { name: this.config.bin, version: this.config.version }, endpoint: flags.endpoint };
      await writeReportFile(
        file,
        /\.html?$/i.test(file) ? renderHtmlReport(result, ctx) : renderMarkdownReport(result, ctx),
      );
    }
    this.log(formatVerifyText(result));
    if (result.reportFile) this.log(`Report:    ${result.reportFile}`);
    if (!result.ok) {
      throw new BundleVerificationError(result);
    }
    return result;
  }

  protected override toErrorJson(err: unknown): unknown {
    // A failed verification: the report, with "ok": false and the error in the one shape.
    if (err instanceof BundleVerificationError) return { ...err.report, error: this.errorJson(err) };
    return super.toErrorJson(err);
  }
}
