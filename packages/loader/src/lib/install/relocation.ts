import {
  type BundleChart,
  type ChartArchive,
  type LadingJson,
  parseReference,
  type Reference,
} from '@lading/core';
import { parse as parseYaml } from 'yaml';
import { formatRegistryTarget, type RegistryTarget, targetRepository } from '../registry-target.ts';

/**
 * Generated relocation values: point every image a chart refers to at the private registry.
 *
 * * `global.imageRegistry` = `HOST[/PREFIX]` (Bitnami's and many charts' global override).
 * * kind `map` (`image: {registry, repository, tag, digest}`): `registry` = `HOST[/PREFIX]` and
 *   `repository` = the source repository (`library/nginx`). The prefix goes with the registry, not
 *   with the repository: charts that let `global.imageRegistry` win over `image.registry`
 *   (Bitnami) then render `HOST/PREFIX/library/nginx` too, where a prefixed repository would be
 *   prefixed twice. A map whose chart default has no `registry` and carries the host inside
 *   `repository` (`repository: ghcr.io/acme/migrate`) gets `repository` = the full relocated
 *   name instead, since its templates never read a registry field.
 * * kind `string` (`image: repo:tag`): the full relocated reference.
 * * kind `annotation` (`artifacthub.io/images`): metadata only, nothing to set.
 * * Digests: when the chart pins a digest, the bundled digest is set (it differs from upstream when
 *   a platform filter rewrote the index); tags are left to the chart.
 * * A path through a list (`initContainers[0].image`): Helm replaces lists whole, so the chart's
 *   default list is copied and only the image changed; without the chart's values it is skipped.
 */

export interface RelocationEntry {
  path: string;
  kind: 'map' | 'string' | 'annotation';
  /** The image as discovered (source reference). */
  image: string;
  /** The reference it now resolves to. */
  relocated: string;
  /** What was set: values keys (dotted) → value; empty when nothing could be set. */
  set: Record<string, string>;
  /** Why nothing (or not everything) was set. */
  note?: string;
}

export interface Relocation {
  values: Record<string, unknown>;
  entries: RelocationEntry[];
}

type Segment = string | number;

/** `a.b[0].c` → ['a', 'b', 0, 'c']. */
export function parseValuesPath(path: string): Segment[] {
  const out: Segment[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    if (m[1]) out.push(m[1]);
    for (const idx of (m[2] ?? '').matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getAt(root: unknown, segs: readonly Segment[]): unknown {
  let cur = root;
  for (const s of segs) {
    if (typeof s === 'number') {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[s];
    } else {
      if (!isMap(cur)) return undefined;
      cur = cur[s];
    }
  }
  return cur;
}

/** The chart's default values, with each subchart's defaults under its key (alias or name). */
export function chartDefaults(chart: ChartArchive | undefined): Record<string, unknown> | undefined {
  if (!chart) return undefined;
  const parse = (text: string | undefined): Record<string, unknown> => {
    try {
      const v = parseYaml(text ?? '', { schema: 'core', maxAliasCount: 1000, merge: true }) as unknown;
      return isMap(v) ? v : {};
    } catch {
      return {};
    }
  };
  const own = parse(chart.valuesYaml);
  for (const sub of chart.subcharts) {
    const dep = chart.metadata.dependencies?.find((d) => d.name === sub.chart.metadata.name && d.alias);
    const key = dep?.alias ?? sub.chart.metadata.name;
    const subValues = chartDefaults(sub.chart) ?? {};
    const parentSide = isMap(own[key]) ? (own[key] as Record<string, unknown>) : {};
    own[key] = deepMerge(subValues, parentSide);
  }
  return own;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isMap(v) && isMap(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * Set `value` at `segs` in `values`. List segments copy the chart's default list first (Helm
 * replaces lists). Returns false when a list default is not known.
 */
function setAt(
  values: Record<string, unknown>,
  segs: readonly Segment[],
  value: unknown,
  defaults: Record<string, unknown> | undefined,
): boolean {
  let cur: unknown = values;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i] as Segment;
    const last = i === segs.length - 1;
    const next = segs[i + 1];
    if (typeof s === 'number') {
      const arr = cur as unknown[];
      if (last) arr[s] = value;
      else {
        if (!isMap(arr[s]) && !Array.isArray(arr[s])) arr[s] = {};
        cur = arr[s];
      }
      continue;
    }
    const obj = cur as Record<string, unknown>;
    if (last) {
      obj[s] = value;
      continue;
    }
    if (typeof next === 'number') {
      if (!Array.isArray(obj[s])) {
        const d = getAt(defaults, segs.slice(0, i + 1));
        if (!Array.isArray(d)) return false;
        obj[s] = structuredClone(d);
      }
    } else if (!isMap(obj[s])) {
      obj[s] = {};
    }
    cur = obj[s];
  }
  return true;
}

function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function formatRef(repo: string, r: Reference, digest: string | undefined): string {
  return `${repo}${r.tag ? `:${r.tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/** The bundled digest for a pinned source reference (the index may have been rewritten). */
function bundledDigest(lading: LadingJson, source: Reference, image: string): string | undefined {
  if (!source.digest) return undefined;
  const byRef = lading.images.find((i) => i.ref === image);
  if (byRef) return byRef.digest;
  const sameRepo = lading.images.find((i) => {
    try {
      const r = parseReference(i.ref);
      return (
        r.registry === source.registry &&
        r.repository === source.repository &&
        (i.upstreamDigest === source.digest || i.digest === source.digest)
      );
    } catch {
      return false;
    }
  });
  return sameRepo?.digest ?? source.digest;
}

export function relocationValues(
  chart: BundleChart,
  lading: LadingJson,
  target: RegistryTarget,
  archive: ChartArchive | undefined,
): Relocation {
  const registry = formatRegistryTarget(target);
  const values: Record<string, unknown> = { global: { imageRegistry: registry } };
  const defaults = chartDefaults(archive);
  const entries: RelocationEntry[] = [];
  for (const p of chart.imagePaths ?? []) {
    let source: Reference;
    try {
      source = parseReference(p.image);
    } catch {
      entries.push({ ...p, relocated: '', set: {}, note: 'not a valid image reference' });
      continue;
    }
    const digest = bundledDigest(lading, source, p.image);
    const repoAtTarget = targetRepository(target, source);
    const relocated = formatRef(`${target.host}/${repoAtTarget}`, source, digest);
    const entry: RelocationEntry = { path: p.path, kind: p.kind, image: p.image, relocated, set: {} };
    entries.push(entry);
    const segs = parseValuesPath(p.path);
    const put = (keySegs: Segment[], key: string, value: string) => {
      if (setAt(values, keySegs, value, defaults)) entry.set[key] = value;
      else entry.note = `${p.path} is inside a list and the chart's default list is unknown: not set`;
    };
    if (p.kind === 'annotation') {
      entry.note =
        'listed in the artifacthub.io/images annotation only: covered by global.imageRegistry at most';
      continue;
    }
    if (p.kind === 'string') {
      put(segs, p.path, relocated);
      continue;
    }
    const original = getAt(defaults, segs);
    const origMap = isMap(original) ? original : undefined;
    const origRegistry = typeof origMap?.registry === 'string' ? origMap.registry.trim() : '';
    const origRepo = typeof origMap?.repository === 'string' ? origMap.repository : '';
    const hostInRepository =
      origMap !== undefined &&
      origRegistry === '' &&
      looksLikeHost(origRepo.split('/')[0] ?? '') &&
      origRepo.includes('/');
    if (hostInRepository) {
      put([...segs, 'repository'], `${p.path}.repository`, `${target.host}/${repoAtTarget}`);
      entry.note = 'the chart keeps the host in repository: the full relocated name is set there';
    } else {
      put([...segs, 'registry'], `${p.path}.registry`, registry);
      put([...segs, 'repository'], `${p.path}.repository`, source.repository);
    }
    if (source.digest && digest) put([...segs, 'digest'], `${p.path}.digest`, digest);
  }
  return { values, entries };
}
