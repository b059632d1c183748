/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per area
 * (idle, GC, Node internals, Lading packages, dependencies), so the document can say what bounds a row.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  areas: { area: string; ms: number; pct: number }[];
  top: { fn: string; where: string; ms: number; pct: number; callers: string[] }[];
}

function area(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'V8/native (program)';
  if (!url) return 'native';
  if (url.startsWith('node:')) return 'Node internals';
  const m = /packages\/(core|builder|loader|cli)\//.exec(url);
  if (m) return `@lading/${m[1]}`;
  const dep = /node_modules\/(?:\.pnpm\/)?((?:@[^/]+\/)?[^/@]+)/.exec(url);
  if (dep) return `dependency ${dep[1]}`;
  return 'other';
}

function shortUrl(url: string): string {
  const m = /packages\/.*$/.exec(url) ?? /node_modules\/.*?([^/]+\/[^/]+)$/.exec(url);
  return m ? m[0].replace(/^.*node_modules\//, '') : url.replace(/^file:\/\//, '');
}

export async function summarise(file: string, topN = 12): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The nearest Lading frame above a node: which of our functions the time is spent for.
  const ladingFrame = (id: number): string | undefined => {
    for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (/packages\/(core|builder|loader|cli)\/(src|dist)\//.test(f.url))
        return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    }
    return undefined;
  };
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0) / 1000;
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; ms: number; by: Map<string, number> }>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const a = area(url, fn);
    areas.set(a, (areas.get(a) ?? 0) + us / 1000);
    const key = `${fn}@${url}:${lineNumber}`;
    const e = fns.get(key) ?? {
      fn,
      where: url ? `${shortUrl(url)}:${lineNumber + 1}` : a,
      ms: 0,
      by: new Map(),
    };
    e.ms += us / 1000;
    const lf = ladingFrame(id);
    if (lf) e.by.set(lf, (e.by.get(lf) ?? 0) + us / 1000);
    fns.set(key, e);
  }
  const pct = (ms: number): number => Math.round((1000 * ms) / total) / 10;
  return {
    file,
    totalMs: Math.round(total),
    areas: [...areas.entries()]
      .map(([a, ms]) => ({ area: a, ms: Math.round(ms), pct: pct(ms) }))
      .sort((x, y) => y.ms - x.ms),
    top: [...fns.values()]
      .filter((f) => f.fn !== '(idle)')
      .sort((x, y) => y.ms - x.ms)
      .slice(0, topN)
      .map((f) => ({
        fn: f.fn,
        where: f.where,
        ms: Math.round(f.ms),
        pct: pct(f.ms),
        callers: [...f.by.entries()]
          .sort((x, y) => y[1] - x[1])
          .slice(0, 2)
          .map(([c, ms]) => `${c} (${Math.round(ms)} ms)`),
      })),
  };
}

/** The summaries of every .cpuprofile in a folder (one per process). */
export async function summariseDir(dir: string): Promise<ProfileSummary[]> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
  return Promise.all(files.sort().map((f) => summarise(join(dir, f))));
}
