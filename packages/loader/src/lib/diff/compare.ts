import type { LadingJson } from '@lading/core/bundle';
import { createTwoFilesPatch } from 'diff';
import type {
  BundleDiff,
  ChangedChart,
  ChangedFile,
  ChangedRelease,
  DiffExtra,
  DiffImage,
  DiffSide,
  DiffSignature,
  MovedImage,
  SetChange,
  ValuesDiff,
} from './model.ts';

/** What compareBundles needs of one opened bundle. */
export interface BundleSnapshot {
  side: DiffSide;
  lading: LadingJson;
  /** lading.json as parsed JSON, unvalidated: fields newer than this reader's schema (extras, signatures). */
  raw: unknown;
  /** Blob members: digest → size. */
  blobs: ReadonlyMap<string, number>;
  /**
   * A `files/` member's bytes; only its size when it is over MAX_DIFF_TEXT; undefined when the
   * bundle does not hold it.
   */
  readFile(path: string): Promise<Buffer | { size: number } | undefined>;
}

/** Values files larger than this are listed, not diffed as text. */
export const MAX_DIFF_TEXT = 1024 * 1024;

const byKey = <T>(list: readonly T[], key: (t: T) => string): Map<string, T> =>
  new Map(list.map((t) => [key(t), t]));
const sorted = (a: string[]): string[] => [...a].sort();
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function imageOf(i: LadingJson['images'][number]): DiffImage {
  return {
    ref: i.ref,
    digest: i.digest,
    upstreamDigest: i.upstreamDigest,
    platforms: sorted(i.platforms),
    size: i.size,
  };
}

function setDiff(a: readonly string[], b: readonly string[]): { added: string[]; removed: string[] } {
  const A = new Set(a);
  const B = new Set(b);
  return { added: sorted([...B].filter((x) => !A.has(x))), removed: sorted([...A].filter((x) => !B.has(x))) };
}

/** The raw `images[]` entries by ref, with the optional arrays `field` (extras, signatures). */
function rawImageLists(raw: unknown, field: string): { recorded: boolean; byRef: Map<string, unknown[]> } {
  const byRef = new Map<string, unknown[]>();
  let recorded = false;
  const images = (raw as { images?: unknown })?.images;
  if (!Array.isArray(images)) return { recorded, byRef };
  for (const img of images) {
    if (typeof img !== 'object' || img === null) continue;
    const ref = (img as Record<string, unknown>).ref;
    const list = (img as Record<string, unknown>)[field];
    if (typeof ref !== 'string') continue;
    if (Array.isArray(list)) {
      recorded = true;
      byRef.set(ref, list);
    }
  }
  return { recorded, byRef };
}

const str = (o: Record<string, unknown>, k: string): string | undefined =>
  typeof o[k] === 'string' ? (o[k] as string) : undefined;

function toExtra(x: unknown): DiffExtra | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const o = x as Record<string, unknown>;
  const kind = str(o, 'kind');
  const digest = str(o, 'digest');
  if (!kind || !digest) return undefined;
  const tag = str(o, 'tag');
  const artifactType = str(o, 'artifactType');
  return {
    kind,
    digest,
    subject: str(o, 'subject') ?? '',
    ...(tag ? { tag } : {}),
    ...(artifactType ? { artifactType } : {}),
  };
}

function toSignature(x: unknown): DiffSignature | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const o = x as Record<string, unknown>;
  const digest = str(o, 'digest');
  const key = str(o, 'key');
  if (!digest || !key) return undefined;
  return { digest, key, signature: str(o, 'signature') ?? '', scheme: str(o, 'scheme') ?? '' };
}

/** Per image ref: entries of `field` in NEW and not OLD (added) and the reverse (removed). */
function perImageChanges<T>(
  oldRaw: unknown,
  newRaw: unknown,
  field: string,
  convert: (x: unknown) => T | undefined,
  identity: (t: T) => string,
): { recorded: { old: boolean; new: boolean }; changes: SetChange<T>[] } {
  const o = rawImageLists(oldRaw, field);
  const n = rawImageLists(newRaw, field);
  const refs = sorted([...new Set([...o.byRef.keys(), ...n.byRef.keys()])]);
  const changes: SetChange<T>[] = [];
  for (const ref of refs) {
    const conv = (l: unknown[] | undefined) =>
      byKey(
        (l ?? []).map(convert).filter((t): t is T => t !== undefined),
        identity,
      );
    const a = conv(o.byRef.get(ref));
    const b = conv(n.byRef.get(ref));
    const added = [...b.entries()].filter(([k]) => !a.has(k)).map(([, t]) => t);
    const removed = [...a.entries()].filter(([k]) => !b.has(k)).map(([, t]) => t);
    if (added.length || removed.length) changes.push({ ref, added, removed });
  }
  return { recorded: { old: o.recorded, new: n.recorded }, changes };
}

/** The values files of a bundle's releases, profiles included. */
function valuesPaths(l: LadingJson): Set<string> {
  const out = new Set<string>();
  for (const r of l.releases) {
    for (const v of r.values) out.add(v.replace(/^\.?\//, ''));
    for (const list of Object.values(r.profiles ?? {}))
      for (const v of list) out.add(v.replace(/^\.?\//, ''));
  }
  return out;
}

function asText(b: Buffer | { size: number } | undefined): string | undefined {
  if (b === undefined) return '';
  if (!Buffer.isBuffer(b) || b.includes(0)) return undefined;
  const text = b.toString('utf8');
  return text.includes('\uFFFD') ? undefined : text;
}

async function valuesDiffs(o: BundleSnapshot, n: BundleSnapshot): Promise<ValuesDiff[]> {
  const oldPaths = valuesPaths(o.lading);
  const newPaths = valuesPaths(n.lading);
  const out: ValuesDiff[] = [];
  for (const path of sorted([...new Set([...oldPaths, ...newPaths])])) {
    const a = oldPaths.has(path) ? await o.readFile(path) : undefined;
    const b = newPaths.has(path) ? await n.readFile(path) : undefined;
    if (a === undefined && b === undefined) continue;
    const status: ValuesDiff['status'] = a === undefined ? 'added' : b === undefined ? 'removed' : 'changed';
    const same =
      Buffer.isBuffer(a) && Buffer.isBuffer(b)
        ? a.equals(b)
        : o.lading.files.find((f) => f.path === path)?.digest ===
            n.lading.files.find((f) => f.path === path)?.digest &&
          o.lading.files.some((f) => f.path === path);
    if (a !== undefined && b !== undefined && same) continue;
    const ta = asText(a);
    const tb = asText(b);
    if (ta === undefined || tb === undefined) {
      out.push({ path, status, note: `not text, or over ${MAX_DIFF_TEXT} bytes: compare the files` });
      continue;
    }
    const patch = createTwoFilesPatch(
      a === undefined ? '/dev/null' : `a/${path}`,
      b === undefined ? '/dev/null' : `b/${path}`,
      ta,
      tb,
      `${o.side.name} ${o.side.version}`,
      `${n.side.name} ${n.side.version}`,
      { context: 3 },
    );
    // jsdiff starts with an `Index:`-less "===" header line for two-file patches; keep from "---".
    out.push({ path, status, patch: patch.slice(Math.max(0, patch.indexOf('--- '))) });
  }
  return out;
}

/** Compare two opened bundles (`lading-load diff --help`). Reads only metadata and values files. */
export async function compareBundles(o: BundleSnapshot, n: BundleSnapshot): Promise<BundleDiff> {
  const ol = o.lading;
  const nl = n.lading;

  // Images, by reference.
  const oi = byKey(ol.images, (i) => i.ref);
  const ni = byKey(nl.images, (i) => i.ref);
  const moved: MovedImage[] = [];
  let imagesUnchanged = 0;
  for (const [ref, b] of ni) {
    const a = oi.get(ref);
    if (!a) continue;
    if (a.digest === b.digest && a.upstreamDigest === b.upstreamDigest) {
      imagesUnchanged++;
      continue;
    }
    moved.push({
      ref,
      old: { digest: a.digest, upstreamDigest: a.upstreamDigest, platforms: sorted(a.platforms) },
      new: { digest: b.digest, upstreamDigest: b.upstreamDigest, platforms: sorted(b.platforms) },
      upstreamSame: a.upstreamDigest === b.upstreamDigest,
    });
  }

  // Charts, by name: a new version or the same version with other content is a change.
  const oc = byKey(ol.charts, (c) => c.name);
  const nc = byKey(nl.charts, (c) => c.name);
  const changedCharts: ChangedChart[] = [];
  let chartsUnchanged = 0;
  for (const [name, b] of nc) {
    const a = oc.get(name);
    if (!a) continue;
    if (a.version === b.version && a.digest === b.digest) chartsUnchanged++;
    else
      changedCharts.push({
        name,
        old: { version: a.version, digest: a.digest },
        new: { version: b.version, digest: b.digest },
      });
  }

  // Releases, by name.
  const or = byKey(ol.releases, (r) => r.name);
  const nr = byKey(nl.releases, (r) => r.name);
  const changedReleases: ChangedRelease[] = [];
  let releasesUnchanged = 0;
  for (const [name, b] of nr) {
    const a = or.get(name);
    if (!a) continue;
    const changes: string[] = [];
    if (a.chart !== b.chart) changes.push(`chart ${a.chart} → ${b.chart}`);
    if ((a.namespace ?? '') !== (b.namespace ?? ''))
      changes.push(`namespace ${a.namespace ?? '(default)'} → ${b.namespace ?? '(default)'}`);
    if (a.values.join('\n') !== b.values.join('\n'))
      changes.push(`values [${a.values.join(', ')}] → [${b.values.join(', ')}]`);
    const ap = a.profiles ?? {};
    const bp = b.profiles ?? {};
    for (const p of sorted([...new Set([...Object.keys(ap), ...Object.keys(bp)])])) {
      const x = (ap[p] ?? []).join(', ');
      const y = (bp[p] ?? []).join(', ');
      if (!(p in ap)) changes.push(`profile ${p} added [${y}]`);
      else if (!(p in bp)) changes.push(`profile ${p} removed`);
      else if (x !== y) changes.push(`profile ${p} [${x}] → [${y}]`);
    }
    if (changes.length) changedReleases.push({ name, changes });
    else releasesUnchanged++;
  }
  const release = (r: LadingJson['releases'][number]) => ({
    name: r.name,
    chart: r.chart,
    ...(r.namespace ? { namespace: r.namespace } : {}),
    values: r.values,
  });

  // Files, by path.
  const of = byKey(ol.files, (f) => f.path);
  const nf = byKey(nl.files, (f) => f.path);
  const changedFiles: ChangedFile[] = [];
  let filesUnchanged = 0;
  for (const [path, b] of nf) {
    const a = of.get(path);
    if (!a) continue;
    if (a.digest === b.digest) filesUnchanged++;
    else
      changedFiles.push({
        path,
        old: { digest: a.digest, size: a.size },
        new: { digest: b.digest, size: b.size },
      });
  }
  const file = (f: LadingJson['files'][number]) => ({ path: f.path, digest: f.digest, size: f.size });

  // Bytes NEW holds that OLD does not (held, or left out as already at the site).
  const oldHas = new Set<string>([...o.blobs.keys(), ...(ol.since?.omittedBlobs ?? [])]);
  let newBlobs = 0;
  let newBytes = 0;
  let totalBytes = 0;
  for (const [digest, size] of n.blobs) {
    totalBytes += size;
    if (!oldHas.has(digest)) {
      newBlobs++;
      newBytes += size;
    }
  }

  const byRef = <T extends { ref: string }>(l: T[]) => l.sort((x, y) => cmp(x.ref, y.ref));
  const byName = <T extends { name: string }>(l: T[]) => l.sort((x, y) => cmp(x.name, y.name));
  const byPath = <T extends { path: string }>(l: T[]) => l.sort((x, y) => cmp(x.path, y.path));
  return {
    old: o.side,
    new: n.side,
    identical: o.side.sumsDigest === n.side.sumsDigest,
    newBasedOnOld: nl.since?.digest === o.side.sumsDigest,
    platforms: setDiff(ol.platforms, nl.platforms),
    images: {
      added: byRef(nl.images.filter((i) => !oi.has(i.ref)).map(imageOf)),
      removed: byRef(ol.images.filter((i) => !ni.has(i.ref)).map(imageOf)),
      moved: byRef(moved),
      unchanged: imagesUnchanged,
    },
    charts: {
      added: byName(
        nl.charts
          .filter((c) => !oc.has(c.name))
          .map((c) => ({ name: c.name, version: c.version, digest: c.digest })),
      ),
      removed: byName(
        ol.charts
          .filter((c) => !nc.has(c.name))
          .map((c) => ({ name: c.name, version: c.version, digest: c.digest })),
      ),
      changed: byName(changedCharts),
      unchanged: chartsUnchanged,
    },
    releases: {
      added: byName(nl.releases.filter((r) => !or.has(r.name)).map(release)),
      removed: byName(ol.releases.filter((r) => !nr.has(r.name)).map(release)),
      changed: byName(changedReleases),
      unchanged: releasesUnchanged,
      values: await valuesDiffs(o, n),
    },
    files: {
      added: byPath(nl.files.filter((f) => !of.has(f.path)).map(file)),
      removed: byPath(ol.files.filter((f) => !nf.has(f.path)).map(file)),
      changed: byPath(changedFiles),
      unchanged: filesUnchanged,
    },
    extras: perImageChanges(o.raw, n.raw, 'extras', toExtra, (e) => `${e.kind} ${e.subject} ${e.digest}`),
    signatures: perImageChanges(
      o.raw,
      n.raw,
      'signatures',
      toSignature,
      (s) => `${s.digest} ${s.key} ${s.signature}`,
    ),
    bytes: { newBlobs, newBytes, totalBlobs: n.blobs.size, totalBytes },
  };
}
