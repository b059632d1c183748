import { readFile } from 'node:fs/promises';
import { LadingCommand, paragraphs } from '@lading/cli';
import { InvalidInputError, openBundle } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { bundleLocationFlags, openBundleLocation } from '../lib/bundle-location.ts';
import {
  formatMirrorConfig,
  MIRROR_FORMATS,
  type MirrorFile,
  type MirrorFormat,
  mirrorConfig,
  writeMirrorFiles,
} from '../lib/mirror-config/index.ts';
import { formatRegistryTarget, parseRegistryTarget } from '../lib/registry-target.ts';
import { verifyBeforeUse } from '../lib/serve/index.ts';

export interface MirrorConfigResult {
  format: MirrorFormat;
  registry: string;
  images: number;
  files: MirrorFile[];
  /** Absolute paths written with --output. */
  written?: string[];
  instructions: string;
}

export default class MirrorConfig extends LadingCommand<MirrorConfigResult> {
  static override summary =
    "Node configuration that pulls the bundle's original image references from the private registry.";
  static override description = paragraphs(
    `Generates mirror configuration for every source registry of the bundle's images (lading.json images[].ref),
pointing at --registry HOST[:PORT][/PREFIX] with the path rules of push (source host dropped, prefix in front).
--format is one of:
* containerd: certs.d/<source host>/hosts.toml (override_path with a prefix)
* k3s: registries.yaml for k3s / RKE2 (a rewrite rule for the prefix)
* registries-conf: a registries.conf.d drop-in for CRI-O, podman, skopeo
* idms: an OpenShift ImageDigestMirrorSet
* itms: an OpenShift ImageTagMirrorSet

Digests: layers, platform manifests and unfiltered images keep theirs. An index that a platform filter narrowed got a
new digest: the idms/itms files list each as upstream -> bundled, and a pull by its upstream digest fails at the mirror.

Without --output the files are printed with "# ==> path <==" headers; with --output they are written under DIR
(files already there are refused unless --force).
Entries are https unless --plain-http. --ca-cert FILE ships the registry's CA (e.g. the one that signed
serve --tls-cert) with the files, where each runtime reads it: certs.d/<host>/ca.crt for containerd and for
containers (CRI-O, podman, skopeo), a file named in ca_file for k3s; --ca-file only names a CA already on the nodes.
The bundle is verified with --key first (its lading.json names the images); --skip-verify uses it unverified.`,
  );

  static override examples = [
    '<%= config.bin %> mirror-config shop.tar --key release.pub --registry harbor.local/airgap --format containerd --output ./mirror',
    '<%= config.bin %> mirror-config shop.tar --key release.pub --registry 10.0.0.5:5000 --format registries-conf --plain-http',
    '<%= config.bin %> mirror-config shop.tar --key release.pub --registry loader.site:5443 --format k3s --ca-cert site-ca.pem --output ./mirror',
    '<%= config.bin %> mirror-config shop.tar --key release.pub --registry loader.site:5443 --format containerd --ca-cert site-ca.pem --client-cert /etc/pki/node.crt --client-key /etc/pki/node.key',
  ];

  static override args = {
    bundle: Args.string({
      required: true,
      description: 'bundle tar, first part of a split bundle, or extracted folder',
    }),
  };

  static override flags = {
    registry: Flags.string({
      char: 'r',
      required: true,
      description: 'private registry: HOST[:PORT][/PREFIX]',
    }),
    format: Flags.option({ options: MIRROR_FORMATS, required: true, description: 'configuration format' })(),
    'ca-file': Flags.string({ description: "path of the registry's CA certificate ON THE NODES" }),
    'client-cert': Flags.string({
      description:
        "mutual TLS (serve --client-ca): path of each node's client certificate (PEM) ON THE NODES",
      dependsOn: ['client-key'],
      exclusive: ['plain-http'],
    }),
    'client-key': Flags.string({
      description: 'mutual TLS: path of the key of --client-cert ON THE NODES',
      dependsOn: ['client-cert'],
    }),
    'ca-cert': Flags.string({
      description:
        "the registry's CA certificate (PEM, read here): written with the files and referenced in them",
      exclusive: ['plain-http'],
    }),
    'plain-http': Flags.boolean({ description: 'the registry speaks plain HTTP, no TLS (labs, tests)' }),
    output: Flags.string({
      char: 'o',
      description: 'write the files under this folder instead of printing them',
    }),
    force: Flags.boolean({
      char: 'f',
      description: 'replace files already under --output',
      dependsOn: ['output'],
    }),
    key: Flags.string({
      char: 'k',
      description:
        'release public key (PEM): the bundle is verified with it first (required unless --skip-verify)',
    }),
    'skip-verify': Flags.boolean({
      description: 'read the bundle without verifying it first (at your own risk)',
      exclusive: ['key'],
    }),
    ...bundleLocationFlags,
  };

  async run(): Promise<MirrorConfigResult> {
    const { args, flags } = await this.parse(MirrorConfig);
    const target = parseRegistryTarget(flags.registry);
    const location = await openBundleLocation(args.bundle, {
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
    });
    let images: string[];
    let name: string;
    let digestChanges: Array<{ ref: string; upstreamDigest: string; digest: string }>;
    try {
      const report = await verifyBeforeUse(location.input, {
        command: 'mirror-config',
        ...(flags.key ? { key: flags.key } : {}),
        skipVerify: flags['skip-verify'],
        signal: this.signal,
      });
      // The lading.json read is the verified one (the same SHA256SUMS, and lading.json against it).
      const bundle = await openBundle(location.input, {
        signal: this.signal,
        ...(report?.sumsDigest ? { expectSumsDigest: report.sumsDigest } : {}),
      });
      try {
        images = bundle.ladingJson.images.map((i) => i.ref);
        digestChanges = bundle.ladingJson.images
          .filter((i) => i.digest !== i.upstreamDigest)
          .map((i) => ({ ref: i.ref, upstreamDigest: i.upstreamDigest, digest: i.digest }));
        name = bundle.ladingJson.name;
      } finally {
        await bundle.close();
      }
    } finally {
      await location.close();
    }
    let caCert: string | undefined;
    if (flags['ca-cert']) {
      caCert = await readFile(flags['ca-cert'], 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new InvalidInputError(
          `--ca-cert ${flags['ca-cert']}: cannot read it (${err.code ?? err.message})`,
          {
            hint: "give the path of the registry's CA certificate (PEM) on this machine",
          },
        );
      });
      if (!caCert.includes('-----BEGIN CERTIFICATE-----')) {
        throw new InvalidInputError(`--ca-cert ${flags['ca-cert']} holds no PEM certificate`, {
          hint: 'give the CA certificate in PEM format (-----BEGIN CERTIFICATE-----)',
        });
      }
    }
    const config = mirrorConfig(flags.format, {
      ...(caCert ? { caCert } : {}),
      ...(flags['client-cert'] && flags['client-key']
        ? { clientCert: { cert: flags['client-cert'], key: flags['client-key'] } }
        : {}),
      target,
      images,
      name,
      digestChanges,
      ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
      plainHttp: flags['plain-http'],
    });
    const result: MirrorConfigResult = {
      format: config.format,
      registry: formatRegistryTarget(target),
      images: images.length,
      files: config.files,
      instructions: config.instructions,
    };
    if (flags.output) {
      result.written = await writeMirrorFiles(flags.output, config.files, { overwrite: flags.force });
      for (const w of result.written) this.log(`wrote ${w}`);
      this.log(config.instructions);
    } else if (!this.jsonEnabled()) {
      process.stdout.write(formatMirrorConfig(config));
    }
    return result;
  }
}
