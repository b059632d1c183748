import { formatBytes, formatDuration, LadingCommand, paragraphs } from '@lading/cli';
import { KEY_PASSPHRASE_ENV } from '@lading/core';
import { Flags } from '@oclif/core';
import { type CreateSummary, createBundle } from '../lib/create.ts';

export default class Create extends LadingCommand<CreateSummary> {
  static override plainHttpFlag = '--plain-http-host HOST';
  static override rerunNote = 'what was already written into the bundle is kept for the re-run';
  static override summary = 'Build a signed, checksummed offline bundle from a lading.yaml spec.';

  static override description = paragraphs(
    `Pulls the spec's Helm charts (HTTP chart repositories, oci:// registries, local folders or .tgz)
and container images (listed in the spec, and found in the charts' values.yaml and artifacthub.io/images annotation),
and writes ONE bundle: a POSIX tar holding an OCI image layout with, in this order, oci-layout, lading.json,
SHA256SUMS, SHA256SUMS.sig, index.json, sbom.cdx.json, files/… and every blob once. Manifests and configs come first
(into the content cache); once every size is known, each layer goes straight into its place in the bundle
(--concurrency at once), verified while it streams, written once: from what an interrupted build of the same output
finished, from a bundle built with this cache before (while unchanged), else from its registry. Every chart version
and image tag is looked up before any image is pulled: all that do not exist are named at once (exit 4), each with
its spec line or its chart and values path, and so are all images without the platforms asked for (exit 2).

Output: --output FILE, or --output DIR for DIR/<name>-<version>.tar. An existing output is refused unless --force.
The bundle is written under a temporary name and renamed at the end: a failed or interrupted build leaves nothing at
the output path (what it finished is kept in the cache's unfinished/ folder; after a kill -9, beside the output under
a hidden name), and a re-run downloads only what it lacks (--cache, default $LADING_CACHE or
~/.cache/lading/content).

Signing: --key release.key (from \`lading-build keys generate\`; ${KEY_PASSPHRASE_ENV} unlocks an encrypted key). An
unsigned bundle is written only with --unsigned.

Proxies: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (host, .suffix, host:port, IP, CIDR) apply to registries, token servers
and chart repositories; a proxy that cannot be reached gives exit 4 naming it.

Reproducible: with SOURCE_DATE_EPOCH set, the same spec and sources give a byte-identical bundle.

Differential: --since OLD (the previous bundle, its first part, its folder, or its lading.json with SHA256SUMS beside
it) leaves out the layers and configs OLD already carried; lading.json "since" names the base and lists them.
Manifests always stay in the bundle. Only OLD's blob names are used: a warning says when its metadata do not match
its SHA256SUMS, members are missing, it is not signed by --key, or it has this bundle's name and version.

Registries: credentials come from the containers auth.json and the Docker config (~/.docker/config.json,
credential helpers), never from the spec; chart repositories use the same credentials, by host. Free space is
checked at the output before writing; the error says how much is needed.

Supply-chain artifacts: for every bundled manifest, cosign's sha256-<hex>.sig/.att/.sbom tags and OCI referrers
(the referrers API, or the referrers tag schema) are carried too and listed in lading.json extras[] (extras: false
in the spec, or on one image, leaves them out). The spec's verify: rules name images (globs) and vendor public keys:
each matched image needs a valid cosign or Sigstore-bundle signature by one of the keys over its own digest, or
create stops before any bundle file appears (exit 3) naming image, rule and reason. A platform filter that drops
entries of an index writes a new index, so its digest changes (the summary says upstream -> bundled); a
digest-pinned index cannot be filtered (exit 2: pin the platform manifest digests it names instead).
See docs/provenance.md.

To split an existing bundle again without rebuilding it, use \`lading-build split\`.`,
  );

  static override examples = [
    '<%= config.bin %> create --spec lading.yaml --output dist/ --key release.key',
    'SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) <%= config.bin %> create --spec lading.yaml --output shop.tar --key release.key --split-size 4GiB',
    '<%= config.bin %> create --spec lading.yaml --output dist/ --key release.key --since dist/shop-2.3.0.tar',
    '<%= config.bin %> create --spec lading.yaml --output dist/ --unsigned --plain-http-host 10.0.0.5:5000 --json',
  ];

  static override flags = {
    spec: Flags.string({ char: 's', required: true, description: 'the spec file (lading.yaml)' }),
    output: Flags.string({
      char: 'o',
      required: true,
      description:
        'bundle file, or an existing folder (or a path ending in /) for <folder>/<name>-<version>.tar',
    }),
    key: Flags.string({
      char: 'k',
      description: `private key that signs SHA256SUMS (PEM; ${KEY_PASSPHRASE_ENV} unlocks an encrypted one)`,
      exclusive: ['unsigned'],
    }),
    unsigned: Flags.boolean({
      description: 'write the bundle without SHA256SUMS.sig (only when no key is given)',
    }),
    'split-size': Flags.string({
      description:
        'cut the bundle into parts of this size (NAME.tar.000, … plus NAME.tar.sha256), e.g. 4GiB, 700MB',
    }),
    since: Flags.string({
      description:
        'build a differential bundle against OLD (bundle file, first part, folder, or its lading.json)',
    }),
    force: Flags.boolean({ char: 'f', description: 'replace an existing bundle at the output path' }),
    cache: Flags.string({
      description: 'content cache folder (default $LADING_CACHE or ~/.cache/lading/content)',
    }),
    concurrency: Flags.integer({
      char: 'c',
      description: 'transfers at once, across all images and blobs',
      default: 8,
      min: 1,
    }),
    'ca-file': Flags.string({
      description: 'PEM file of a CA to trust for registries and chart repositories (repeatable)',
      multiple: true,
    }),
    'plain-http-host': Flags.string({
      helpValue: 'HOST[:PORT]',
      description:
        'source registry to reach over plain HTTP, no TLS (repeatable; loopback hosts fall back to it by themselves)',
      multiple: true,
    }),
    insecure: Flags.boolean({
      description: 'skip TLS certificate verification for every source (still TLS; testing only)',
    }),
    'with-loader': Flags.boolean({
      description:
        'put the standalone lading-load (no Node.js needed) beside the bundle, its sha256 in NAME.tar.sha256',
    }),
    'loader-binary': Flags.string({
      description:
        'the standalone loader to copy with --with-loader (default $LADING_LOADER_BINARY, else dist/standalone/lading-load-linux-x64 from scripts/build-loader)',
      dependsOn: ['with-loader'],
    }),
  };

  async run(): Promise<CreateSummary> {
    const { flags } = await this.parse(Create);
    const progress = this.progress;
    const summary = await createBundle({
      spec: flags.spec,
      output: flags.output,
      ...(flags.key ? { key: flags.key } : {}),
      unsigned: flags.unsigned,
      ...(flags['split-size'] ? { splitSize: flags['split-size'] } : {}),
      ...(flags.since ? { since: flags.since } : {}),
      force: flags.force,
      ...(flags.cache ? { cache: flags.cache } : {}),
      concurrency: flags.concurrency,
      ...(flags['ca-file'] ? { caFiles: flags['ca-file'] } : {}),
      ...(flags['plain-http-host'] ? { plainHttp: flags['plain-http-host'] } : {}),
      insecure: flags.insecure,
      ...(flags['with-loader']
        ? { withLoader: flags['loader-binary'] ? { binary: flags['loader-binary'] } : {} }
        : {}),
      signal: this.signal,
      onProgress: (e) => {
        if (e.phase === 'message') progress.line(e.message);
        else if (e.phase === 'pull')
          progress.update({
            // The nodes of each image, layers left out (they stream into the bundle below).
            label: 'pulling manifests and configs',
            itemsLabel: 'images',
            bytesDone: e.bytesDone,
            bytesTotal: e.bytesTotal,
            itemsDone: e.imagesDone,
            itemsTotal: e.imagesTotal,
          });
        else
          progress.update({
            // The bundle's members: layers come from the cache, an earlier bundle or their registry.
            label: 'writing bundle',
            itemsLabel: 'members',
            bytesDone: e.bytesDone,
            bytesTotal: e.bytesTotal,
            itemsDone: e.membersDone,
            itemsTotal: e.membersTotal,
          });
      },
    });
    progress.done();
    if (flags['split-size'] && summary.files.length === 1)
      progress.line(
        `note: the bundle (${formatBytes(summary.bytes)}) is not larger than --split-size ${flags['split-size']}: ONE part was written`,
      );
    this.log(formatCreateSummary(summary));
    return summary;
  }
}

export function formatCreateSummary(s: CreateSummary): string {
  const lines = [
    `bundle ${s.name} ${s.version}: ${s.files.join(', ')}${s.checksumFile ? ` + ${s.checksumFile}` : ''}`,
    `  images ${s.images}, charts ${s.charts}, blobs ${s.blobs}, ${formatBytes(s.bytes)}`,
    `  downloaded from registries: ${formatBytes(s.downloadedBytes)} (manifests, configs and layers; the rest came from the cache or an earlier bundle)`,
    `  dedup saving ${formatBytes(s.dedupSavedBytes)}${s.since ? `, ${s.omittedBlobs} blobs (${formatBytes(s.omittedBytes)}) left out: base ${s.since.name} ${s.since.version}` : ''}`,
    `  ${s.signed ? 'signed' : 'UNSIGNED'}, sha256 ${s.digest.slice(7)}`,
    ...(s.loader
      ? [`  standalone loader ${s.loader.path} (${formatBytes(s.loader.size)}, sha256 ${s.loader.sha256})`]
      : []),
    ...s.imageList.flatMap((i) => {
      const out: string[] = [];
      if (i.digest !== i.upstreamDigest) {
        out.push(
          `  ${i.ref}: filtered index, digest changed: upstream ${i.upstreamDigest} -> bundled ${i.digest}`,
        );
      }
      if (i.extras > 0 || i.rules.length > 0) {
        const sigs = i.signatures.length
          ? `, ${i.signatures.length} upstream signature(s) verified by ${i.rules.join(', ')}`
          : '';
        out.push(`  ${i.ref}: ${i.extras} supply-chain artifact(s)${sigs}`);
      }
      return out;
    }),
    `  SHA256SUMS ${s.sumsDigest}`,
    `  time ${formatDuration(Math.round(s.seconds * 1000))}`,
  ];
  return lines.join('\n');
}
