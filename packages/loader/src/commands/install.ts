import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LadingCommand, paragraphs } from '@lading/cli';
import { BundleTarget } from '@lading/core';
import { Args, Flags } from '@oclif/core';
import { type BundleLocation, bundleLocationFlags, openBundleLocation } from '../lib/bundle-location.ts';
import {
  findHelm,
  type InstallPlan,
  materialize,
  planInstall,
  type ReleaseResult,
  runInstall,
  shellLine,
} from '../lib/install/index.ts';
import { parseRegistryTarget, type RegistryTarget } from '../lib/registry-target.ts';
import { verifyBeforeUse } from '../lib/serve/index.ts';

export interface InstallResult {
  dryRun: boolean;
  verified: boolean;
  plan: InstallPlan & { commands: string[] };
  releases: ReleaseResult[];
}

interface InstallFlags {
  profile?: string | undefined;
  release?: string[] | undefined;
  values?: string[] | undefined;
  'dry-run': boolean;
  output?: string | undefined;
  'create-namespace': boolean;
  'ca-file'?: string | undefined;
  'plain-http': boolean;
  'chart-source': 'registry' | 'bundle';
  key?: string | undefined;
  'skip-verify': boolean;
}

export default class Install extends LadingCommand<InstallResult> {
  static override summary =
    "Install the bundle's releases with helm, their images pointed at the private registry.";
  static override description = paragraphs(
    `Runs \`helm upgrade --install\` for each release of the bundle (lading.json releases[]), in order, with the
chart from the private registry (oci://HOST/PREFIX/charts/NAME@sha256:DIGEST — pinned by the verified digest, helm >= 3.15 —
pushed there by \`lading-load push\`) or, with
--chart-source bundle, the chart archive from the bundle itself. Values, in this order: the release's values
files (from the bundle's files/), the --profile's value set, your --values files, and generated relocation
values that point every image found in the chart at the registry (global.imageRegistry and the exact values
paths recorded when the bundle was built). --dry-run prints the plan (helm command lines and the generated
values) without running helm. helm comes from --helm PATH or PATH; log in to an authenticated registry first
(helm registry login). The bundle is verified with --key before anything is read from it (its lading.json says
which charts, values and namespaces helm gets); --skip-verify installs from an unverified bundle at your own risk.`,
  );

  static override examples = [
    '<%= config.bin %> install shop.tar --registry harbor.local/airgap --profile prod-ha --key release.pub',
    '<%= config.bin %> install shop.tar --registry harbor.local/airgap --dry-run --key release.pub',
    '<%= config.bin %> install shop.tar --registry harbor.local/airgap --release web --values site.yaml --key release.pub',
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
      description: 'private registry the bundle was pushed to: HOST[:PORT][/PREFIX]',
    }),
    profile: Flags.string({
      description: 'value set of each release that defines it (release profiles in the spec)',
    }),
    release: Flags.string({ multiple: true, description: 'install only this release (repeatable)' }),
    values: Flags.string({
      multiple: true,
      description: "extra values file, applied after the bundle's (repeatable)",
    }),
    output: Flags.string({
      char: 'o',
      helpValue: 'DIR',
      description:
        'with --dry-run: write the values files (and bundled charts) under DIR, so the printed commands run',
      dependsOn: ['dry-run'],
    }),
    'dry-run': Flags.boolean({
      description: 'print the plan (helm commands, generated values) and run nothing',
    }),
    helm: Flags.string({ description: 'path of the helm binary (default: helm on PATH)' }),
    'create-namespace': Flags.boolean({ description: 'pass --create-namespace to helm' }),
    'ca-file': Flags.string({ description: "the registry's CA certificate (helm --ca-file)" }),
    'plain-http': Flags.boolean({ description: 'the registry speaks plain HTTP (helm --plain-http)' }),
    'chart-source': Flags.option({
      options: ['registry', 'bundle'] as const,
      default: 'registry',
      description: 'where helm takes the charts from',
    })(),
    key: Flags.string({
      char: 'k',
      description:
        'release public key (PEM): the bundle is verified with it first (required unless --skip-verify)',
    }),
    'skip-verify': Flags.boolean({
      description: 'install from the bundle without verifying it first (at your own risk)',
      exclusive: ['key'],
    }),
    ...bundleLocationFlags,
  };

  async run(): Promise<InstallResult> {
    const { args, flags } = await this.parse(Install);
    const target = parseRegistryTarget(flags.registry);
    // Find helm before any work, so a missing helm fails fast (a dry run needs none).
    let helm: string;
    if (flags['dry-run']) {
      // A dry run needs no helm, but the real install will: say so now.
      const found = await findHelm(flags.helm).catch(() => undefined);
      if (!found)
        this.progress.line(
          `warning: ${flags.helm ? `--helm ${flags.helm} is not an executable file` : 'helm was not found on PATH'}; the install itself will need it (--helm PATH)`,
        );
      helm = found ?? flags.helm ?? 'helm';
    } else helm = await findHelm(flags.helm);
    const location = await openBundleLocation(args.bundle, {
      endpoint: flags.endpoint,
      region: flags.region,
      signal: this.signal,
    });
    try {
      return await this.install(location, helm, target, flags);
    } finally {
      await location.close();
    }
  }

  private async install(
    location: BundleLocation,
    helm: string,
    target: RegistryTarget,
    flags: InstallFlags,
  ): Promise<InstallResult> {
    const report = await verifyBeforeUse(location.input, {
      command: 'install',
      ...(flags.key ? { key: flags.key } : {}),
      skipVerify: flags['skip-verify'],
      signal: this.signal,
    });
    if (!report) this.progress.line('warning: installing from an unverified bundle (--skip-verify)');
    const bundle = await BundleTarget.open(location.input, {
      signal: this.signal,
      // What is installed is what was verified: the same SHA256SUMS, read through one open file.
      ...(report?.sumsDigest ? { expectSumsDigest: report.sumsDigest } : {}),
    });
    // A dry run writes its values files only where the user says (--output DIR); otherwise its
    // paths start with DIR/ and the plan prints the generated values inline.
    const workDir = flags['dry-run']
      ? flags.output
        ? resolve(flags.output)
        : 'DIR'
      : await mkdtemp(join(tmpdir(), 'lading-install-'));
    if (flags['dry-run'] && flags.output) await mkdir(workDir, { recursive: true });
    try {
      const plan = await planInstall(
        bundle,
        {
          target,
          workDir,
          chartSource: flags['chart-source'],
          ...(flags.profile !== undefined ? { profile: flags.profile } : {}),
          ...(flags.release ? { releases: flags.release } : {}),
          ...(flags.values ? { values: flags.values } : {}),
          createNamespace: flags['create-namespace'],
          ...(flags['ca-file'] ? { caFile: flags['ca-file'] } : {}),
          plainHttp: flags['plain-http'],
        },
        { signal: this.signal },
      );
      const commands = plan.releases.map((r) => shellLine(helm, r.args));
      const result: InstallResult = {
        dryRun: flags['dry-run'],
        verified: report !== undefined,
        plan: { ...plan, commands },
        releases: [],
      };
      if (flags['dry-run']) {
        if (flags.output) await materialize(bundle, plan, { signal: this.signal });
        if (!this.jsonEnabled()) {
          this.printPlan(plan, commands);
          this.log(
            flags.output
              ? `\n# the values files are written under ${workDir}: the commands above run as they are`
              : '\n# DIR/…: give --output DIR to write the values files there and get commands that run as they are',
          );
        }
        return result;
      }
      await materialize(bundle, plan, { signal: this.signal });
      result.releases = await runInstall(plan, helm, {
        signal: this.signal,
        onRelease: (r, phase) => {
          if (phase === 'start') this.progress.line(`installing ${r.name} (${r.chart} ${r.version})…`);
        },
      });
      for (const r of result.releases) {
        this.log(`installed ${r.name}${r.namespace ? ` in ${r.namespace}` : ''}: ${r.chart} ${r.version}`);
      }
      return result;
    } finally {
      await bundle.close();
      if (!flags['dry-run']) await rm(workDir, { recursive: true, force: true });
    }
  }

  private printPlan(plan: InstallPlan, commands: string[]): void {
    this.log(
      `plan: ${plan.releases.length} release(s) of ${plan.bundle.name} ${plan.bundle.version}, images from ${plan.registry}` +
        (plan.profile ? `, profile ${plan.profile}` : ''),
    );
    plan.releases.forEach((r, i) => {
      this.log('');
      this.log(
        `# ${i + 1}. ${r.name}: chart ${r.chart} ${r.version}${r.namespace ? `, namespace ${r.namespace}` : ''}`,
      );
      for (const v of r.values) this.log(`#    -f ${v.path}  (${v.source}: ${v.from})`);
      this.log(commands[i] as string);
      this.log(`# generated relocation values (${r.values.at(-1)?.path}):`);
      for (const line of r.relocationYaml.trimEnd().split('\n'))
        this.log(line.startsWith('#') ? line : `  ${line}`);
      for (const e of r.relocation.entries) if (e.note) this.log(`# note: ${e.path}: ${e.note}`);
    });
  }
}
