import { LadingCommand, paragraphs } from '@lading/cli';
import { type BundleInput, BundleTarget } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags, openBundleLocation } from '../lib/bundle-location.ts';
import {
  parseServeAddress,
  readServeTls,
  type ServeAddress,
  type ServeTls,
  startBundleRegistry,
  verifyBeforeUse,
} from '../lib/serve/index.ts';

export interface ServeResult {
  url: string;
  verified: boolean;
  repositories: Array<{ name: string; tags: string[] }>;
  images: Array<{ source: string; served: string; digest: string; mediaType: string }>;
  requests: number;
  manifests: number;
  blobs: number;
  bytes: number;
}

export default class Serve extends LadingCommand<ServeResult> {
  static override summary = 'Serve a bundle as a read-only OCI registry.';
  static override description = paragraphs(
    `A read-only OCI Distribution endpoint straight from the bundle: no registry, no extraction.
Images appear under their source path with the host dropped (docker.io/library/nginx:1.27.3 →
library/nginx:1.27.3), charts under charts/<name>:<version>. Manifests by tag or digest, blobs with Range,
tags list and catalog; anything that writes gets 405. A blob is served only in the repositories whose images
reference it. The bundle is verified first (--key) unless --skip-verify is given. Runs until SIGINT/SIGTERM.

TLS: --tls-cert and --tls-key (PEM) serve HTTPS (TLS 1.2 or later) with the site's certificate, so nodes
verify it against the site CA (mirror-config --ca-file/--ca-cert writes the matching https entries).
--client-ca adds mutual TLS: only clients presenting a certificate that CA signed are served. Without
--tls-cert the endpoint is plain HTTP and clients need e.g. --tls-verify=false (skopeo) or an
insecure-registry setting.`,
  );

  static override examples = [
    '<%= config.bin %> serve shop-2.4.0.tar --key release.pub',
    'skopeo copy --src-tls-verify=false docker://127.0.0.1:5000/library/nginx:1.27.3 oci:nginx:1.27.3',
    '<%= config.bin %> serve shop-2.4.0.tar --key release.pub --address 0.0.0.0:5443 --tls-cert loader.site.pem --tls-key loader.site.key',
    'skopeo copy --src-cert-dir /etc/containers/certs.d/loader.site:5443 docker://loader.site:5443/library/nginx:1.27.3 oci:nginx:1.27.3',
    '<%= config.bin %> serve shop-2.4.0.tar --key release.pub --tls-cert loader.pem --tls-key loader.key --client-ca nodes-ca.pem',
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description: 'bundle tar, first part of a split bundle, or extracted folder',
    }),
  };

  static override flags = {
    address: Flags.string({
      default: '127.0.0.1:5000',
      description: 'HOST:PORT to listen on (port 0: any free port)',
    }),
    key: Flags.string({
      char: 'k',
      description: 'release public key (PEM) to verify the bundle with before serving',
    }),
    'skip-verify': Flags.boolean({
      description: 'serve without verifying the bundle first',
      exclusive: ['key'],
    }),
    'tls-cert': Flags.string({
      description: 'serve HTTPS with this certificate (PEM, with its intermediates)',
      dependsOn: ['tls-key'],
    }),
    'tls-key': Flags.string({ description: 'private key (PEM) of --tls-cert', dependsOn: ['tls-cert'] }),
    'client-ca': Flags.string({
      description: 'mutual TLS: serve only clients with a certificate this CA (PEM) signed',
      dependsOn: ['tls-cert'],
    }),
    ...bundleLocationFlags,
  };

  async run(): Promise<ServeResult> {
    const { args, flags } = await this.parse(Serve);
    const address = parseServeAddress(flags.address);
    const tls =
      flags['tls-cert'] && flags['tls-key']
        ? await readServeTls({ cert: flags['tls-cert'], key: flags['tls-key'], clientCa: flags['client-ca'] })
        : undefined;
    const location = await openBundleLocation(args.bundle, {
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
    });
    try {
      return await this.serve(location.input, args.bundle, address, tls, flags);
    } finally {
      await location.close();
    }
  }

  private async serve(
    input: BundleInput,
    display: string,
    address: ServeAddress,
    tls: ServeTls | undefined,
    flags: { key?: string | undefined; 'skip-verify': boolean },
  ): Promise<ServeResult> {
    const report = await verifyBeforeUse(input, {
      command: 'serve',
      ...(flags.key ? { key: flags.key } : {}),
      skipVerify: flags['skip-verify'],
      signal: this.signal,
    });
    if (report) this.progress.line(`verified ${display} (key ${report.signature.keyFingerprint})`);
    else this.progress.line(`warning: serving ${display} without verifying it (--skip-verify)`);
    const target = await BundleTarget.open(input, {
      signal: this.signal,
      // What is served is what was verified: the same SHA256SUMS, read through one open file.
      ...(report?.sumsDigest ? { expectSumsDigest: report.sumsDigest } : {}),
    });
    try {
      const registry = await startBundleRegistry(target, address, {
        signal: this.signal,
        ...(tls ? { tls } : {}),
      });
      const images = registry.catalog.images;
      // Readiness line: on stdout for people, on stderr with --json (stdout holds the result).
      const ready = `serving ${images.length} image(s) and chart(s) from ${display} at ${registry.url}`;
      if (this.jsonEnabled()) process.stderr.write(`${ready}\n`);
      else {
        this.log(ready);
        for (const i of images)
          this.log(`  ${registry.url.replace(/^https?:\/\//, '')}/${i.served}  ${i.digest}`);
        this.log('press Ctrl-C to stop');
      }
      await new Promise<void>((resolve) => {
        if (this.signal.aborted) resolve();
        else this.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await registry.close();
      if (!this.jsonEnabled()) {
        this.log(
          `stopped: ${registry.stats.requests} request(s), ${registry.stats.manifests} manifest(s), ${registry.stats.blobs} blob(s), ${registry.stats.bytes} bytes`,
        );
      }
      return {
        url: registry.url,
        verified: report !== undefined,
        repositories: registry.catalog.names().map((name) => ({
          name,
          tags: [...(registry.catalog.repositories.get(name)?.tags.keys() ?? [])].sort(),
        })),
        images: images.map((i) => ({
          source: i.source,
          served: i.served,
          digest: i.digest,
          mediaType: i.mediaType,
        })),
        ...registry.stats,
      };
    } finally {
      await target.close();
    }
  }
}
