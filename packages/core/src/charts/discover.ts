import { parse as parseYaml } from 'yaml';
import { formatReference, parseReference, withDefaultTag } from '../reference/index.ts';
import type { ChartArchive } from './archive.ts';

/** One image a chart refers to. */
export interface DiscoveredImage {
  /** Full normalised reference: `docker.io/bitnami/nginx:1.27.3`, `…@sha256:…` (Docker's rules, `latest` when untagged). */
  image: string;
  /** Where it was found: a values path (`metrics.image`, `postgresql.image` for a subchart) or the annotation. */
  path: string;
  kind: 'map' | 'string' | 'annotation';
  /** The chart (or subchart) whose values.yaml / Chart.yaml held it. */
  chart: string;
}

export interface SkippedImage {
  path: string;
  chart: string;
  value: string;
  reason: string;
}

export interface DiscoveryResult {
  images: DiscoveredImage[];
  /** Image-like fields that could not be turned into a reference (templated, malformed). */
  skipped: SkippedImage[];
}

type Node = string | Node[] | { [k: string]: Node } | null;

const KIND_RANK: Record<DiscoveredImage['kind'], number> = { map: 0, string: 1, annotation: 2 };
const ARTIFACTHUB_IMAGES = 'artifacthub.io/images';

function isMap(n: unknown): n is Record<string, Node> {
  return typeof n === 'object' && n !== null && !Array.isArray(n);
}

/** A scalar from a failsafe parse, with YAML's spellings of null read as empty. */
function scalar(n: unknown): string {
  if (typeof n !== 'string') return '';
  const s = n.trim();
  return s === '~' || s === 'null' || s === 'Null' || s === 'NULL' ? '' : s;
}

function isImageKey(k: string): boolean {
  // `image`, and camelCase `<something>Image` keys (initImage, sidecarImage…).
  return k === 'image' || /[a-z0-9]Image$/.test(k);
}

function parseValues(text: string | undefined): Node {
  if (!text) return null;
  try {
    // Failsafe schema: every scalar is a string, so `tag: 1.10` stays "1.10" and not 1.1.
    return parseYaml(text, { schema: 'failsafe', maxAliasCount: 1000, merge: true }) as Node;
  } catch {
    return null;
  }
}

function normalise(raw: string): string {
  return formatReference(withDefaultTag(parseReference(raw)));
}

interface Ctx {
  chart: string;
  found: DiscoveredImage[];
  skipped: SkippedImage[];
}

function add(ctx: Ctx, raw: string, path: string, kind: DiscoveredImage['kind']): void {
  if (raw.includes('{{')) {
    ctx.skipped.push({ path, chart: ctx.chart, value: raw, reason: 'templated value' });
    return;
  }
  try {
    ctx.found.push({ image: normalise(raw), path, kind, chart: ctx.chart });
  } catch (err) {
    ctx.skipped.push({ path, chart: ctx.chart, value: raw, reason: (err as Error).message });
  }
}

/**
 * A map under another key that has an image's shape: a `repository` with an explicit `tag` or
 * `digest`, and a `registry` or `pullPolicy` beside them — Bitnami's `git: {registry, repository,
 * tag, digest, pullPolicy}` in apache and pytorch. A git or chart `repository` is a URL, and the
 * tag is never guessed from appVersion here, so plain settings maps are not taken for images.
 */
function looksLikeImageMap(m: Record<string, Node>): boolean {
  if (scalar(m.repository) === '') return false;
  if (scalar(m.tag) === '' && scalar(m.digest) === '') return false;
  return 'registry' in m || 'pullPolicy' in m;
}

/** Adds a reference found by shape only; one that does not parse is not an image, and not reported. */
function addIfReference(ctx: Ctx, raw: string, path: string): boolean {
  if (raw.includes('{{') || raw.includes('://')) return false;
  try {
    ctx.found.push({ image: normalise(raw), path, kind: 'map', chart: ctx.chart });
    return true;
  } catch {
    return false;
  }
}

/**
 * The reference an `image:` map stands for.
 *
 * Rules (Bitnami's common.images.image helper and the Helm starter chart):
 * - registry: a non-empty `global.imageRegistry` wins (Bitnami), else `image.registry`, else a
 *   `registry` string next to `image` in the parent map; none → the repository as written
 *   (which may itself start with a host, `quay.io/prometheus/node-exporter`).
 * - tag: `image.tag`; when empty, the owning chart's `appVersion` (`{{ .Values.image.tag |
 *   default .Chart.AppVersion }}`); when that is missing too, Docker's implicit `latest`.
 * - digest: `image.digest` when set (kept alongside the tag: `repo:tag@sha256:…`).
 */
function mapRef(
  image: Record<string, Node>,
  parent: Record<string, Node>,
  globalRegistry: string,
  appVersion: string,
): string | undefined {
  const repository = scalar(image.repository);
  if (repository === '') return undefined;
  const registry = globalRegistry || scalar(image.registry) || scalar(parent.registry);
  const tag = scalar(image.tag) || appVersion;
  const digest = scalar(image.digest);
  return (
    (registry ? `${registry}/` : '') + repository + (tag ? `:${tag}` : '') + (digest ? `@${digest}` : '')
  );
}

function walk(
  node: Node,
  path: string,
  ctx: Ctx,
  globalRegistry: string,
  appVersionAt: (path: string) => string,
): void {
  if (Array.isArray(node)) {
    for (const [i, child] of node.entries()) walk(child, `${path}[${i}]`, ctx, globalRegistry, appVersionAt);
    return;
  }
  if (!isMap(node)) return;
  for (const [k, v] of Object.entries(node)) {
    const childPath = path === '' ? k : `${path}.${k}`;
    if (isImageKey(k)) {
      if (typeof v === 'string' && scalar(v) !== '') {
        add(ctx, scalar(v), childPath, 'string');
        continue;
      }
      if (isMap(v)) {
        const ref = mapRef(v, node, globalRegistry, appVersionAt(childPath));
        if (ref !== undefined) {
          add(ctx, ref, childPath, 'map');
          continue;
        }
      }
    } else if (isMap(v) && looksLikeImageMap(v)) {
      const ref = mapRef(v, node, globalRegistry, '');
      if (ref !== undefined && addIfReference(ctx, ref, childPath)) continue;
    }
    walk(v, childPath, ctx, globalRegistry, appVersionAt);
  }
}

function annotationImages(chart: ChartArchive, prefix: string, ctx: Ctx): void {
  const text = chart.metadata.annotations?.[ARTIFACTHUB_IMAGES];
  if (!text) return;
  let list: unknown;
  try {
    list = parseYaml(text, { schema: 'failsafe' });
  } catch (err) {
    ctx.skipped.push({
      path: `${prefix}annotations.${ARTIFACTHUB_IMAGES}`,
      chart: ctx.chart,
      value: text,
      reason: `not valid YAML: ${(err as Error).message}`,
    });
    return;
  }
  if (!Array.isArray(list)) return;
  list.forEach((item, i) => {
    const image = isMap(item) ? scalar(item.image) : '';
    if (image) add(ctx, image, `${prefix}annotations.${ARTIFACTHUB_IMAGES}[${i}]`, 'annotation');
  });
}

/** The name a parent uses for a subchart: the dependency's alias when it has one. */
function subchartKey(parent: ChartArchive, sub: ChartArchive): string {
  const dep = parent.metadata.dependencies?.find((d) => d.name === sub.metadata.name && d.alias);
  return dep?.alias ?? sub.metadata.name;
}

function discoverIn(chart: ChartArchive, prefix: string, parentGlobal: string, out: Ctx): void {
  const ctx: Ctx = { chart: chart.metadata.name, found: out.found, skipped: out.skipped };
  const values = parseValues(chart.valuesYaml);
  const global = isMap(values) && isMap(values.global) ? scalar(values.global.imageRegistry) : '';
  // Helm merges the parent's globals over the subchart's: the parent's registry wins when set.
  const globalRegistry = parentGlobal || global;
  const keys = new Map<string, ChartArchive>();
  for (const s of chart.subcharts) keys.set(subchartKey(chart, s.chart), s.chart);
  const own = chart.metadata.appVersion ?? '';
  // Values under `<subchart>:` in the parent configure that subchart: use its appVersion there.
  const appVersionAt = (p: string): string => {
    const top = p.split(/[.[]/)[0] ?? '';
    const sub = keys.get(top);
    return sub && p.includes('.') ? (sub.metadata.appVersion ?? '') : own;
  };
  walk(values, prefix.replace(/\.$/, ''), ctx, globalRegistry, (p) => appVersionAt(p.slice(prefix.length)));
  annotationImages(chart, prefix, ctx);
  for (const [key, sub] of [...keys.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    discoverIn(sub, `${prefix}${key}.`, globalRegistry, out);
  }
}

/**
 * Images a chart refers to: `image:` maps (`{registry, repository, tag, digest}`, nested anywhere),
 * maps of that shape under other keys (`git: {registry, repository, tag}`, see looksLikeImageMap)
 * and `image: repo:tag` strings in values.yaml, the `artifacthub.io/images` annotation in
 * Chart.yaml, for the chart and every subchart (unpacked or .tgz, paths prefixed by the subchart's
 * name or alias). One entry per image — the first by kind (map, string, annotation) then path —
 * sorted by image. Explicit lists and `none` are the caller's business.
 */
export function discoverChartImages(chart: ChartArchive): DiscoveryResult {
  const ctx: Ctx = { chart: chart.metadata.name, found: [], skipped: [] };
  discoverIn(chart, '', '', ctx);
  const best = new Map<string, DiscoveredImage>();
  const order = (a: DiscoveredImage, b: DiscoveredImage): number =>
    KIND_RANK[a.kind] - KIND_RANK[b.kind] || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  for (const f of ctx.found) {
    const cur = best.get(f.image);
    if (!cur || order(f, cur) < 0) best.set(f.image, f);
  }
  const images = [...best.values()].sort((a, b) => (a.image < b.image ? -1 : a.image > b.image ? 1 : 0));
  const skipped = ctx.skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { images, skipped };
}

/** `discoverChartImages(chart).images`. */
export function discoverImages(chart: ChartArchive): DiscoveredImage[] {
  return discoverChartImages(chart).images;
}
