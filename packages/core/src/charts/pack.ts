import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { type Digest, digestOf } from '../digest/index.ts';
import { throwIfAborted } from '../errors/index.ts';
import {
  type ArchiveLimits,
  type ChartArchive,
  DEFAULT_ARCHIVE_LIMITS,
  readChartArchive,
} from './archive.ts';
import { InvalidChartError } from './errors.ts';
import { isIgnored, parseHelmignore } from './helmignore.ts';
import { type ChartMetadata, MAX_CHART_METADATA_BYTES, parseChartYaml } from './metadata.ts';
import { encodeTarEntry, type TarWriteEntry, tarEnd } from './tar.ts';

export interface PackOptions extends ArchiveLimits {
  /** Modification time of every entry; default SOURCE_DATE_EPOCH, else the Unix epoch. */
  mtime?: Date;
  signal?: AbortSignal;
}

export interface PackedChart {
  /** The .tgz bytes (charts are small; packing refuses anything above the archive limits). */
  bytes: Buffer;
  digest: Digest;
  size: number;
  metadata: ChartMetadata;
  /** Files packed, relative to the chart folder, in archive order. */
  files: string[];
}

function defaultMtime(): Date {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch && /^\d+$/.test(epoch)) return new Date(Number(epoch) * 1000);
  return new Date(0);
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Pack a local chart folder into a Helm chart archive, deterministically: entries `<name>/…` (name
 * from Chart.yaml), Chart.yaml first then every other file sorted by path, files only (no folder
 * entries, like `helm package`), uid/gid 0, no user names, mode 0644 (0755 when executable), one
 * fixed mtime, gzip without a timestamp. `.helmignore` is honoured (see helmignore.ts). Symbolic
 * links are refused: a link could pull files from outside the chart into the bundle.
 */
export async function packChart(dir: string, opts: PackOptions = {}): Promise<PackedChart> {
  const maxFile = opts.maxFileSize ?? DEFAULT_ARCHIVE_LIMITS.maxFileSize;
  const maxTotal = opts.maxTotalSize ?? DEFAULT_ARCHIVE_LIMITS.maxTotalSize;
  const maxEntries = opts.maxEntries ?? DEFAULT_ARCHIVE_LIMITS.maxEntries;
  const mtime = opts.mtime ?? defaultMtime();
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new InvalidChartError(dir, 'not a chart folder', 'give the folder holding Chart.yaml');
  let chartYaml: string;
  try {
    const s = await stat(join(dir, 'Chart.yaml'));
    if (s.size > MAX_CHART_METADATA_BYTES) throw new InvalidChartError(dir, 'Chart.yaml is too large');
    chartYaml = await readFile(join(dir, 'Chart.yaml'), 'utf8');
  } catch (err) {
    if (err instanceof InvalidChartError) throw err;
    throw new InvalidChartError(dir, 'no Chart.yaml in the chart folder');
  }
  const metadata = parseChartYaml(chartYaml, join(dir, 'Chart.yaml'));
  if (!/^[A-Za-z0-9._-]+$/.test(metadata.name)) {
    throw new InvalidChartError(dir, `chart name "${metadata.name}" is not a valid folder name`);
  }
  const ignoreText = await readFile(join(dir, '.helmignore'), 'utf8').catch(() => '');
  const rules = parseHelmignore(ignoreText);

  const found: string[] = [];
  let total = 0;
  const walk = async (rel: string): Promise<void> => {
    throwIfAborted(opts.signal);
    const names = (await readdir(join(dir, rel))).sort(byCodePoint);
    for (const name of names) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = join(dir, relPath);
      const ls = await lstat(full);
      if (ls.isSymbolicLink()) {
        if (isIgnored(rules, relPath, false)) continue;
        throw new InvalidChartError(
          dir,
          `"${relPath}" is a symbolic link`,
          'replace the link by the file it points to, or list it in .helmignore',
        );
      }
      if (ls.isDirectory()) {
        if (isIgnored(rules, relPath, true)) continue;
        await walk(relPath);
        continue;
      }
      if (!ls.isFile() || isIgnored(rules, relPath, false)) continue;
      if (ls.size > maxFile)
        throw new InvalidChartError(dir, `"${relPath}" is ${ls.size} bytes, more than ${maxFile}`);
      total += ls.size;
      if (total > maxTotal)
        throw new InvalidChartError(dir, `the chart's files add up to more than ${maxTotal} bytes`);
      found.push(relPath);
      if (found.length > maxEntries) throw new InvalidChartError(dir, `more than ${maxEntries} files`);
    }
  };
  await walk('');
  const files = ['Chart.yaml', ...found.filter((f) => f !== 'Chart.yaml').sort(byCodePoint)];
  const parts: Buffer[] = [];
  for (const rel of files) {
    const full = join(dir, rel);
    const data = await readFile(full);
    const mode = (await stat(full)).mode & 0o111 ? 0o755 : 0o644;
    const entry: TarWriteEntry = { path: `${metadata.name}/${rel}`, data, mode, mtime };
    parts.push(encodeTarEntry(entry));
  }
  parts.push(tarEnd());
  const bytes = gzipSync(Buffer.concat(parts), { level: 9 });
  return { bytes, digest: digestOf(bytes), size: bytes.length, metadata, files };
}

/** A readable stream of a packed chart (for callers that want one). */
export function packedStream(p: PackedChart): Readable {
  return Readable.from([p.bytes]);
}

export interface LocalChart {
  /** The chart archive bytes (a .tgz as given, or the folder packed). */
  bytes: Buffer;
  digest: Digest;
  archive: ChartArchive;
}

/**
 * A local chart, folder or .tgz, as archive bytes plus what `readChartArchive` sees in them.
 * A .tgz is read as is (size-limited) and checked like any downloaded archive.
 */
export async function loadLocalChart(path: string, opts: PackOptions = {}): Promise<LocalChart> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new InvalidChartError(path, 'no such file or folder', 'check the chart path');
  let bytes: Buffer;
  if (st.isDirectory()) {
    bytes = (await packChart(path, opts)).bytes;
  } else {
    const max = opts.maxTotalSize ?? DEFAULT_ARCHIVE_LIMITS.maxTotalSize;
    if (st.size > max) throw new InvalidChartError(path, `the archive is ${st.size} bytes, more than ${max}`);
    bytes = await readFile(path);
  }
  const archive = await readChartArchive(bytes, { ...opts, source: path });
  return { bytes, digest: digestOf(bytes), archive };
}
