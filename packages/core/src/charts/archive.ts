import { constants } from 'node:fs';
import { mkdir, open, readdir, realpath, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TarFormatError } from '../bundle/tar-header.ts';
import { readTar, StreamTarInput, type TarHeader, TarTruncatedError } from '../bundle/tar-reader.ts';
import { throwIfAborted } from '../errors/index.ts';
import { InvalidChartError, UnsafeArchiveError } from './errors.ts';
import { type ChartMetadata, MAX_CHART_METADATA_BYTES, parseChartYaml } from './metadata.ts';

const MiB = 1024 * 1024;

/** Limits applied to every chart archive read or extracted. */
export interface ArchiveLimits {
  /** Largest uncompressed file (default 20 MiB). */
  maxFileSize?: number;
  /** Largest sum of uncompressed files (default 100 MiB) — also bounds the gunzip output. */
  maxTotalSize?: number;
  /** Most entries (default 10,000). */
  maxEntries?: number;
  /** Deepest subchart archive nesting read (charts/x.tgz inside charts/y.tgz…; default 5). */
  maxDepth?: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Required<ArchiveLimits> = {
  maxFileSize: 20 * MiB,
  maxTotalSize: 100 * MiB,
  maxEntries: 10_000,
  maxDepth: 5,
};

export type ArchiveInput = Uint8Array | AsyncIterable<Uint8Array>;

export interface ArchiveOptions extends ArchiveLimits {
  /** Names the archive in errors (file path or URL). */
  source?: string;
  signal?: AbortSignal;
}

/** A chart read from an archive: metadata, default values and the list of files, in memory. */
export interface ChartArchive {
  /** The archive's top folder (`<chart>/`), usually the chart name. */
  root: string;
  metadata: ChartMetadata;
  chartYaml: string;
  /** values.yaml text, when the chart has one. */
  valuesYaml: string | undefined;
  /** Files under templates/, relative to the chart root, sorted. */
  templates: string[];
  /** Every file, relative to the chart root, sorted. */
  files: string[];
  /** Subcharts found under charts/ (unpacked folders and .tgz archives), sorted by path. */
  subcharts: SubChart[];
  /** Sum of the uncompressed file sizes (including unpacked subcharts). */
  totalSize: number;
}

export interface SubChart {
  /** Where it was found, relative to the parent chart root: `charts/redis` or `charts/redis-1.0.0.tgz`. */
  path: string;
  chart: ChartArchive;
}

/** A file or directory entry that passed every check, relative to the archive root. */
interface SafeEntry {
  root: string;
  /** Path below the root, `/`-separated, without `.` or `..` ('' for the root folder itself). */
  rel: string;
  header: TarHeader;
  kind: 'file' | 'dir';
  body(): AsyncIterable<Buffer>;
}

function limitsOf(opts: ArchiveLimits): Required<ArchiveLimits> {
  return {
    maxFileSize: opts.maxFileSize ?? DEFAULT_ARCHIVE_LIMITS.maxFileSize,
    maxTotalSize: opts.maxTotalSize ?? DEFAULT_ARCHIVE_LIMITS.maxTotalSize,
    maxEntries: opts.maxEntries ?? DEFAULT_ARCHIVE_LIMITS.maxEntries,
    maxDepth: opts.maxDepth ?? DEFAULT_ARCHIVE_LIMITS.maxDepth,
  };
}

function asIterable(input: ArchiveInput): AsyncIterable<Uint8Array> {
  if (input instanceof Uint8Array)
    return Readable.from([Buffer.from(input.buffer, input.byteOffset, input.byteLength)]);
  return input;
}

/**
 * The tar bytes of a chart archive: gunzipped when it starts with the gzip magic, counted, and
 * cut off once more than `limit` bytes come out (gzip bombs). Nothing beyond the tar end marker is
 * ever decompressed, because the consumer stops pulling.
 */
async function* tarBytes(input: ArchiveInput, limit: number, source: string): AsyncGenerator<Buffer> {
  const it = asIterable(input)[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const head = Buffer.from(first.value);
  const rest = (async function* () {
    yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  })();
  if (!(head[0] === 0x1f && head[1] === 0x8b)) {
    let n = 0;
    for await (const c of rest) {
      n += c.length;
      if (n > limit)
        throw new UnsafeArchiveError(source, 'total-too-large', `more than ${limit} bytes of tar`);
      yield c;
    }
    return;
  }
  const src = Readable.from(rest);
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  src.on('error', (err) => gunzip.destroy(err));
  src.pipe(gunzip);
  let n = 0;
  try {
    for await (const c of gunzip as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) {
        throw new UnsafeArchiveError(source, 'total-too-large', `decompresses to more than ${limit} bytes`);
      }
      yield c;
    }
  } catch (err) {
    if (err instanceof UnsafeArchiveError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new UnsafeArchiveError(
        source,
        'malformed',
        `not a valid gzip stream (${(err as Error).message})`,
      );
    }
    throw err;
  } finally {
    src.destroy();
    gunzip.destroy();
    await it.return?.();
  }
}

async function* mapFormatErrors(body: AsyncIterable<Buffer>, source: string): AsyncGenerator<Buffer> {
  try {
    yield* body;
  } catch (err) {
    if (err instanceof TarFormatError || err instanceof TarTruncatedError)
      throw new UnsafeArchiveError(source, 'malformed', err.message);
    throw err;
  }
}

/** Split and check an entry name; returns [root, ...segments] or throws. */
function checkName(raw: string, source: string): string[] {
  if (raw.includes('\0')) throw new UnsafeArchiveError(source, 'malformed', 'NUL byte in an entry name', raw);
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) {
    throw new UnsafeArchiveError(source, 'absolute-path', `entry "${raw}" has an absolute path`, raw);
  }
  // Backslashes are separators on Windows (where Helm also runs): treat them as such when checking.
  const parts = raw.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) {
    throw new UnsafeArchiveError(source, 'path-traversal', `entry "${raw}" contains ".."`, raw);
  }
  if (raw.includes('\\')) {
    throw new UnsafeArchiveError(source, 'malformed', `entry "${raw}" contains a backslash`, raw);
  }
  if (parts.length === 0) throw new UnsafeArchiveError(source, 'malformed', `empty entry name "${raw}"`, raw);
  return parts;
}

/**
 * Every entry of a chart archive, checked: names confined under one `<chart>/` folder (no
 * absolute paths, no `..`), only files and folders (links, devices and FIFOs refused), no
 * duplicates, and entry count and declared and actual sizes within the limits.
 */
async function* safeEntries(
  input: ArchiveInput,
  limits: Required<ArchiveLimits>,
  source: string,
  signal?: AbortSignal,
): AsyncGenerator<SafeEntry> {
  // Headers and padding come on top of file contents; allow for them in the gunzip cap.
  const cap = limits.maxTotalSize + Math.min(limits.maxEntries, 100_000) * 2048 + 1024 * 1024;
  let root: string | undefined;
  let count = 0;
  let total = 0;
  const seen = new Set<string>();
  try {
    for await (const entry of readTar(new StreamTarInput(tarBytes(input, cap, source)), { source })) {
      throwIfAborted(signal);
      const h: TarHeader = entry;
      if (++count > limits.maxEntries) {
        throw new UnsafeArchiveError(source, 'too-many-entries', `more than ${limits.maxEntries} entries`);
      }
      const parts = checkName(h.name, source);
      let kind: 'file' | 'dir';
      switch (h.type) {
        case 'file':
          kind = 'file';
          break;
        case 'directory':
          kind = 'dir';
          break;
        case 'symlink':
        case 'hardlink':
          throw new UnsafeArchiveError(
            source,
            'link',
            `entry "${h.name}" is a ${h.type === 'hardlink' ? 'hard link' : 'symbolic link'} (to "${h.linkname}")`,
            h.name,
          );
        case 'char-device':
        case 'block-device':
        case 'fifo':
          throw new UnsafeArchiveError(source, 'device', `entry "${h.name}" is a ${h.type}`, h.name);
        default:
          throw new UnsafeArchiveError(
            source,
            'unsupported-type',
            `entry "${h.name}" has type ${JSON.stringify(h.typeflag)}`,
            h.name,
          );
      }
      const top = parts[0] as string;
      if (root === undefined) root = top;
      if (top !== root || (kind === 'file' && parts.length === 1)) {
        throw new UnsafeArchiveError(
          source,
          'outside-root',
          `entry "${h.name}" is outside the chart folder "${root}/"`,
          h.name,
        );
      }
      const rel = parts.slice(1).join('/');
      if (kind === 'file') {
        if (seen.has(rel))
          throw new UnsafeArchiveError(source, 'duplicate', `entry "${h.name}" appears twice`, h.name);
        seen.add(rel);
        if (h.size > limits.maxFileSize) {
          throw new UnsafeArchiveError(
            source,
            'entry-too-large',
            `entry "${h.name}" is ${h.size} bytes, more than ${limits.maxFileSize}`,
            h.name,
          );
        }
        total += h.size;
        if (total > limits.maxTotalSize) {
          throw new UnsafeArchiveError(
            source,
            'total-too-large',
            `files add up to more than ${limits.maxTotalSize} bytes`,
            h.name,
          );
        }
      }
      yield { root, rel, header: h, kind, body: () => mapFormatErrors(entry.body(), source) };
    }
  } catch (err) {
    if (err instanceof TarFormatError || err instanceof TarTruncatedError)
      throw new UnsafeArchiveError(source, 'malformed', err.message);
    throw err;
  }
  if (root === undefined) throw new UnsafeArchiveError(source, 'malformed', 'the archive is empty');
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

function isMetadataFile(rel: string): boolean {
  // Chart.yaml / values.yaml of the chart and of unpacked subcharts (charts/<x>/…, at any depth).
  const m = /^(?:charts\/[^/]+\/)*(Chart\.yaml|values\.yaml)$/.exec(rel);
  return m !== null;
}

function isSubchartArchive(rel: string): boolean {
  return /^(?:charts\/[^/]+\/)*charts\/[^/]+\.tgz$/.test(rel);
}

/**
 * Read a chart archive (.tgz, or a plain tar) safely, in one streaming pass: only Chart.yaml,
 * values.yaml (of the chart and of its subcharts) and subchart archives are kept in memory, all
 * within the limits; nothing is written to disk.
 */
export async function readChartArchive(
  input: ArchiveInput,
  opts: ArchiveOptions = {},
): Promise<ChartArchive> {
  return readAt(input, opts, 0);
}

async function readAt(input: ArchiveInput, opts: ArchiveOptions, depth: number): Promise<ChartArchive> {
  const limits = limitsOf(opts);
  const source = opts.source ?? 'chart archive';
  const kept = new Map<string, Buffer>();
  const sizes = new Map<string, number>();
  let root = '';
  for await (const e of safeEntries(input, limits, source, opts.signal)) {
    root = e.root;
    if (e.kind !== 'file') continue;
    sizes.set(e.rel, e.header.size);
    if (isMetadataFile(e.rel)) {
      if (e.header.size > MAX_CHART_METADATA_BYTES) {
        throw new InvalidChartError(source, `${e.rel} is larger than ${MAX_CHART_METADATA_BYTES} bytes`);
      }
      kept.set(e.rel, await collect(e.body()));
    } else if (isSubchartArchive(e.rel) && depth < limits.maxDepth) {
      kept.set(e.rel, await collect(e.body()));
    }
  }
  return assemble(root, '', sizes, kept, { ...opts, source }, depth);
}

async function assemble(
  root: string,
  prefix: string,
  sizes: ReadonlyMap<string, number>,
  kept: Map<string, Buffer>,
  opts: ArchiveOptions & { source: string },
  depth: number,
): Promise<ChartArchive> {
  const chartYamlBuf = kept.get(`${prefix}Chart.yaml`);
  const where = prefix === '' ? opts.source : `${opts.source}:${prefix.slice(0, -1)}`;
  if (!chartYamlBuf) throw new InvalidChartError(where, `no Chart.yaml in "${root}/${prefix}"`);
  const chartYaml = chartYamlBuf.toString('utf8');
  const metadata = parseChartYaml(chartYaml, where);
  const files = [...sizes.keys()]
    .filter((f) => f.startsWith(prefix))
    .map((f) => f.slice(prefix.length))
    .sort();
  let totalSize = 0;
  for (const f of files) totalSize += sizes.get(prefix + f) ?? 0;
  // Files of nested unpacked subcharts belong to them, not to this chart.
  const own = files.filter((f) => !/^charts\/[^/]+\//.test(f));
  const subcharts: SubChart[] = [];
  const subdirs = new Set<string>();
  for (const f of files) {
    const m = /^charts\/([^/]+)\/Chart\.yaml$/.exec(f);
    if (m) subdirs.add(m[1] as string);
  }
  for (const dir of [...subdirs].sort()) {
    const sub = await assemble(root, `${prefix}charts/${dir}/`, sizes, kept, opts, depth);
    subcharts.push({ path: `charts/${dir}`, chart: sub });
  }
  for (const f of own.filter((x) => /^charts\/[^/]+\.tgz$/.test(x)).sort()) {
    const bytes = kept.get(prefix + f);
    if (!bytes) continue; // deeper than maxDepth: listed, not read
    const chart = await readAt(bytes, { ...opts, source: `${opts.source}:${prefix}${f}` }, depth + 1);
    subcharts.push({ path: f, chart });
  }
  subcharts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    root: prefix === '' ? root : prefix.slice(0, -1),
    metadata,
    chartYaml,
    valuesYaml: kept.get(`${prefix}values.yaml`)?.toString('utf8'),
    templates: own.filter((f) => f.startsWith('templates/')),
    files: own,
    subcharts,
    totalSize,
  };
}

export interface ExtractResult {
  /** The chart folder written: `<destDir>/<root>`. */
  dir: string;
  /** Files written, relative to `dir`, sorted. */
  files: string[];
}

/**
 * Extract a chart archive under `destDir` (which must be missing or empty), as `destDir/<chart>/…`.
 * Every entry passes the same checks as `readChartArchive`; files are created with O_EXCL and
 * O_NOFOLLOW and modes 0644/0755 only. On any failure, what was written is removed.
 */
export async function extractChart(
  input: ArchiveInput,
  destDir: string,
  opts: ArchiveOptions = {},
): Promise<ExtractResult> {
  const limits = limitsOf(opts);
  const source = opts.source ?? 'chart archive';
  await mkdir(destDir, { recursive: true });
  if ((await readdir(destDir)).length > 0) {
    throw new InvalidChartError(
      destDir,
      'the destination folder is not empty',
      'extract into a new, empty folder',
    );
  }
  const base = await realpath(destDir);
  const files: string[] = [];
  let rootDir: string | undefined;
  try {
    for await (const e of safeEntries(input, limits, source, opts.signal)) {
      rootDir ??= resolve(base, e.root);
      const target = e.rel === '' ? rootDir : resolve(rootDir, ...e.rel.split('/'));
      if (target !== rootDir && !target.startsWith(rootDir + sep)) {
        throw new UnsafeArchiveError(
          source,
          'outside-root',
          `entry "${e.header.name}" resolves outside`,
          e.header.name,
        );
      }
      if (e.kind === 'dir') {
        await mkdir(target, { recursive: true, mode: 0o755 });
        continue;
      }
      await mkdir(dirname(target), { recursive: true, mode: 0o755 });
      const mode = e.header.mode & 0o111 ? 0o755 : 0o644;
      const fh = await open(
        target,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        mode,
      );
      try {
        let written = 0;
        for await (const chunk of e.body()) {
          written += chunk.length;
          await fh.write(chunk);
        }
        if (written !== e.header.size) throw new UnsafeArchiveError(source, 'malformed', 'truncated entry');
      } finally {
        await fh.close();
      }
      files.push(e.rel);
    }
  } catch (err) {
    if (rootDir) await rm(rootDir, { recursive: true, force: true });
    throw err;
  }
  if (!rootDir) throw new UnsafeArchiveError(source, 'malformed', 'the archive is empty');
  files.sort();
  return { dir: join(rootDir), files };
}
