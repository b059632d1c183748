import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../digest/index.ts';
import { AbortedError, InvalidInputError } from '../errors/index.ts';
import { partName, partsChecksumName } from './format.ts';
import { exists, OutputExistsError, place, removeStaleTemps, syncDir, tmpName } from './output-files.ts';
import { formatSums } from './sums.ts';

/**
 * Bundle output files, written atomically: bytes go to temporary names in the output folder
 * (`.<name>.tmp-<random>`), are fsynced, and are renamed into place only by `commit()`.
 * `discard()` removes the temporaries; nothing ever appears at the output path before commit.
 * With `splitSize` the output is `NAME.000`, `NAME.001`, … plus `NAME.sha256` (coreutils
 * format over the part file names), cut while the bytes stream (no second pass).
 */

export { OutputExistsError };

export class InvalidSizeError extends InvalidInputError {
  override readonly code = 'INVALID_SIZE';
  readonly value: string;
  constructor(value: string, reason: string) {
    super(`invalid size "${value}": ${reason}`, {
      hint: 'write a size like 4GiB, 700MB, 1.5G or 123456 (KB/MB/GB/TB = powers of 1000; K/M/G/T and KiB/MiB/GiB/TiB = powers of 1024)',
    });
    this.value = value;
  }
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1e3,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1e12,
  tib: 1024 ** 4,
};

/**
 * Parse a byte size: `123`, `700MB` (10^6), `4GiB` (2^30), `1.5G` (a bare K/M/G/T is binary, as
 * in coreutils `split -b`). Case-insensitive, optional space before the unit. Result is an
 * integer number of bytes >= 1 (fractions of a byte are rounded down).
 */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new InvalidSizeError(String(value), 'must be a whole number >= 1');
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) throw new InvalidSizeError(value, 'expected a number with an optional unit');
  const unit = UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) throw new InvalidSizeError(value, `unknown unit "${m[2]}"`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidSizeError(value, 'too large');
  if (bytes < 1) throw new InvalidSizeError(value, 'must be at least 1 byte');
  return bytes;
}

export interface OutputOptions {
  /** Cut the output into parts of this many bytes (`NAME.000`, …, plus `NAME.sha256`). */
  splitSize?: number;
  /** Replace existing output files (otherwise OUTPUT_EXISTS, checked before and at commit). */
  overwrite?: boolean;
}

export interface CommittedOutput {
  /** The files now in place: the bundle file, or the parts in order. */
  files: string[];
  /** The parts checksum file (split output only). */
  checksumFile?: string;
  /** sha256 of each file in `files`. */
  sha256: Digest[];
  /** sha256 of the whole byte stream (the bundle, whether split or not). */
  digest: Digest;
  size: number;
}

interface PendingFile {
  final: string;
  tmp: string;
  hash: Hash;
  size: number;
}

/** A Writable that writes the bundle to temporaries; call `commit()` after it finished. */
export class AtomicOutput extends Writable {
  /** The bundle path (with `splitSize`, parts are named after it). */
  readonly path: string;
  readonly splitSize: number | undefined;
  readonly overwrite: boolean;
  private readonly done: PendingFile[] = [];
  private current: { file: PendingFile; fh: FileHandle } | undefined;
  private readonly whole = createHash('sha256');
  private total = 0;
  private settled = false;

  constructor(path: string, opts: OutputOptions = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.path = resolve(path);
    if (opts.splitSize !== undefined) parseSize(opts.splitSize);
    this.splitSize = opts.splitSize;
    this.overwrite = opts.overwrite ?? false;
  }

  /** The final names this output will take (the first part only, for split output). */
  get targets(): string[] {
    return this.splitSize === undefined
      ? [this.path]
      : [partName(this.path, 0), partsChecksumName(this.path)];
  }

  /** Check the output folder exists (created if needed) and, unless overwriting, that no target exists. */
  async prepare(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await removeStaleTemps(this.path);
    if (this.overwrite) return;
    for (const t of this.targets) if (await exists(t)) throw new OutputExistsError(t);
  }

  get bytesWritten(): number {
    return this.total;
  }

  private async openNext(): Promise<void> {
    const final = this.splitSize === undefined ? this.path : partName(this.path, this.done.length);
    const file: PendingFile = { final, tmp: tmpName(final), hash: createHash('sha256'), size: 0 };
    const fh = await open(file.tmp, 'wx', 0o644);
    this.current = { file, fh };
  }

  private async closeCurrent(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    try {
      await cur.fh.sync();
    } finally {
      await cur.fh.close();
    }
    this.done.push(cur.file);
  }

  private async writeChunk(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      if (!this.current) await this.openNext();
      const cur = this.current!;
      const room = this.splitSize === undefined ? Number.POSITIVE_INFINITY : this.splitSize - cur.file.size;
      const n = Math.min(room, buf.length - off);
      const slice = buf.subarray(off, off + n);
      let w = 0;
      while (w < slice.length) {
        const { bytesWritten } = await cur.fh.write(slice, w, slice.length - w);
        w += bytesWritten;
      }
      cur.file.hash.update(slice);
      this.whole.update(slice);
      cur.file.size += n;
      this.total += n;
      off += n;
      if (this.splitSize !== undefined && cur.file.size >= this.splitSize) await this.closeCurrent();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => cb(), cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.writeChunk(Buffer.concat(chunks.map((c) => c.chunk))).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      if (this.done.length === 0 && !this.current) await this.openNext(); // an empty output is still a file
      await this.closeCurrent();
    })().then(() => cb(), cb);
  }

  /** Rename everything into place (parts first, the parts checksum file last). */
  async commit(): Promise<CommittedOutput> {
    if (this.settled) throw new Error('output already committed or discarded');
    if (!this.writableFinished) throw new Error('commit() before the output stream finished');
    this.settled = true;
    const placed: string[] = [];
    let sumsTmp: string | undefined;
    try {
      const sha256 = this.done.map((f) => `sha256:${f.hash.digest('hex')}` as Digest);
      let checksumFile: string | undefined;
      if (this.splitSize !== undefined) {
        checksumFile = partsChecksumName(this.path);
        sumsTmp = tmpName(checksumFile);
        const text = formatSums(
          this.done.map((f, i) => ({ path: basename(f.final), hex: sha256[i]!.slice(7) })),
          basename(checksumFile),
        );
        await writeFile(sumsTmp, text, { flag: 'wx', mode: 0o644, flush: true });
      }
      for (const f of this.done) {
        await place(f.tmp, f.final, this.overwrite);
        placed.push(f.final);
      }
      if (checksumFile && sumsTmp) {
        await place(sumsTmp, checksumFile, this.overwrite);
        sumsTmp = undefined;
        // Parts left over from an earlier, longer split of the same name would confuse readers.
        for (let i = this.done.length; await exists(partName(this.path, i)); i++) {
          await rm(partName(this.path, i), { force: true });
        }
      }
      await syncDir(dirname(this.path));
      const out: CommittedOutput = {
        files: this.done.map((f) => f.final),
        sha256,
        digest: `sha256:${this.whole.digest('hex')}` as Digest,
        size: this.total,
      };
      if (checksumFile) out.checksumFile = checksumFile;
      return out;
    } catch (err) {
      // A failed commit must not leave a partial split behind either.
      for (const p of placed) await rm(p, { force: true });
      if (sumsTmp) await rm(sumsTmp, { force: true });
      for (const f of this.done) await rm(f.tmp, { force: true });
      throw err;
    }
  }

  /** Remove every temporary; safe to call at any time, more than once. */
  async discard(): Promise<void> {
    if (!this.settled) this.settled = true;
    const cur = this.current;
    this.current = undefined;
    if (cur) {
      await cur.fh.close().catch(() => {});
      this.done.push(cur.file);
    }
    for (const f of this.done) await rm(f.tmp, { force: true });
    if (!this.destroyed) this.destroy();
  }
}

export interface SplitResult {
  parts: string[];
  checksumFile: string;
  digest: Digest;
  size: number;
}

/**
 * Split an existing bundle file into `NAME.000`, `NAME.001`, … plus `NAME.sha256`, streaming,
 * atomically. `output` (default: the file itself) names the parts; the source is left alone.
 */
export async function splitBundle(
  file: string,
  opts: { size: number | string; output?: string; overwrite?: boolean; signal?: AbortSignal },
): Promise<SplitResult> {
  const splitSize = parseSize(opts.size);
  const out = new AtomicOutput(opts.output ?? file, {
    splitSize,
    ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
  });
  try {
    await out.prepare();
    const source = createReadStream(file, { highWaterMark: 1024 * 1024 });
    await pipeline(source, out, { signal: opts.signal });
    const done = await out.commit();
    return { parts: done.files, checksumFile: done.checksumFile!, digest: done.digest, size: done.size };
  } catch (err) {
    await out.discard();
    if (opts.signal?.aborted)
      throw new AbortedError(`splitting ${file} aborted`, { cause: opts.signal.reason });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(err instanceof InvalidInputError)) {
      throw new InvalidInputError(`${file} does not exist`, {
        hint: 'give the path of a bundle .tar file',
        cause: err,
      });
    }
    throw err;
  }
}
