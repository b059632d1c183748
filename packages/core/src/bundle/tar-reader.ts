import { throwIfAborted, VerificationError } from '../errors/index.ts';
import { BLOCK, decodeHeader, isZeroBlock, parsePax, TarFormatError } from './tar-header.ts';

/**
 * A small streaming tar reader: ustar/POSIX headers, pax extended headers (`path`, `linkpath`,
 * `size`), GNU long names (`L`/`K`) and GNU base-256 sizes. It reports where every member's
 * header and data start, so a tar file can be indexed by seeking past the data and read back
 * later by byte range. It never writes anything anywhere. Each header block is decoded by the one
 * tar codec, `tar-header.ts` (strictly: checksum, octal fields, NULs).
 */

/** pax and GNU long-name records are small; anything bigger is refused. */
export const MAX_TAR_META_BYTES = 1024 * 1024;

export type TarEntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'char-device'
  | 'block-device'
  | 'fifo'
  | 'other';

export interface TarHeader {
  /** Member name: pax `path`, GNU long name, or ustar prefix + name. Not normalised. */
  name: string;
  type: TarEntryType;
  /** The raw typeflag character. */
  typeflag: string;
  /** Data bytes (pax `size` wins over the header). */
  size: number;
  mode: number;
  linkname: string;
  /** Offset of this member's own header block (after any pax/GNU records before it). */
  headerOffset: number;
  /** Offset of the first data byte. */
  dataOffset: number;
}

/** The archive ends inside a member (or a member's declared size runs past the end) (exit 3). */
export class TarTruncatedError extends VerificationError {
  override readonly code = 'TAR_TRUNCATED';
  readonly member: string;
  constructor(source: string, member: string, detail: string) {
    super(`${source}: truncated at member ${member}: ${detail}`, {
      hint: 'the bundle was cut short (incomplete copy or download, or a missing part); copy it again',
    });
    this.member = member;
  }
}

/** A byte source the walker reads from: sequential (a stream) or random access (a file). */
export interface TarInput {
  /** Bytes consumed so far (the offset of the next byte). */
  readonly position: number;
  /** Total size when known (files, parts); lets the walker refuse impossible sizes up front. */
  readonly size: number | undefined;
  /** Read exactly `n` bytes, or fewer at the end of the input. */
  read(n: number): Promise<Buffer>;
  /** Yield the next `n` bytes in chunks (fewer at the end of the input). */
  chunks(n: number): AsyncIterable<Buffer>;
  /** Skip `n` bytes; returns how many could be skipped. */
  skip(n: number): Promise<number>;
}

/** A TarInput over an async iterable of chunks (a file stream, a pipe, an HTTP body). */
export class StreamTarInput implements TarInput {
  readonly size: number | undefined;
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>, size?: number) {
    this.it = source[Symbol.asyncIterator]();
    this.size = size;
  }

  get position(): number {
    return this.pos;
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      if (r.value.length === 0) continue;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      return true;
    }
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.fill())) {}
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.pos += out.length;
    return out;
  }

  async *chunks(n: number): AsyncIterable<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) return;
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.pos += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const c of this.chunks(n)) skipped += c.length;
    return skipped;
  }

  /** Stop the underlying iterator (closes a file stream early). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

/** Random access reads, the shape of a file, of split parts and of an S3 object. */
export interface RandomAccessReader {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

const READ_CHUNK = 1024 * 1024;

/** A TarInput that seeks: skipping data costs nothing (indexing a bundle reads only headers). */
export class RandomAccessTarInput implements TarInput {
  readonly size: number;
  private readonly reader: RandomAccessReader;
  private pos = 0;

  constructor(reader: RandomAccessReader) {
    this.reader = reader;
    this.size = reader.size;
  }

  get position(): number {
    return this.pos;
  }

  async read(n: number): Promise<Buffer> {
    const len = Math.max(0, Math.min(n, this.size - this.pos));
    const out = len === 0 ? Buffer.alloc(0) : await this.reader.read(this.pos, len);
    this.pos += out.length;
    return out;
  }

  async *chunks(n: number): AsyncIterable<Buffer> {
    let left = Math.min(n, this.size - this.pos);
    while (left > 0) {
      const out = await this.read(Math.min(left, READ_CHUNK));
      if (out.length === 0) return;
      left -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<number> {
    const len = Math.max(0, Math.min(n, this.size - this.pos));
    this.pos += len;
    return len;
  }
}

function typeOf(flag: string, name: string): TarEntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return name.endsWith('/') ? 'directory' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char-device';
    case '4':
      return 'block-device';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

export interface ReadTarOptions {
  signal?: AbortSignal;
  /** Name of the archive in messages. */
  source?: string;
}

/** One member as the walker yields it: the header, and its data for sequential consumers. */
export interface TarMember extends TarHeader {
  /**
   * The member's data, streamed from the input. Read it before asking for the next member, or
   * not at all (the walker then skips it). Ends early (with a TarTruncatedError) when the input
   * ends inside the member.
   */
  body(): AsyncIterable<Buffer>;
}

async function readMeta(input: TarInput, size: number, what: string, source: string, offset: number) {
  if (size > MAX_TAR_META_BYTES) {
    throw new TarFormatError(source, offset, `${what} of ${size} bytes is larger than ${MAX_TAR_META_BYTES}`);
  }
  const data = await input.read(size);
  if (data.length < size)
    throw new TarTruncatedError(source, `(${what} at byte ${offset})`, 'input ends inside it');
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if ((await input.skip(pad)) < pad) {
    throw new TarTruncatedError(source, `(${what} at byte ${offset})`, 'input ends inside its padding');
  }
  return data;
}

/** What follows the end-of-archive marker, for callers that care (verify). */
export interface TarEnd {
  /** Offset of the end-of-archive marker. */
  offset: number;
  /** Non-zero bytes follow the end-of-archive marker (set only when the walker read them). */
  trailingData: boolean;
  /** Whether the archive had no end-of-archive marker at all (ends right after a member). */
  missingEndMarker: boolean;
}

/**
 * Walk a tar: yields each member (files, directories, links, devices — the caller decides what
 * is acceptable), consumes pax and GNU records itself, and returns at the end-of-archive marker.
 * Set `checkTrailing` to read everything after the marker and tell whether it is all zeros.
 */
export async function* readTar(
  input: TarInput,
  opts: ReadTarOptions & { checkTrailing?: boolean } = {},
): AsyncGenerator<TarMember, TarEnd, undefined> {
  const source = opts.source ?? 'tar';
  let pax: Record<string, string> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    throwIfAborted(opts.signal);
    const offset = input.position;
    const block = await input.read(BLOCK);
    if (block.length === 0) {
      if (pax || longName || longLink) {
        throw new TarTruncatedError(
          source,
          `(record at byte ${offset})`,
          'input ends after an extended header',
        );
      }
      return { offset, trailingData: false, missingEndMarker: true };
    }
    if (block.length < BLOCK) {
      throw new TarTruncatedError(
        source,
        `(header at byte ${offset})`,
        `only ${block.length} bytes of a header`,
      );
    }
    if (isZeroBlock(block)) {
      const next = await input.read(BLOCK);
      if (next.length > 0 && !isZeroBlock(next)) {
        throw new TarFormatError(source, offset, 'a lone zero block in the middle of the archive');
      }
      let trailingData = false;
      if (opts.checkTrailing) {
        for await (const c of input.chunks(Number.MAX_SAFE_INTEGER)) {
          throwIfAborted(opts.signal);
          if (!isZeroBlock(c)) trailingData = true;
        }
      }
      return { offset, trailingData, missingEndMarker: false };
    }
    const h = decodeHeader(block, offset, source);
    const typeflag = h.typeflag;
    let size = h.size;
    if (typeflag === 'x' || typeflag === 'g') {
      const data = await readMeta(input, size, 'pax header', source, offset);
      const records = parsePax(data, source, offset);
      if (typeflag === 'x') pax = { ...(pax ?? {}), ...records };
      continue;
    }
    if (typeflag === 'L' || typeflag === 'K') {
      const data = await readMeta(input, size, 'GNU long name', source, offset);
      const nul = data.indexOf(0);
      const value = data.subarray(0, nul < 0 ? data.length : nul).toString('utf8');
      if (typeflag === 'L') longName = value;
      else longLink = value;
      continue;
    }
    let name = h.name;
    if (longName !== undefined) name = longName;
    if (pax?.path !== undefined) name = pax.path;
    let linkname = h.linkname;
    if (longLink !== undefined) linkname = longLink;
    if (pax?.linkpath !== undefined) linkname = pax.linkpath;
    if (pax?.size !== undefined) {
      if (!/^[0-9]+$/.test(pax.size))
        throw new TarFormatError(source, offset, `pax size "${pax.size}" is not a number`);
      size = Number.parseInt(pax.size, 10);
      if (!Number.isSafeInteger(size)) throw new TarFormatError(source, offset, 'pax size too large');
    }
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    const type = typeOf(typeflag, name);
    // Links, devices, FIFOs and directories carry no data, whatever the size field says — except
    // a regular-file header (type 0) whose name ends in `/`: GNU tar reads its data as a file, so
    // the walker skips that data too (both readers see the same member list) and the safety check
    // refuses the member (tar-safety.ts).
    const fileTyped = typeflag === '0' || typeflag === '\0' || typeflag === '7';
    const dataSize = type === 'file' || type === 'other' || (fileTyped && type === 'directory') ? size : 0;
    const dataOffset = input.position;
    if (input.size !== undefined && dataOffset + dataSize > input.size) {
      throw new TarTruncatedError(
        source,
        name,
        `declares ${dataSize} bytes but only ${Math.max(0, input.size - dataOffset)} remain in the archive`,
      );
    }
    let consumed = 0;
    const member: TarMember = {
      name,
      type,
      typeflag,
      size: dataSize,
      mode: h.mode,
      linkname,
      headerOffset: offset,
      dataOffset,
      body: async function* () {
        for await (const c of input.chunks(dataSize - consumed)) {
          consumed += c.length;
          yield c;
        }
        if (consumed < dataSize) {
          throw new TarTruncatedError(
            source,
            name,
            `declares ${dataSize} bytes, the archive ends after ${consumed}`,
          );
        }
      },
    };
    yield member;
    if (consumed < dataSize) {
      const left = dataSize - consumed;
      const skipped = await input.skip(left);
      consumed += skipped;
      if (skipped < left) {
        throw new TarTruncatedError(
          source,
          name,
          `declares ${dataSize} bytes, the archive ends after ${consumed}`,
        );
      }
    }
    const pad = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    if ((await input.skip(pad)) < pad) {
      throw new TarTruncatedError(source, name, 'the archive ends inside its padding');
    }
  }
}
