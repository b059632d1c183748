import type { KeyObject } from 'node:crypto';
import { type FileHandle, mkdir, open, rm } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { type Digest, type FileRange, type FollowingHash, HashPool } from '../digest/index.ts';
import { AbortedError, ExitCode, InvalidInputError, LadingError } from '../errors/index.ts';
import {
  OutputExistsError,
  pathExists,
  place,
  removeStaleTemps,
  syncDir,
  tmpName,
} from '../util/atomic-file.ts';
import { formatBytes } from '../util/index.ts';
import { writeChecksumFile } from './checksum-file.ts';
import { partName, partsChecksumName, partsChecksumSignatureName } from './format.ts';
import { parseSize } from './size.ts';
import type { CommittedOutput, OutputOptions } from './split.ts';
import { BlobJournal } from './unfinished.ts';

/**
 * Bundle output of a size known in advance, written at offsets, in any order and from many
 * transfers at once (`writeAt`). It writes temporaries beside the final names
 * (one per part with `splitSize`), fsyncs them and renames them into place only in `commit()`;
 * `discard()` removes them. The sha256 of the whole stream and of every part is computed on a
 * worker thread of the one worker hasher (`HashPool.follow`), which reads each byte back once the
 * writer `settle`s it, so hashing overlaps the writing. Every FLUSH_EVERY bytes written, the open
 * parts are flushed (fdatasync) in the background, off the hasher and the writers, so the disk
 * writes while the copy goes on and the flush before the rename finds little left to write.
 */

interface PartFileOut {
  final: string;
  tmp: string;
  start: number;
  size: number;
  /** Open (or opening) while recently written (at most MAX_OPEN_PARTS at once). */
  fh: Promise<FileHandle> | undefined;
  /** Writes in flight on `fh`: it is not closed under them. */
  busy: number;
  /** Written since its last flush to disk. */
  dirty: boolean;
  lastUse: number;
}

/** Where bytes of the output lie in one part: `n` bytes at `at` in it, at `off` in the range. */
interface PartSlice {
  part: PartFileOut;
  at: number;
  n: number;
  off: number;
}

/**
 * Bytes written between two background flushes. Below the kernel's dirty thresholds (10 % of
 * memory) nothing reaches the disk until someone asks: without these, the whole bundle would be
 * written by the flush at the end, after the copy, as `curl` then `sync` does.
 */
const FLUSH_EVERY = 128 * 1024 * 1024;

/** The output could not be read back to be hashed (a part shrank, an I/O error). */
export class OutputReadBackError extends LadingError {
  readonly code = 'OUTPUT_READ_BACK_FAILED';
  readonly exitCode: ExitCode = ExitCode.unexpected;
  constructor(message: string, cause: unknown) {
    super(message, {
      hint: 'check the output disk (full, removed, failing) and run the command again',
      cause,
    });
  }
}

/** Part names have three digits (NAME.tar.000 … NAME.tar.999). */
export const MAX_PARTS = 1000;
/** Part files open at once for writing; the others are closed until written again. */
const MAX_OPEN_PARTS = 16;

/** A part size that would cut `size` bytes into more than MAX_PARTS parts (exit 2). */
export class TooManyPartsError extends InvalidInputError {
  override readonly code = 'TOO_MANY_PARTS';
  constructor(size: number, splitSize: number) {
    const parts = Math.ceil(size / splitSize);
    super(
      `a part size of ${formatBytes(splitSize)} would cut the ${formatBytes(size)} bundle into ${parts.toLocaleString('en')} parts; at most ${MAX_PARTS} are possible (NAME.tar.000 to NAME.tar.999)`,
      {
        hint: `give a part size of at least ${formatBytes(Math.ceil(size / MAX_PARTS))}, e.g. 4GiB (FAT32 disks) or 700MB (CDs)`,
      },
    );
  }
}

export class PlacedOutput {
  readonly path: string;
  readonly size: number;
  readonly splitSize: number | undefined;
  readonly overwrite: boolean;
  /** Signs the parts checksum file (`NAME.sha256.sig`) of a split output. */
  private readonly key: KeyObject | undefined;
  private parts: PartFileOut[] = [];
  private pool: HashPool | undefined;
  private hasher: FollowingHash | undefined;
  private readonly journaled: boolean;
  private journal: BlobJournal | undefined;
  private adopted: readonly string[];
  private readonly park: string | undefined;
  /** Every byte below it is written and final (see `settle`). */
  private frontier = 0;
  private closed = false;
  /** Bytes written since the last background flush began. */
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private flushFailure: unknown;
  private uses = 0;

  constructor(path: string, size: number, opts: OutputOptions = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid output size ${size}`);
    this.path = resolve(path);
    this.size = size;
    if (opts.splitSize !== undefined) {
      parseSize(opts.splitSize);
      if (Math.ceil(size / opts.splitSize) > MAX_PARTS) throw new TooManyPartsError(size, opts.splitSize);
    }
    this.splitSize = opts.splitSize;
    this.overwrite = opts.overwrite ?? false;
    this.journaled = opts.journal ?? false;
    this.adopted = opts.adopt ?? [];
    this.park = opts.park;
    this.key = opts.key;
  }

  /** The final names this output will take (the first part only, for split output). */
  get targets(): string[] {
    return this.splitSize === undefined
      ? [this.path]
      : [
          partName(this.path, 0),
          partsChecksumName(this.path),
          ...(this.key ? [partsChecksumSignatureName(partsChecksumName(this.path))] : []),
        ];
  }

  /** Bytes settled so far (see `settle`). */
  get settled(): number {
    return this.frontier;
  }

  /**
   * Check the output folder (created if needed) and, unless overwriting, that no target exists;
   * create the temporaries at their full sizes.
   */
  async prepare(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await removeStaleTemps(this.path, new Set(this.adopted));
    if (!this.overwrite) {
      for (const t of this.targets) if (await pathExists(t)) throw new OutputExistsError(t);
    }
    const cut = this.splitSize ?? Math.max(this.size, 1);
    const count = Math.max(1, Math.ceil(this.size / cut));
    for (let i = 0; i < count; i++) {
      const final = this.splitSize === undefined ? this.path : partName(this.path, i);
      const start = i * cut;
      const size = Math.min(cut, this.size - start);
      const tmp = tmpName(final);
      const fh = await open(tmp, 'wx', 0o644);
      const part: PartFileOut = {
        final,
        tmp,
        start,
        size,
        fh: Promise.resolve(fh),
        busy: 0,
        dirty: true,
        lastUse: 0,
      };
      this.parts.push(part);
      await fh.truncate(size);
      // Opened again when written: never one descriptor per part (a split into hundreds of parts).
      if (count > 1) await this.closePart(part);
    }
    // One worker follows the writes for the whole output's digests; the other verifies blobs
    // read back once written (`hashRange`), off the main thread that receives and writes them.
    this.pool = new HashPool({ workers: 2 });
    this.hasher = this.pool.follow(
      this.parts.map((p) => ({ path: p.tmp, start: 0, length: p.size })),
      ['sha256'],
    );
    if (this.journaled) {
      this.journal = await BlobJournal.create(
        this.path,
        this.parts.map((p) => ({ path: p.tmp, start: p.start, size: p.size })),
      );
    }
  }

  /** A blob is written completely at `position` (journaled, when asked for: see `findUnfinished`). */
  async recordBlob(digest: string, position: number, size: number): Promise<void> {
    await this.journal?.record(digest, position, size);
  }

  /** Remove the journal and the adopted temporaries (the output is committed or discarded). */
  private async dropJournal(): Promise<void> {
    const j = this.journal;
    this.journal = undefined;
    if (j) {
      await j.close();
      await rm(j.path, { force: true });
    }
    const adopted = this.adopted;
    this.adopted = [];
    for (const f of adopted) await rm(f, { force: true });
  }

  /** Write `data` at byte `position` of the output (across part boundaries as needed). */
  async writeAt(position: number, data: Uint8Array): Promise<void> {
    for (const { part, at, n, off } of this.slices('write', position, data.length)) {
      const fh = await this.acquire(part);
      try {
        for (let w = 0; w < n; ) {
          const { bytesWritten } = await fh.write(data, off + w, n - w, at + w);
          w += bytesWritten;
        }
      } finally {
        part.busy--;
      }
      part.dirty = true;
    }
    this.unflushed += data.length;
    if (this.unflushed >= FLUSH_EVERY && !this.flushing) {
      this.unflushed = 0;
      this.flushing = this.flush('open').finally(() => {
        this.flushing = undefined;
      });
      // Its failure is kept for `commit` (which flushes again, and throws it).
      this.flushing.catch(() => {});
    }
  }

  /**
   * Flush (fdatasync) the parts written since their last flush, one at a time: the open ones (the
   * background flush every FLUSH_EVERY bytes, which keeps its failure), or all of them, opening
   * those that are closed (`commit`, which then throws the first failure of any flush).
   */
  private async flush(which: 'open' | 'all'): Promise<void> {
    for (const p of this.parts) {
      if (!p.dirty || (which === 'open' && !p.fh)) continue;
      p.dirty = false;
      try {
        const fh = await this.acquire(p);
        try {
          await fh.datasync();
        } finally {
          p.busy--;
        }
      } catch (err) {
        this.flushFailure ??= err;
      }
    }
    if (which === 'all' && this.flushFailure) throw this.flushFailure;
  }

  /**
   * The sha256 of bytes [position, position + length) as written (read back from the parts, on a
   * worker thread of the output's hash pool).
   */
  async hashRange(position: number, length: number, opts: { signal?: AbortSignal } = {}): Promise<Digest> {
    const ranges: FileRange[] = [];
    for (const { part, at, n } of this.slices('hash', position, length)) {
      ranges.push({ path: part.tmp, start: at, length: n });
    }
    if (!this.pool) throw new Error('output already committed or discarded');
    try {
      const [hex] = await this.pool.hash(ranges, ['sha256'], opts);
      return `sha256:${hex}` as Digest;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      throw this.readBackError(err);
    }
  }

  /** Read `length` bytes at `position` of the output (across part boundaries as needed). */
  async readAt(position: number, length: number): Promise<Buffer> {
    const slices = this.slices('read', position, length);
    const out = Buffer.allocUnsafe(length);
    for (const { part, at, n, off } of slices) {
      const fh = await this.acquire(part);
      try {
        for (let r = 0; r < n; ) {
          const { bytesRead } = await fh.read(out, off + r, n - r, at + r);
          if (bytesRead <= 0) throw new RangeError(`${part.tmp} ends before byte ${at + n}`);
          r += bytesRead;
        }
      } finally {
        part.busy--;
      }
    }
    return out;
  }

  /**
   * Bytes [position, position + length) of the output, cut at part boundaries: the one mapping
   * of output offsets to parts (`writeAt`, `readAt`, `hashRange`). Throws if the output is closed
   * or the range lies outside it (`what` names the operation).
   */
  private slices(what: string, position: number, length: number): PartSlice[] {
    if (this.closed) throw new Error('output already committed or discarded');
    const end = position + length;
    if (position < 0 || end > this.size) {
      throw new RangeError(`${what} of [${position}, ${end}) outside the output's ${this.size} bytes`);
    }
    const slices: PartSlice[] = [];
    for (let off = 0; off < length; ) {
      const pos = position + off;
      const part = this.parts[this.splitSize === undefined ? 0 : Math.floor(pos / this.splitSize)]!;
      const n = Math.min(length - off, part.start + part.size - pos);
      slices.push({ part, at: pos - part.start, n, off });
      off += n;
    }
    return slices;
  }

  /**
   * Every byte below `to` is written and final: the hasher may read it. The caller knows (a
   * member is complete); a retried transfer rewriting its own bytes above `to` is fine.
   */
  settle(to: number): void {
    if (to > this.size) throw new RangeError(`settle(${to}) beyond the output's ${this.size} bytes`);
    if (to <= this.frontier) return;
    this.frontier = to;
    try {
      this.hasher?.advance(to);
    } catch (err) {
      throw this.readBackError(err);
    }
  }

  /** Flush, hash what is left, and rename everything into place (the parts checksum file last). */
  async commit(): Promise<CommittedOutput> {
    if (this.closed) throw new Error('output already committed or discarded');
    if (this.frontier !== this.size) {
      throw new Error(`commit() with bytes ${this.frontier}..${this.size} of ${this.path} not settled`);
    }
    this.closed = true;
    const placed: string[] = [];
    try {
      await this.flushing;
      // Flushed while the hasher reads the rest back (both from the page cache, on other threads).
      const [digests] = await Promise.all([this.readBack(), this.flush('all')]);
      for (const p of this.parts) await this.closePart(p);
      const checksumFile = this.splitSize !== undefined ? partsChecksumName(this.path) : undefined;
      for (const p of this.parts) {
        await place(p.tmp, p.final, this.overwrite);
        placed.push(p.final);
      }
      if (checksumFile) {
        await writeChecksumFile(
          checksumFile,
          this.parts.map((p, i) => ({ path: basename(p.final), hex: digests.files[i]!.slice(7) })),
          { key: this.key, overwrite: this.overwrite },
        );
        // Parts left over from an earlier, longer split of the same name would confuse readers.
        for (let i = this.parts.length; await pathExists(partName(this.path, i)); i++) {
          await rm(partName(this.path, i), { force: true });
        }
      }
      await syncDir(dirname(this.path));
      const out: CommittedOutput = {
        files: this.parts.map((p) => p.final),
        sha256: digests.files as Digest[],
        digest: digests.digest,
        size: this.size,
      };
      if (checksumFile) out.checksumFile = checksumFile;
      await this.dropJournal();
      return out;
    } catch (err) {
      for (const p of placed) await rm(p, { force: true });
      await this.removeTemps();
      throw err;
    }
  }

  /** The digests of the whole output and of each part, once the hasher has read everything. */
  private async readBack(): Promise<{ digest: Digest; files: Digest[] }> {
    try {
      const d = await this.hasher!.finish();
      return {
        digest: `sha256:${d.hex[0]}` as Digest,
        files: d.ranges.map((r) => `sha256:${r[0]}` as Digest),
      };
    } catch (err) {
      throw this.readBackError(err);
    } finally {
      await this.stopHasher();
    }
  }

  /** What the hasher failed with, as the writer reports it (an abort stays an abort). */
  private readBackError(err: unknown): unknown {
    if (err instanceof AbortedError) return err;
    const what = err instanceof Error ? err.message : String(err);
    return new OutputReadBackError(`reading back ${this.path} to hash it failed: ${what}`, err);
  }

  private async stopHasher(): Promise<void> {
    const hasher = this.hasher;
    const pool = this.pool;
    this.hasher = undefined;
    this.pool = undefined;
    await hasher?.stop().catch(() => {});
    await pool?.close();
  }

  /**
   * Remove every temporary (with a journal and `park`: move them there instead, for the next
   * run); safe at any time, more than once.
   */
  async discard(): Promise<void> {
    this.closed = true;
    await this.flushing?.catch(() => {});
    const j = this.journal;
    if (j && this.park && this.parts.length > 0) {
      await this.stopHasher();
      for (const p of this.parts) await this.closePart(p).catch(() => {});
      if (
        await j.park(
          this.park,
          this.parts.map((p) => p.tmp),
        )
      ) {
        this.journal = undefined;
        this.parts = [];
        // what this run adopted and had not copied yet stays for the next one
        this.adopted = [];
      }
    }
    await this.removeTemps();
  }

  private async removeTemps(): Promise<void> {
    await this.dropJournal();
    await this.stopHasher();
    const parts = this.parts;
    this.parts = [];
    for (const p of parts) {
      await this.closePart(p).catch(() => {});
      await rm(p.tmp, { force: true });
    }
  }

  /** The part's open handle (opened again if it was closed), marked busy. */
  private async acquire(part: PartFileOut): Promise<FileHandle> {
    part.busy++;
    part.lastUse = ++this.uses;
    if (!part.fh) {
      const open_ = this.parts.filter((p) => p.fh !== undefined);
      if (open_.length >= MAX_OPEN_PARTS) {
        const idle = open_.filter((p) => p.busy === 0).sort((a, b) => a.lastUse - b.lastUse)[0];
        if (idle) void this.closePart(idle).catch(() => {});
      }
      part.fh ??= open(part.tmp, 'r+');
    }
    try {
      return await part.fh;
    } catch (err) {
      part.busy--;
      part.fh = undefined;
      throw err;
    }
  }

  private async closePart(part: PartFileOut): Promise<void> {
    const fh = part.fh;
    if (!fh) return;
    part.fh = undefined;
    await (await fh).close();
  }
}
