import { LadingCommand } from '@lading/cli';
import { type BundleInput, BundleTarget } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags, openBundleLocation } from '../lib/bundle-location.ts';
import {
  parseServeAddress,
  type ServeAddress,
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
  static override description =
    `A read-only OCI Distribution endpoint straight from the bundle: no registry, no extraction.
Images appear under their source path with the host dropped (docker.io/library/nginx:1.27.3 →
library/nginx:1.27.3), charts under charts/<name>:<version>. Manifests by tag or digest, blobs with Range,
tags list and catalog; anything that writes gets 405. A blob is served only in the repositories whose images
reference it. The bundle is verified first (--key) unless --skip-verify is given. Runs until SIGINT/SIGTERM.
Plain HTTP only: clients need e.g. --tls-verify=false (skopeo) or an insecure-registry setting.`;

  static override examples = [
    '<%= config.bin %> serve shop-2.4.0.tar --key release.pub',
    'skopeo copy --src-tls-verify=false docker://127.0.0.1:5000/library/nginx:1.27.3 oci:nginx:1.27.3',
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
    ...bundleLocationFlags,
  };

  async run(): Promise<ServeResult> {
    const { args, flags } = await this.parse(Serve);
    const address = parseServeAddress(flags.address);
    const location = await openBundleLocation(args.bundle, {
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
    });
    try {
      return await this.serve(location.input, args.bundle, address, flags);
    } finally {
      await location.close();
    }
  }

  private async serve(
    input: BundleInput,
    display: string,
    address: ServeAddress,
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
    const target = await BundleTarget.open(input, { signal: this.signal });
    try {
      const registry = await startBundleRegistry(target, address, { signal: this.signal });
      const images = registry.catalog.images;
      // Readiness line: on stdout for people, on stderr with --json (stdout holds the result).
      const ready = `serving ${images.length} image(s) and chart(s) from ${display} at ${registry.url}`;
      if (this.jsonEnabled()) process.stderr.write(`${ready}\n`);
      else {
        this.log(ready);
        for (const i of images)
          this.log(`  ${registry.url.replace(/^http:\/\//, '')}/${i.served}  ${i.digest}`);
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
