import { LadingCommand, paragraphs } from '@lading/cli';
import { Args, Flags } from '@oclif/core';
import { type ChartImagesResult, chartImagesOf, rulesCovering } from '../lib/chart-images.ts';
import { table } from '../lib/inspect.ts';
import { parseSpec } from '../lib/spec/index.ts';

export default class Images extends LadingCommand<ChartImagesResult> {
  static override plainHttpFlag = '--plain-http-host HOST';
  static override summary = 'List the container images a Helm chart needs, as `create` would discover them.';

  static override description = paragraphs(
    `Reads the chart's values.yaml (and its subcharts'): image maps ({registry, repository, tag,
digest}) nested anywhere, maps of that shape under other keys (a repository with a tag or digest and a registry or
pullPolicy beside them, as bitnami's "git: {registry, repository, tag}"), and plain "repo:tag" strings under image
keys, plus the artifacthub.io/images annotation of Chart.yaml. Prints each image (normalised: docker.io/library/…, "latest" when untagged) with the values path where
it was found, and the fields that look like images but cannot be resolved (templated values).

With --spec lading.yaml, each image also shows the spec's verify: rules that cover it (RULE column; "-" when none):
those images will need a valid upstream signature at create.

CHART is a local chart folder or .tgz, an oci://host/path/name[:version] reference, or — with --repo — the name of a
chart in an HTTP chart repository.`,
  );

  static override examples = [
    '<%= config.bin %> images ./charts/billing',
    '<%= config.bin %> images --repo https://charts.bitnami.com/bitnami --version "^18.1.0" nginx',
    '<%= config.bin %> images oci://ghcr.io/stefanprodan/charts/podinfo --version 6.7.1 --json',
  ];

  static override args = {
    chart: Args.string({
      required: true,
      description: 'chart folder or .tgz, oci:// reference, or a chart name with --repo',
    }),
  };

  static override flags = {
    repo: Flags.string({ description: 'HTTP chart repository URL (the folder holding index.yaml)' }),
    version: Flags.string({
      description: 'chart version or semver range (--repo and oci://; default: highest stable)',
    }),
    'ca-file': Flags.string({ description: 'PEM file of a CA to trust (repeatable)', multiple: true }),
    'plain-http-host': Flags.string({
      helpValue: 'HOST[:PORT]',
      description: 'registry reached over plain HTTP, no TLS (oci://, repeatable)',
      multiple: true,
    }),
    insecure: Flags.boolean({ description: 'skip TLS certificate verification (still TLS; testing only)' }),
    spec: Flags.string({
      char: 's',
      helpValue: 'FILE',
      description:
        'a lading.yaml: show which of its verify: rules cover each image (they need a valid upstream signature)',
    }),
  };

  async run(): Promise<ChartImagesResult> {
    const { args, flags } = await this.parse(Images);
    const result = await chartImagesOf({
      chart: args.chart,
      ...(flags.repo ? { repo: flags.repo } : {}),
      ...(flags.version ? { version: flags.version } : {}),
      ...(flags['ca-file'] ? { caFiles: flags['ca-file'] } : {}),
      ...(flags['plain-http-host'] ? { plainHttp: flags['plain-http-host'] } : {}),
      insecure: flags.insecure,
      signal: this.signal,
    });
    if (flags.spec) {
      const spec = await parseSpec(flags.spec);
      result.rules = rulesCovering([...new Set(result.images.map((i) => i.image))], spec.verify);
    }
    this.log(
      `chart ${result.chart.name} ${result.chart.version} (${result.chart.source}): ${result.images.length} image(s)`,
    );
    if (result.images.length > 0) {
      const rules = result.rules;
      this.log(
        table(
          ['IMAGE', 'VALUES PATH', 'KIND', 'CHART', ...(rules ? ['RULE'] : [])],
          result.images.map((i) => [
            i.image,
            i.path,
            i.kind,
            i.chart,
            ...(rules ? [rules[i.image]?.join(', ') || '-'] : []),
          ]),
        ),
      );
    }
    if (result.skipped.length > 0) {
      this.log(`\nnot resolvable (${result.skipped.length}):`);
      this.log(
        table(
          ['VALUES PATH', 'VALUE', 'REASON'],
          result.skipped.map((s) => [s.path, s.value, s.reason]),
        ),
      );
    }
    return result;
  }
}
