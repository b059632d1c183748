import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { FileRange } from '../digest/index.ts';
import { InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { readChecksumSignature } from './checksum-file.ts';
import { collectParts, METADATA_ORDER, parsePartName } from './format.ts';
import { LocalFilesReader, localRanges } from './local-files.ts';
import { type MultiPartFile, openParts } from './parts.ts';
import {
  RandomAccessTarInput,
  readTar,
  StreamTarInput,
  type TarEnd,
  type TarEntryType,
  type TarInput,
  TarTruncatedError,
} from './tar-reader.ts';
import { DuplicateTracker, entryProblem, normalizeMemberName, UnsafeTarEntryError } from './tar-safety.ts';

/**
 * Where a bundle's bytes come from: one tar file, the parts of a split bundle (NAME.tar.000, …,
 * read as their concatenation), or an extracted directory. All give the same things: one
 * sequential pass over the members with their bytes (verify), an index of members found by
 * seeking past their data, and ranged reads of one member (push, serve) — never an extraction.
 * Local tar files and parts also say where each member lies in them (`fileRanges`), so that
 * verify can hash large members off the main thread, after a walk that only seeks.
 */

export type BundleSourceKind = 'tar' | 'parts' | 'directory';

/** A member located in the source. */
export interface SourceMember {
  /** Normalised name (`./` prefix dropped). */
  name: string;
  size: number;
  /** Offset of the member's data in the tar (the concatenated parts); -1 in a directory. */
  offset: number;
}

/** A member as a sequential pass yields it. */
export interface SourceEntry extends SourceMember {
  /** The name as stored (before normalisation). */
  rawName: string;
  type: TarEntryType;
  typeflag: string;
  linkname: string;
  /** Offset of the member's header in the tar; -1 in a directory. */
  headerOffset: number;
  /** The member's bytes; read before asking for the next entry, or not at all. */
  body(): AsyncIterable<Buffer>;
}

/** One file of a split bundle. */
export interface PartFile {
  /** File name (`NAME.tar.000`). */
  name: string;
  path: string;
  size: number;
}

export interface PartDigest {
  name: string;
  path: string;
  /** sha256 hex of the part's bytes. */
  hex: string;
  size: number;
}

export interface EntriesOptions {
  signal?: AbortSignal;
  /** Read what follows the end-of-archive marker and report whether it is all zeros. */
  checkTrailing?: boolean;
  /** Split bundles: called with each part's sha256 once its bytes have streamed past. */
  onPart?: (part: PartDigest) => void;
  /** Called with the running count of bytes read from the source. */
  onBytes?: (bytes: number) => void;
  /**
   * Tar and split sources: called with the sha256 of each file (the tar, or each part) once its
   * bytes have streamed past — hashed in the same pass, no second read.
   */
  onFile?: (file: PartDigest) => void;
  /**
   * Local tar and split sources (those with `fileRanges`): walk the tar by seeking — headers
   * are read, bodies only when the caller reads them (`body()`), the rest is skipped without
   * reading — for a caller that hashes the members itself from `fileRanges`. Then `onPart`,
   * `onFile` and `onBytes` are not called. Ignored by other sources, which stream as usual.
   */
  seek?: boolean;
}

/**
 * Random access over the bytes of a bundle stored somewhere other than local files — the shape
 * of `MultiPartFile` (parts.ts) and of `S3ObjectSource` (s3/source.ts): an `s3://` bundle is read
 * through it, streaming, without a local copy.
 */
export type BundleByteReader = Pick<
  MultiPartFile,
  'paths' | 'partSizes' | 'size' | 'read' | 'createReadStream' | 'close'
>;

/** A bundle given as a reader instead of a path (`openSource({ reader, name })`). */
export interface BundleReaderInput {
  reader: BundleByteReader;
  /** How messages and reports name the bundle, e.g. `s3://bucket/key.tar`. */
  name: string;
  /**
   * Split bundles (more than one object, or a name ending in `.000`): the parts checksum file,
   * its name (`NAME.tar.sha256`) and how to read it (undefined when it does not exist).
   */
  partsChecksum?: {
    name: string;
    read(opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
    /** `NAME.tar.sha256.sig`: its bytes, or undefined when it does not exist. */
    readSignature?(opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
  };
  /** Split bundles: parts found after a gap in the numbering (a part is missing). */
  partsAfterGap?: readonly PartFile[];
}

/** What `openSource`, `openBundle`, `verifyBundle` and `BundleTarget.open` read. */
export type BundleInput = string | BundleReaderInput;

/** The name a bundle input is known by in messages. */
export function bundleInputName(input: BundleInput): string {
  return typeof input === 'string' ? input : input.name;
}

export interface BundleSource {
  readonly kind: BundleSourceKind;
  /** The path the user gave. */
  readonly path: string;
  /** Total bytes: the tar, the parts together, or the files of the directory. */
  readonly size: number;
  /** Split bundles: the consecutive parts found from `.000` on. */
  readonly parts: readonly PartFile[];
  /** Split bundles: part files found after a gap in the numbering (a part is missing). */
  readonly partsAfterGap: readonly PartFile[];
  /** Split bundles: `NAME.tar.sha256`. */
  readonly partsChecksumPath: string | undefined;
  /**
   * Split bundles: the bytes of the parts checksum file, or undefined when it does not exist.
   * (Optional for other implementations; readers fall back to reading `partsChecksumPath`.)
   */
  readPartsChecksum?(opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
  /** Split bundles: the bytes of `NAME.tar.sha256.sig`, or undefined when it does not exist. */
  readPartsChecksumSignature?(opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
  /**
   * Local tar and split sources only (not a directory, not a reader such as `s3://`): the local
   * files holding the bundle's bytes, in order (the tar, or the parts before any gap).
   */
  readonly localFiles?: readonly PartFile[] | undefined;
  /**
   * With `localFiles`: where a member's bytes are in those files, as one range per file touched
   * (a member of a split bundle can span two parts) — for positional reads off the main thread
   * (`HashPool`) instead of one stream pass.
   */
  fileRanges?(member: SourceMember): FileRange[];
  /** One sequential pass over every entry in stored order; returns what followed the last one. */
  entries(opts?: EntriesOptions): AsyncGenerator<SourceEntry, TarEnd | undefined, undefined>;
  /**
   * Every member, in stored order, found by reading headers only. Refuses (UnsafeTarEntryError)
   * unsafe entries and duplicates; directories are left out.
   */
  index(opts?: { signal?: AbortSignal }): Promise<SourceMember[]>;
  /** A stream over bytes [start, end) of a member (end defaults to its size). */
  openRange(member: SourceMember, start?: number, end?: number, opts?: { signal?: AbortSignal }): Readable;
  /** Bytes [start, start+length) of a member, in memory (small metadata only). */
  readRange(member: SourceMember, start: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** The bundle path does not exist or cannot be read (exit 2). */
export class BundleNotFoundError extends InvalidInputError {
  override readonly code: string = 'BUNDLE_NOT_FOUND';
  readonly path: string;
  constructor(path: string, reason: string, cause?: unknown) {
    super(`cannot read bundle ${path}: ${reason}`, {
      hint: 'give a bundle tar file, the first part of a split bundle (NAME.tar.000) or an extracted bundle directory',
      cause,
    });
    this.path = path;
  }
}

const READ_CHUNK = 1024 * 1024;

/** A tar file or the parts of a split bundle. */
class TarSource implements BundleSource {
  readonly kind: 'tar' | 'parts';
  readonly path: string;
  readonly size: number;
  readonly parts: readonly PartFile[];
  readonly partsAfterGap: readonly PartFile[];
  readonly partsChecksumPath: string | undefined;
  readonly localFiles: readonly PartFile[] | undefined;
  readonly fileRanges: ((member: SourceMember) => FileRange[]) | undefined;
  private readonly files: readonly PartFile[];
  private random: BundleByteReader | undefined;
  private opening: Promise<BundleByteReader> | undefined;
  /** Set when the source reads through a caller's reader (not local files). */
  private readonly external: BundleByteReader | undefined;
  private readonly checksumReader: BundleReaderInput['partsChecksum'];

  constructor(
    kind: 'tar' | 'parts',
    path: string,
    files: readonly PartFile[],
    partsAfterGap: readonly PartFile[] = [],
    partsChecksumPath?: string,
    external?: { reader: BundleByteReader; partsChecksum?: BundleReaderInput['partsChecksum'] },
  ) {
    this.kind = kind;
    this.path = path;
    this.files = files;
    this.parts = kind === 'parts' ? files : [];
    this.partsAfterGap = partsAfterGap;
    this.partsChecksumPath = partsChecksumPath;
    this.size = files.reduce((n, f) => n + f.size, 0);
    this.external = external?.reader;
    this.random = external?.reader;
    this.checksumReader = external?.partsChecksum;
    this.localFiles = this.external ? undefined : files;
    this.fileRanges = this.external
      ? undefined
      : (member: SourceMember) => localRanges(files, member.offset, member.size);
  }

  async readPartsChecksum(opts: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    if (this.checksumReader) return this.checksumReader.read(opts);
    if (!this.partsChecksumPath) return undefined;
    try {
      return await readFile(this.partsChecksumPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async readPartsChecksumSignature(opts: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    if (this.checksumReader) return this.checksumReader.readSignature?.(opts);
    if (!this.partsChecksumPath) return undefined;
    return readChecksumSignature(this.partsChecksumPath);
  }

  /** Random access over the tar (or the parts as one), opened on first use. */
  private async reader(): Promise<BundleByteReader> {
    if (this.random) return this.random;
    this.opening ??= openParts(this.path);
    try {
      this.random = await this.opening;
    } catch (err) {
      this.opening = undefined;
      throw err;
    }
    return this.random;
  }

  private async *bytes(opts: EntriesOptions): AsyncGenerator<Buffer> {
    let total = 0;
    let start = 0;
    const hashing = this.kind === 'parts' || opts.onFile !== undefined;
    for (const f of this.files) {
      const hash = createHash('sha256');
      let size = 0;
      const rs = this.external
        ? this.external.createReadStream(start, start + f.size, opts.signal ? { signal: opts.signal } : {})
        : createReadStream(f.path, { highWaterMark: READ_CHUNK });
      start += f.size;
      try {
        for await (const chunk of rs as AsyncIterable<Buffer>) {
          throwIfAborted(opts.signal);
          if (hashing) hash.update(chunk);
          size += chunk.length;
          total += chunk.length;
          opts.onBytes?.(total);
          yield chunk;
        }
      } finally {
        rs.destroy();
      }
      if (hashing) {
        const digest: PartDigest = { name: f.name, path: f.path, hex: hash.digest('hex'), size };
        if (this.kind === 'parts') opts.onPart?.(digest);
        opts.onFile?.(digest);
      }
    }
  }

  async *entries(opts: EntriesOptions = {}): AsyncGenerator<SourceEntry, TarEnd | undefined, undefined> {
    if (opts.seek && this.localFiles) {
      const reader = new LocalFilesReader(this.localFiles);
      try {
        return yield* this.walk(new RandomAccessTarInput(reader), opts);
      } finally {
        await reader.close();
      }
    }
    const input = new StreamTarInput(this.bytes(opts), this.size);
    try {
      return yield* this.walk(input, opts);
    } finally {
      await input.close();
    }
  }

  private async *walk(
    input: TarInput,
    opts: EntriesOptions,
  ): AsyncGenerator<SourceEntry, TarEnd | undefined, undefined> {
    const walker = readTar(input, {
      source: this.path,
      ...(opts.signal ? { signal: opts.signal } : {}),
      checkTrailing: opts.checkTrailing ?? false,
    });
    for (;;) {
      const r = await walker.next();
      if (r.done) return r.value;
      const m = r.value;
      yield {
        name: normalizeMemberName(m.name),
        rawName: m.name,
        size: m.size,
        offset: m.dataOffset,
        headerOffset: m.headerOffset,
        type: m.type,
        typeflag: m.typeflag,
        linkname: m.linkname,
        body: () => m.body(),
      };
    }
  }

  async index(opts: { signal?: AbortSignal } = {}): Promise<SourceMember[]> {
    const input = new RandomAccessTarInput(await this.reader());
    const out: SourceMember[] = [];
    const dups = new DuplicateTracker();
    for await (const m of readTar(input, {
      source: this.path,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })) {
      const problem = entryProblem(m);
      if (problem) throw new UnsafeTarEntryError(this.path, m.name, problem);
      const name = normalizeMemberName(m.name);
      const earlier = dups.add(name);
      if (earlier !== undefined) {
        throw new UnsafeTarEntryError(
          this.path,
          m.name,
          earlier === name ? 'duplicate member' : `differs only in case from ${earlier}`,
        );
      }
      if (m.type === 'directory') continue;
      out.push({ name, size: m.size, offset: m.dataOffset });
    }
    return out;
  }

  openRange(
    member: SourceMember,
    start = 0,
    end = member.size,
    opts: { signal?: AbortSignal } = {},
  ): Readable {
    checkRange(member, start, end);
    const a = member.offset + start;
    const b = member.offset + end;
    if (this.random) return this.random.createReadStream(a, b, opts);
    const self = this;
    return Readable.from(
      (async function* () {
        yield* (await self.reader()).createReadStream(a, b, opts);
      })(),
      { objectMode: false },
    );
  }

  async readRange(member: SourceMember, start: number, length: number): Promise<Buffer> {
    checkRange(member, start, start + length);
    const out = await (await this.reader()).read(member.offset + start, length);
    if (out.length < length)
      throw new TarTruncatedError(this.path, member.name, 'the file shrank while reading');
    return out;
  }

  async close(): Promise<void> {
    const r = this.random;
    this.random = undefined;
    this.opening = undefined;
    await r?.close();
  }
}

/** The last path segment of a file path or an `s3://bucket/key` URL. */
function lastSegment(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

function openReaderSource(input: BundleReaderInput): BundleSource {
  const { reader, name } = input;
  const files: PartFile[] = reader.paths.map((p, i) => ({
    name: lastSegment(p),
    path: p,
    size: reader.partSizes[i] ?? 0,
  }));
  const split =
    input.partsChecksum !== undefined ||
    files.length > 1 ||
    parsePartName(lastSegment(reader.paths[0] ?? name)) !== undefined;
  if (!split) {
    return new TarSource('tar', name, files, [], undefined, { reader });
  }
  return new TarSource('parts', name, files, input.partsAfterGap ?? [], input.partsChecksum?.name, {
    reader,
    ...(input.partsChecksum ? { partsChecksum: input.partsChecksum } : {}),
  });
}

function checkRange(member: SourceMember, start: number, end: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > member.size) {
    throw new RangeError(`range [${start}, ${end}) is outside ${member.name} (${member.size} bytes)`);
  }
}

/** An extracted bundle directory. */
class DirectorySource implements BundleSource {
  readonly kind = 'directory' as const;
  readonly path: string;
  readonly size: number;
  readonly parts: readonly PartFile[] = [];
  readonly partsAfterGap: readonly PartFile[] = [];
  readonly partsChecksumPath = undefined;
  private readonly listing: readonly DirEntry[];

  constructor(path: string, listing: readonly DirEntry[]) {
    this.path = path;
    this.listing = listing;
    this.size = listing.reduce((n, e) => n + e.size, 0);
  }

  async *entries(opts: EntriesOptions = {}): AsyncGenerator<SourceEntry, TarEnd | undefined, undefined> {
    let total = 0;
    const root = this.path;
    for (const e of this.listing) {
      throwIfAborted(opts.signal);
      const file = join(this.path, e.name);
      const size = e.size;
      yield {
        name: e.name,
        rawName: e.name,
        size,
        offset: -1,
        headerOffset: -1,
        type: e.type,
        typeflag: e.type === 'file' ? '0' : '?',
        linkname: e.linkname,
        body: async function* () {
          if (e.type !== 'file' || size === 0) return;
          let seen = 0;
          const rs = createReadStream(file, { highWaterMark: READ_CHUNK, start: 0, end: size - 1 });
          try {
            for await (const chunk of rs as AsyncIterable<Buffer>) {
              throwIfAborted(opts.signal);
              seen += chunk.length;
              total += chunk.length;
              opts.onBytes?.(total);
              yield chunk;
            }
          } finally {
            rs.destroy();
          }
          if (seen < size) throw new TarTruncatedError(root, e.name, `the file shrank to ${seen} bytes`);
        },
      };
    }
    return undefined;
  }

  async index(): Promise<SourceMember[]> {
    const out: SourceMember[] = [];
    for (const e of this.listing) {
      const problem = entryProblem({ name: e.name, type: e.type, typeflag: '', linkname: e.linkname });
      if (problem) throw new UnsafeTarEntryError(this.path, e.name, problem);
      out.push({ name: e.name, size: e.size, offset: -1 });
    }
    return out;
  }

  openRange(
    member: SourceMember,
    start = 0,
    end = member.size,
    opts: { signal?: AbortSignal } = {},
  ): Readable {
    checkRange(member, start, end);
    if (end === start) return Readable.from([], { objectMode: false });
    return createReadStream(join(this.path, member.name), {
      start,
      end: end - 1,
      highWaterMark: READ_CHUNK,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  async readRange(member: SourceMember, start: number, length: number): Promise<Buffer> {
    checkRange(member, start, start + length);
    const fh = await open(join(this.path, member.name), 'r');
    try {
      const out = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, start + done);
        if (bytesRead === 0)
          throw new TarTruncatedError(this.path, member.name, 'the file shrank while reading');
        done += bytesRead;
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  async close(): Promise<void> {}
}

interface DirEntry {
  name: string;
  size: number;
  type: TarEntryType;
  linkname: string;
}

async function listDirectory(root: string, signal?: AbortSignal): Promise<DirEntry[]> {
  const out: DirEntry[] = [];
  async function walk(rel: string): Promise<void> {
    throwIfAborted(signal);
    const names = (await readdir(rel ? join(root, rel) : root)).sort();
    for (const n of names) {
      const name = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(root, name));
      if (st.isDirectory()) {
        await walk(name);
        continue;
      }
      let type: TarEntryType = 'other';
      if (st.isFile()) type = 'file';
      else if (st.isSymbolicLink()) type = 'symlink';
      else if (st.isCharacterDevice()) type = 'char-device';
      else if (st.isBlockDevice()) type = 'block-device';
      else if (st.isFIFO()) type = 'fifo';
      out.push({ name, size: type === 'file' ? st.size : 0, type, linkname: '' });
    }
  }
  await walk('');
  // The contract order: metadata first, then the rest by name (files/ sorts before blobs/ is not
  // required of a directory, only of a tar).
  const rank = (n: string) => {
    const i = METADATA_ORDER.indexOf(n);
    return i < 0 ? METADATA_ORDER.length : i;
  };
  return out.sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function findParts(first: string): Promise<{ parts: PartFile[]; afterGap: PartFile[]; base: string }> {
  const m = parsePartName(first);
  if (!m) throw new BundleNotFoundError(first, 'not a part name');
  const base = m.base;
  if (m.index !== 0) {
    throw new InvalidInputError(`${first} is not the first part of a split bundle`, {
      hint: `give ${basename(base)}.${'0'.repeat(m.width)}`,
    });
  }
  const dir = dirname(first);
  // A gap is not fatal here: verify reports the missing part (exit 3) by name.
  const found = collectParts(basename(base), m.width, await readdir(dir));
  const withSize = async (n: string): Promise<PartFile> => {
    const p = join(dir, n);
    return { name: n, path: p, size: (await stat(p)).size };
  };
  const parts: PartFile[] = [];
  for (const n of found.parts) parts.push(await withSize(n));
  const afterGap: PartFile[] = [];
  for (const n of found.afterGap) afterGap.push(await withSize(n));
  return { parts, afterGap, base };
}

/**
 * Open a bundle source: an extracted directory, the first part of a split bundle
 * (`NAME.tar.000`; `NAME.tar` also works when only its parts exist), or a tar file — or, given
 * `{ reader, name }`, a tar (or the parts of a split bundle) read through a random-access reader
 * such as `openS3Object(...)`, streaming, without a local copy. The source closes the reader.
 */
export async function openSource(
  input: BundleInput,
  opts: { signal?: AbortSignal } = {},
): Promise<BundleSource> {
  throwIfAborted(opts.signal);
  if (typeof input !== 'string') return openReaderSource(input);
  const path = input;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const first = `${path}.000`;
      if (
        await stat(first)
          .then((s) => s.isFile())
          .catch(() => false)
      )
        return openSource(first, opts);
      throw new BundleNotFoundError(path, 'no such file or directory', err);
    }
    throw new BundleNotFoundError(path, code ?? String(err), err);
  }
  if (st.isDirectory()) {
    try {
      return new DirectorySource(path, await listDirectory(path, opts.signal));
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
      throw new BundleNotFoundError(path, (err as NodeJS.ErrnoException).code ?? String(err), err);
    }
  }
  if (!st.isFile()) throw new BundleNotFoundError(path, 'not a regular file or a directory');
  if (parsePartName(basename(path)) !== undefined) {
    const { parts, afterGap, base } = await findParts(path);
    return new TarSource('parts', path, parts, afterGap, `${base}.sha256`);
  }
  return new TarSource('tar', path, [{ name: basename(path), path, size: st.size }]);
}
