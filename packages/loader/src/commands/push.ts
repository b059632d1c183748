import { formatBytes, formatDuration, type JsonError, LadingCommand, paragraphs } from '@lading/cli';
import { InvalidInputError, type LadingError } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags } from '../lib/bundle-location.ts';
import { PASSWORD_ENV, resolveCredentials, USERNAME_ENV } from '../lib/push/credentials.ts';
import { UnverifiedPushError } from '../lib/push/errors.ts';
import { ON_EXISTING_TAG, type OnExistingTag } from '../lib/push/plan.ts';
import { assertComplete, type PushEvent, type PushResult, pushBundle } from '../lib/push/push.ts';
import { parseRegistryTarget } from '../lib/registry-target.ts';

export default class Push extends LadingCommand<PushResult & { error?: JsonError }> {
  static override plainHttpFlag = '--plain-http';
  static override rerunNote = 'what already reached the registry is skipped';
  static override summary = 'Verify a bundle, then push its images and charts into a registry.';

  static override description = paragraphs(
    `Verifies BUNDLE with --key first (signature, SHA256SUMS, every blob; exit 3 and nothing pushed on failure), then copies every image and chart straight from the tar into the registry: no extraction, no temporary copy. BUNDLE is a tar file, the first part of a split bundle (NAME.tar.000), an extracted directory, or s3://bucket/key (read with ranged GETs, nothing stored locally; see --endpoint, --region).

Target paths: the source host is dropped and --registry's prefix put in front, so with --registry harbor.local/airgap, docker.io/library/nginx:1.27.3 lands at harbor.local/airgap/library/nginx:1.27.3 with the same digest. An image bundled by digest only (repo@sha256:…) is pushed by digest, untagged. Charts land as Helm OCI artifacts at PREFIX/charts/<name>:<version>. When two sources would land on the same path the push stops before writing anything and names them (exit 2).

Order and resume: blobs before manifests, child manifests before indexes, the tag with the root manifest last. Blob uploads are checked against their digest before the registry commits them. Whatever the registry already has is skipped (an image whose tag already names the bundled digest costs one HEAD request), so a push killed at any moment is completed by running it again, and re-pushing an unchanged bundle is nearly instant. A layer already sent to another repository in the same run is mounted from there instead of being sent again.

Supply-chain artifacts (lading.json extras[]) go with their images: cosign signatures, attestations and SBOMs under the same sha256-<hex>.sig/.att/.sbom tags in the relocated repository, OCI referrers by digest with their subject; where the registry has no referrers API, the referrers tag schema index sha256-<hex> is extended with them. So cosign verify --key vendor.pub works against the target registry after the air gap (see docs/provenance.md).

Verification stamp: after the full verification passes, push records the bundle file's identity (device, inode, size, mtime and ctime — the kernel changes ctime on every write) with the key and the SHA256SUMS digest under $LADING_STATE_DIR (default ~/.local/state/lading). A later push of the same, unwritten file checks the signature and the metadata again but skips re-hashing every member; the blobs it sends are still checked against their digests as they stream. --reverify always runs the full verification; lading-load verify never uses the stamp. The stamp is neither used nor written when the state folder is not owned by you or is writable by others, or when the bundle is on FAT/exFAT (USB sticks: no ctime, unstable inodes, so a rewritten file can look unchanged) — push then runs the full verification.

Existing tags: a target tag that already points at another digest is listed before anything is written, in the output and in --json (summary.existingTags, and existingTag on the item). --on-existing-tag overwrite (the default) moves it to the bundled digest; skip keeps it and leaves that image or chart out of the push; fail stops before writing anything, naming every such tag (exit 4).

Proxies: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (host, .suffix, host:port, IP, CIDR) apply to the registry, its token server and S3; a proxy that cannot be reached gives exit 4 naming it.

Differential bundles (built with --since) leave out blobs their base bundle carried; push checks up front that each is already in the registry and, if not, names the base bundle to push first (exit 2, nothing pushed).

Credentials, first match wins: --username with --password-stdin; ${USERNAME_ENV} / ${PASSWORD_ENV}; the containers auth.json (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json); the Docker config (~/.docker/config.json, credential helpers). The password is never printed or put in --json output.

TLS: the system CAs plus --ca-file. --insecure skips certificate verification (still TLS); --plain-http speaks plain HTTP, no TLS. A loopback registry (localhost, 127.0.0.0/8, ::1) that does not speak TLS is reached over plain HTTP without either flag, as Docker and crane do.

Exit codes: 0 pushed (or everything already there) · 2 bad usage, invalid or malformed bundle, path collision, differential bundle without its base in the registry · 3 verification failed · 4 the registry failed or refused (authentication, TLS, quota, immutable tags: the registry's own message is shown), or --continue-on-error finished with failures (3 when one of them was content not matching its digest, possible only with --skip-verify).`,
  );

  static override examples = [
    '<%= config.bin %> push shop-2.4.0.tar --key release.pub --registry harbor.local/airgap --ca-file site-ca.pem',
    'printf %s "$PASS" | <%= config.bin %> push shop-2.4.0.tar --key release.pub --registry registry.local:5000 --username ops --password-stdin',
    `${USERNAME_ENV}=ops ${PASSWORD_ENV}=… <%= config.bin %> push shop-2.4.0.tar.000 --key release.pub --registry registry.local:5000/shop --json`,
    '<%= config.bin %> push s3://dropzone/shop/shop-2.4.0.tar --endpoint https://minio.site.internal:9000 --key release.pub --registry harbor.local/airgap',
    '<%= config.bin %> push shop.tar --key release.pub --registry 127.0.0.1:5000 --plain-http --dry-run',
    '<%= config.bin %> push shop.tar --key release.pub --registry harbor.local/airgap --continue-on-error --concurrency 8',
    '<%= config.bin %> push shop-2.5.0.tar --key release.pub --registry harbor.local/airgap --on-existing-tag fail',
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description:
        'bundle tar file, first part of a split bundle (NAME.tar.000), extracted directory, or s3://bucket/key',
    }),
  };

  static override flags = {
    ...bundleLocationFlags,
    key: Flags.string({
      char: 'k',
      description: 'public key (SPKI PEM) of the bundle signer; required unless --skip-verify',
      exclusive: ['skip-verify'],
    }),
    registry: Flags.string({
      char: 'r',
      required: true,
      description: 'target registry HOST[:PORT][/PREFIX], e.g. harbor.local/airgap (no scheme)',
    }),
    'ca-file': Flags.string({
      multiple: true,
      description:
        'PEM file with CA certificate(s) to trust for the registry, besides the system CAs (repeatable)',
    }),
    username: Flags.string({
      char: 'u',
      description: `registry username (the password comes from --password-stdin or ${PASSWORD_ENV})`,
    }),
    'password-stdin': Flags.boolean({
      description: 'read the registry password from stdin (never from a flag)',
    }),
    insecure: Flags.boolean({
      description: 'skip TLS certificate verification (still TLS; testing only)',
    }),
    'plain-http': Flags.boolean({ description: 'speak plain HTTP to the registry (no TLS at all)' }),
    'skip-verify': Flags.boolean({
      description:
        'push WITHOUT verifying the signature and checksums (each blob is still checked against its digest)',
    }),
    reverify: Flags.boolean({
      description: 'run the full verification even when this unchanged bundle passed it before (see above)',
    }),
    'continue-on-error': Flags.boolean({
      description: 'push every image that can be pushed, list the failures at the end (exit 4)',
    }),
    concurrency: Flags.integer({
      char: 'c',
      min: 1,
      max: 64,
      default: 4,
      description: 'transfers in flight at once, shared by all images',
    }),
    'on-existing-tag': Flags.string({
      options: [...ON_EXISTING_TAG],
      default: 'overwrite',
      description:
        'a target tag that already points at another digest: overwrite it, skip (keep it, leave that item out) or fail before writing anything (exit 4)',
    }),
    'dry-run': Flags.boolean({
      description: 'verify, plan the target paths and check what the registry already has; write nothing',
    }),
  };

  async run(): Promise<PushResult & { error?: JsonError }> {
    const { args, flags } = await this.parse(Push);
    const target = parseRegistryTarget(flags.registry);
    if (!flags.key && !flags['skip-verify']) throw new UnverifiedPushError(args.bundle);
    if (flags['plain-http'] && flags['ca-file']?.length) {
      throw new InvalidInputError('--ca-file has no effect with --plain-http', {
        hint: 'drop one of them: --plain-http speaks HTTP without TLS',
      });
    }
    const credentials = await resolveCredentials({
      username: flags.username,
      passwordStdin: flags['password-stdin'],
      stdin: process.stdin,
    });
    if (flags['skip-verify']) {
      process.stderr.write(
        `WARNING: --skip-verify: ${args.bundle} is pushed WITHOUT checking its signature or SHA256SUMS.\n` +
          'WARNING: content is only checked against the digests the bundle itself names; anyone who could change\n' +
          'WARNING: the bundle could have changed what gets pushed. Verify with --key release.pub whenever you can.\n',
      );
    }
    if (credentials && (flags['plain-http'] || flags.insecure)) {
      this.progress.line(
        `note: credentials for ${target.host} may travel without TLS protection (${flags['plain-http'] ? '--plain-http' : '--insecure'})`,
      );
    }

    let phase: 'verify' | 'push' = 'verify';
    const onEvent = (e: PushEvent) => {
      switch (e.type) {
        case 'verify':
          this.progress.update({
            label: 'verifying',
            itemsLabel: 'members',
            bytesDone: e.progress.bytes,
            bytesTotal: e.progress.totalBytes,
            itemsDone: e.progress.members,
          });
          break;
        case 'verified':
          this.progress.done();
          this.progress.line(
            `verified ${args.bundle}: signature OK (key ${e.report.signature.keyFingerprint}), ${e.report.members} members, ${e.report.images.length} images, ${e.report.charts.length} charts`,
          );
          break;
        case 'planned':
          phase = 'push';
          this.progress.line(
            `${flags['dry-run'] ? 'would push' : 'pushing'} ${e.items.length} image(s)/chart(s), ${formatBytes(e.bytesTotal)}, to ${flags.registry}`,
          );
          break;
        case 'progress':
          if (phase === 'push') {
            this.progress.update({
              label: 'pushing',
              itemsLabel: 'images and charts',
              bytesDone: e.bytesDone,
              bytesTotal: e.bytesTotal,
              itemsDone: e.itemsDone,
              itemsTotal: e.itemsTotal,
            });
          }
          break;
        case 'item': {
          const i = e.item;
          const what = i.status === 'planned' ? 'to push' : i.status;
          const tag = i.existingTag
            ? ` (tag ${i.existingTag.action === 'skip' ? 'kept at' : 'moved from'} ${i.existingTag.digest})`
            : '';
          this.progress.line(
            `${what.padEnd(7)} ${i.source} → ${i.target}${tag}${i.status === 'failed' ? `: ${i.error?.message}` : ''}`,
          );
          break;
        }
        case 'warning':
          this.progress.line(`warning: ${e.message}`);
          break;
      }
    };

    const result = await pushBundle({
      bundle: args.bundle,
      location: { endpoint: flags.endpoint, region: flags.region },
      registry: target,
      publicKey: flags.key,
      skipVerify: flags['skip-verify'],
      reverify: flags.reverify,
      registryOptions: {
        ...(flags['ca-file']?.length ? { caFile: flags['ca-file'] } : {}),
        ...(flags.insecure ? { insecure: true } : {}),
        ...(flags['plain-http'] ? { plainHttp: true } : {}),
        ...(credentials ? { credentials } : {}),
      },
      continueOnError: flags['continue-on-error'],
      concurrency: flags.concurrency,
      dryRun: flags['dry-run'],
      onExistingTag: flags['on-existing-tag'] as OnExistingTag,
      signal: this.signal,
      onEvent,
    });
    this.progress.done();

    const s = result.summary;
    const kept = result.items.filter((i) => i.existingTag?.action === 'skip').length;
    this.log(
      `${result.dryRun ? 'dry run: ' : ''}${s.images.pushed} pushed, ${s.images.skipped - kept} skipped (already there)${kept ? `, ${kept} left out (--on-existing-tag skip)` : ''}, ${s.images.failed} failed` +
        (result.dryRun ? `, ${result.items.filter((i) => i.status === 'planned').length} to push` : '') +
        ` · blobs: ${s.blobs.pushed} pushed, ${s.blobs.mounted} mounted, ${s.blobs.skipped} skipped · ${formatBytes(s.bytes)} sent in ${formatDuration(s.durationMs)}${s.verifyMs ? ` (verification ${formatDuration(s.verifyMs)})` : ''}`,
    );
    if (s.extras.pushed + s.extras.skipped > 0) {
      this.log(
        `supply-chain artifacts: ${s.extras.pushed} pushed, ${s.extras.skipped} already there` +
          (s.extras.indexes
            ? `, ${s.extras.indexes} referrers tag index(es) written (the registry has no referrers API)`
            : ''),
      );
    }
    for (const x of s.extras.replaced)
      this.log(`signature tag replaced: ${x.target} ${x.existing} → ${x.bundled}`);
    for (const t of s.existingTags) {
      const verb = t.action === 'skip' ? 'kept' : result.dryRun ? 'would move' : 'moved';
      this.log(
        `tag ${verb}: ${t.target} ${t.existing}${t.action === 'skip' ? ` (bundle: ${t.bundled})` : ` → ${t.bundled}`}`,
      );
    }
    try {
      assertComplete(result);
    } catch (err) {
      // --continue-on-error: the result (with every failure) is still the output; the exit code says it failed.
      const e = err as LadingError;
      process.exitCode = e.exitCode;
      const error = this.errorJson(e);
      if (!this.jsonEnabled())
        process.stderr.write(`Error: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ''}\n`);
      return { ...result, error };
    }
    return result;
  }
}
