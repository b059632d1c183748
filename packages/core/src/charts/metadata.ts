import { parse as parseYaml } from 'yaml';
import { InvalidChartError } from './errors.ts';

/** A chart dependency as written in Chart.yaml (Helm's `chart.Dependency`). */
export interface ChartDependency {
  name: string;
  version?: string;
  repository?: string;
  condition?: string;
  tags?: string[];
  enabled?: boolean;
  'import-values'?: unknown[];
  alias?: string;
}

export interface ChartMaintainer {
  name?: string;
  email?: string;
  url?: string;
}

/** Chart.yaml (Helm's `chart.Metadata`), the fields Helm knows. */
export interface ChartMetadata {
  name: string;
  home?: string;
  sources?: string[];
  version: string;
  description?: string;
  keywords?: string[];
  maintainers?: ChartMaintainer[];
  icon?: string;
  apiVersion?: string;
  condition?: string;
  tags?: string;
  appVersion?: string;
  deprecated?: boolean;
  annotations?: Record<string, string>;
  kubeVersion?: string;
  dependencies?: ChartDependency[];
  type?: string;
}

/** Chart.yaml and values.yaml are small; larger ones are refused. */
export const MAX_CHART_METADATA_BYTES = 1024 * 1024;

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function strList(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.map(str).filter((s): s is string => s !== undefined);
}

/** Parse Chart.yaml text into metadata; `name` and `version` are required. */
export function parseChartYaml(text: string, source: string): ChartMetadata {
  if (Buffer.byteLength(text) > MAX_CHART_METADATA_BYTES) {
    throw new InvalidChartError(source, `Chart.yaml is larger than ${MAX_CHART_METADATA_BYTES} bytes`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new InvalidChartError(source, `Chart.yaml is not valid YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidChartError(source, 'Chart.yaml is not a YAML mapping');
  }
  const y = doc as Record<string, unknown>;
  const name = str(y.name);
  const version = str(y.version);
  if (!name) throw new InvalidChartError(source, 'Chart.yaml has no name');
  if (!version) throw new InvalidChartError(source, `Chart.yaml of "${name}" has no version`);
  const meta: ChartMetadata = { name, version };
  const setStr = (
    k:
      | 'home'
      | 'description'
      | 'icon'
      | 'apiVersion'
      | 'condition'
      | 'tags'
      | 'appVersion'
      | 'kubeVersion'
      | 'type',
  ) => {
    const v = str(y[k]);
    if (v !== undefined && v !== '') meta[k] = v;
  };
  for (const k of [
    'home',
    'description',
    'icon',
    'apiVersion',
    'condition',
    'tags',
    'appVersion',
    'kubeVersion',
    'type',
  ] as const) {
    setStr(k);
  }
  const sources = strList(y.sources);
  if (sources?.length) meta.sources = sources;
  const keywords = strList(y.keywords);
  if (keywords?.length) meta.keywords = keywords;
  if (Array.isArray(y.maintainers)) {
    meta.maintainers = y.maintainers
      .filter((m): m is Record<string, unknown> => typeof m === 'object' && m !== null)
      .map((m) => {
        const out: ChartMaintainer = {};
        for (const k of ['name', 'email', 'url'] as const) {
          const v = str(m[k]);
          if (v) out[k] = v;
        }
        return out;
      });
  }
  if (y.deprecated === true) meta.deprecated = true;
  if (typeof y.annotations === 'object' && y.annotations !== null && !Array.isArray(y.annotations)) {
    const ann: Record<string, string> = {};
    for (const [k, v] of Object.entries(y.annotations as Record<string, unknown>)) {
      const s = str(v);
      if (s !== undefined) ann[k] = s;
    }
    meta.annotations = ann;
  }
  if (Array.isArray(y.dependencies)) {
    meta.dependencies = y.dependencies
      .filter((d): d is Record<string, unknown> => typeof d === 'object' && d !== null && !!str(d.name))
      .map((d) => {
        const out: ChartDependency = { name: str(d.name) as string };
        for (const k of ['version', 'repository', 'condition', 'alias'] as const) {
          const v = str(d[k]);
          if (v) out[k] = v;
        }
        const tags = strList(d.tags);
        if (tags?.length) out.tags = tags;
        if (typeof d.enabled === 'boolean') out.enabled = d.enabled;
        if (Array.isArray(d['import-values'])) out['import-values'] = d['import-values'];
        return out;
      });
  }
  return meta;
}
