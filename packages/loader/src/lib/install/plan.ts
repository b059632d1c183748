import { createWriteStream } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  type Bundle,
  type BundleChart,
  type BundleTarget,
  type ChartArchive,
  chartRefName,
  type Descriptor,
  fetchVerified,
  InvalidInputError,
  readChartArchive,
  resolveChartLayer,
  VerifyingStream,
} from '@lading/core';
import { stringify } from 'yaml';
import { chartRepository, formatRegistryTarget, type RegistryTarget } from '../registry-target.ts';
import { type Relocation, relocationValues } from './relocation.ts';

/**
 * `install`: the plan (which releases, in which order, which values files, which helm command
 * lines) is computed from lading.json alone; `materialize` then writes the values files (from the
 * bundle's files/, the profile's, the user's, and the generated relocation values) and, with
 * `--chart-source bundle`, the chart archives into a work folder.
 */

export class InstallInputError extends InvalidInputError {
  override readonly code: string = 'INSTALL_INPUT';
}

export class UnknownProfileError extends InstallInputError {
  override readonly code = 'UNKNOWN_PROFILE';
  readonly available: string[];
  constructor(profile: string, available: string[]) {
    super(`no release in the bundle defines the profile "${profile}"`, {
      hint: available.length
        ? `the profiles available are: ${available.join(', ')}`
        : 'the bundle defines no profiles; leave out --profile',
    });
    this.available = available;
  }
}

export type ChartSource = 'registry' | 'bundle';

export interface InstallOptions {
  target: RegistryTarget;
  profile?: string;
  /** Only these releases (in bundle order). */
  releases?: readonly string[];
  /** User values files, applied after the release's and the profile's. */
  values?: readonly string[];
  chartSource?: ChartSource;
  createNamespace?: boolean;
  /** helm --ca-file (registry TLS). */
  caFile?: string;
  /** helm --plain-http. */
  plainHttp?: boolean;
  /** Where values files and chart archives go; in a dry run only named. */
  workDir: string;
}

export interface PlannedValuesFile {
  source: 'release' | 'profile' | 'user' | 'relocation';
  /** The path helm gets. */
  path: string;
  /** Where it comes from: the bundle member, the user's file, or `generated`. */
  from: string;
}

export interface PlannedRelease {
  name: string;
  namespace?: string;
  chart: string;
  version: string;
  /** oci://HOST/PREFIX/charts/NAME@sha256:…, or the .tgz path with --chart-source bundle. */
  chartRef: string;
  profile?: string;
  values: PlannedValuesFile[];
  relocation: Relocation;
  /** The generated relocation values, as written. */
  relocationYaml: string;
  /** helm arguments (without the helm binary). */
  args: string[];
}

export interface InstallPlan {
  bundle: { name: string; version: string };
  registry: string;
  chartSource: ChartSource;
  profile?: string;
  releases: PlannedRelease[];
}

function safeSegment(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_');
}

function chartFor(bundle: Bundle, name: string, release: string): BundleChart {
  const charts = bundle.ladingJson.charts.filter((c) => c.name === name);
  if (charts.length === 0) {
    throw new InstallInputError(`release ${release} uses chart ${name}, which is not in the bundle`, {
      hint: `the bundle holds the charts: ${bundle.ladingJson.charts.map((c) => `${c.name} ${c.version}`).join(', ') || '(none)'}`,
    });
  }
  return charts[0] as BundleChart;
}

async function chartManifest(target: BundleTarget, chart: BundleChart): Promise<Descriptor> {
  return target.resolve(chartRefName(chart.name, chart.version)).catch(() => target.resolve(chart.digest));
}

/** The chart's archive read from the bundle (values defaults for relocation); undefined if absent. */
export async function readBundledChart(
  target: BundleTarget,
  chart: BundleChart,
  opts: { signal?: AbortSignal } = {},
): Promise<ChartArchive | undefined> {
  try {
    const manifest = await chartManifest(target, chart);
    const { layer } = await resolveChartLayer(target, manifest, opts);
    if (!target.bundle.hasBlob(layer.digest)) return undefined;
    return await readChartArchive(await fetchVerified(target, layer, opts), {
      source: chartRefName(chart.name, chart.version),
    });
  } catch {
    return undefined;
  }
}

export async function planInstall(
  target: BundleTarget,
  opts: InstallOptions,
  ctx: { signal?: AbortSignal } = {},
): Promise<InstallPlan> {
  const bundle = target.bundle;
  const lading = bundle.ladingJson;
  const all = lading.releases;
  if (all.length === 0) {
    throw new InstallInputError(`${bundle.path}: the bundle defines no releases`, {
      hint: 'releases come from the spec (releases: in lading.yaml); push the bundle and install its charts yourself',
    });
  }
  let selected = all;
  if (opts.releases && opts.releases.length > 0) {
    const names = new Set(all.map((r) => r.name));
    const unknown = opts.releases.filter((r) => !names.has(r));
    if (unknown.length > 0) {
      throw new InstallInputError(`--release ${unknown.join(', ')}: not a release of the bundle`, {
        hint: `the releases are: ${all.map((r) => r.name).join(', ')}`,
      });
    }
    selected = all.filter((r) => opts.releases?.includes(r.name));
  }
  if (opts.profile !== undefined) {
    const available = [...new Set(all.flatMap((r) => Object.keys(r.profiles ?? {})))].sort();
    if (!selected.some((r) => r.profiles?.[opts.profile as string] !== undefined)) {
      throw new UnknownProfileError(opts.profile, available);
    }
  }
  const userValues: string[] = [];
  for (const v of opts.values ?? []) {
    const abs = resolve(v);
    try {
      await access(abs);
    } catch {
      throw new InstallInputError(`--values ${v}: no such file`, {
        hint: 'give the path of a YAML values file',
      });
    }
    userValues.push(abs);
  }
  const chartSource = opts.chartSource ?? 'registry';
  const releases: PlannedRelease[] = [];
  for (const r of selected) {
    const chart = chartFor(bundle, r.chart, r.name);
    const dir = join(opts.workDir, safeSegment(r.name));
    const values: PlannedValuesFile[] = [];
    let n = 0;
    const next = (source: PlannedValuesFile['source'], name: string) =>
      join(dir, `${String(++n).padStart(2, '0')}-${source}-${safeSegment(basename(name))}`);
    const fromBundle = (source: 'release' | 'profile', file: string) => {
      const member = `files/${file.replace(/^\.?\//, '')}`;
      if (!bundle.member(member)) {
        throw new InstallInputError(
          `release ${r.name}: values file ${file} is not in the bundle (${member})`,
          {
            hint: 'the bundle was built from a spec whose values files were not packed; rebuild it',
          },
        );
      }
      values.push({ source, path: next(source, file), from: member });
    };
    for (const f of r.values) fromBundle('release', f);
    const profileFiles = opts.profile !== undefined ? r.profiles?.[opts.profile] : undefined;
    for (const f of profileFiles ?? []) fromBundle('profile', f);
    for (const f of userValues) values.push({ source: 'user', path: f, from: f });
    const archive = await readBundledChart(target, chart, ctx);
    const relocation = relocationValues(chart, lading, opts.target, archive);
    const relocationYaml =
      `# Generated by lading-load install: images of chart ${chart.name} ${chart.version} relocated to ${formatRegistryTarget(opts.target)}\n` +
      stringify(relocation.values);
    values.push({
      source: 'relocation',
      path: next('relocation', 'lading-relocation.yaml'),
      from: 'generated',
    });
    const chartRef =
      chartSource === 'bundle'
        ? join(opts.workDir, 'charts', `${safeSegment(chart.name)}-${safeSegment(chart.version)}.tgz`)
        : // Pinned by the digest that was verified (lading.json, signed), not only by the version
          // tag, which anyone with push rights on the registry can move (helm >= 3.15 reads it).
          `oci://${opts.target.host}/${chartRepository(opts.target, chart.name)}@${chart.digest}`;
    const args = ['upgrade', '--install', r.name, chartRef];
    if (chartSource === 'registry') args.push('--version', chart.version);
    if (r.namespace) args.push('--namespace', r.namespace);
    if (opts.createNamespace) args.push('--create-namespace');
    if (chartSource === 'registry' && opts.caFile) args.push('--ca-file', opts.caFile);
    if (chartSource === 'registry' && opts.plainHttp) args.push('--plain-http');
    for (const v of values) args.push('-f', v.path);
    releases.push({
      name: r.name,
      ...(r.namespace ? { namespace: r.namespace } : {}),
      chart: chart.name,
      version: chart.version,
      chartRef,
      ...(profileFiles ? { profile: opts.profile } : {}),
      values,
      relocation,
      relocationYaml,
      args,
    });
  }
  return {
    bundle: { name: lading.name, version: lading.version },
    registry: formatRegistryTarget(opts.target),
    chartSource,
    ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
    releases,
  };
}

/** Write the plan's values files (and chart archives) into the work folder. */
export async function materialize(
  target: BundleTarget,
  plan: InstallPlan,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const bundle = target.bundle;
  for (const r of plan.releases) {
    for (const v of r.values) {
      if (v.source === 'user') continue;
      await mkdir(resolve(v.path, '..'), { recursive: true });
      if (v.source === 'relocation') {
        await writeFile(v.path, r.relocationYaml);
        continue;
      }
      // Checked against lading.json's digest for the file as it streams (even without --key).
      const listed = bundle.ladingJson.files.find((f) => `files/${f.path}` === v.from);
      const raw = bundle.openMember(v.from, undefined, undefined, opts);
      const checked = listed
        ? raw.pipe(
            new VerifyingStream({ digest: listed.digest, size: listed.size }, `${bundle.path}: ${v.from}`),
          )
        : raw;
      if (checked !== raw) raw.on('error', (err) => checked.destroy(err));
      await pipeline(checked, createWriteStream(v.path, { mode: 0o600 }));
    }
    if (plan.chartSource === 'bundle') {
      const chart = chartFor(bundle, r.chart, r.name);
      const manifest = await chartManifest(target, chart);
      const { layer } = await resolveChartLayer(target, manifest, opts);
      await mkdir(resolve(r.chartRef, '..'), { recursive: true });
      await pipeline(await fetchVerified(target, layer, opts), createWriteStream(r.chartRef));
    }
  }
}
