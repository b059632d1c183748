import { InvalidInputError, throwIfAborted, VerificationError } from '../errors/index.ts';
import { bundleHeaderSize, encodeBundleHeader, padded, TAR_END_SIZE } from './tar-header.ts';

/**
 * A deterministic streaming tar writer: POSIX ustar headers, plus a pax extended header (`x`)
 * only for names that do not fit ustar (> 100 bytes or non-ASCII) and sizes over 8 GiB.
 * Every entry gets the same mtime, uid/gid 0, empty uname/gname, mode 0644 (files) or 0755
 * (directories); no atime/ctime. Output ends with two zero blocks (no padding to a record size).
 * The same entries and mtime always give the same bytes. The headers are encoded by the one tar
 * codec, `tar-header.ts`.
 */

export interface TarEntry {
  /** Member path: relative, `/`-separated, no `.` or `..` components. */
  path: string;
  /** Exact byte count of the data (the tar header carries it before the data flows). */
  size: number;
  /**
   * The data: bytes in memory, or a function opening a stream of exactly `size` bytes. It is
   * called only when the entry is written, so streams are opened one at a time.
   */
  data: Uint8Array | (() => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>);
  /** `file` (default) or `directory` (size must be 0). */
  type?: 'file' | 'directory';
}

export interface TarStreamOptions {
  /** Modification time of every entry, seconds since the epoch (SOURCE_DATE_EPOCH). */
  mtime: number;
  signal?: AbortSignal;
  /** Called when an entry starts (after its header) and ends. */
  onEntry?: (event: { path: string; size: number; done: boolean }) => void;
}

export class InvalidMemberPathError extends InvalidInputError {
  override readonly code = 'INVALID_MEMBER_PATH';
  readonly path: string;
  constructor(path: string, reason: string) {
    super(`invalid tar member path ${JSON.stringify(path)}: ${reason}`, {
      hint: 'member paths are relative, use "/" and have no "." or ".." components',
    });
    this.path = path;
  }
}

/** A member's data stream yielded more or fewer bytes than its declared size. */
export class TarEntrySizeError extends VerificationError {
  override readonly code = 'TAR_ENTRY_SIZE';
  readonly path: string;
  readonly expected: number;
  readonly actual: number;
  constructor(path: string, expected: number, actual: number, early: boolean) {
    super(
      early
        ? `${path}: the source yielded more than the declared ${expected} bytes`
        : `${path}: the source yielded ${actual} bytes, ${expected} were declared`,
      { hint: 'the source changed while the bundle was written; run the build again' },
    );
    this.path = path;
    this.expected = expected;
    this.actual = actual;
  }
}

export function checkMemberPath(path: string): void {
  if (path.length === 0) throw new InvalidMemberPathError(path, 'empty');
  if (path.startsWith('/')) throw new InvalidMemberPathError(path, 'absolute');
  if (path.includes('\0')) throw new InvalidMemberPathError(path, 'contains NUL');
  if (path.includes('\\')) throw new InvalidMemberPathError(path, 'contains a backslash');
  const parts = path.split('/');
  for (const [i, p] of parts.entries()) {
    if (p === '' && i !== parts.length - 1) throw new InvalidMemberPathError(path, 'empty component');
    if (p === '.' || p === '..') throw new InvalidMemberPathError(path, `"${p}" component`);
  }
}

/** Bytes one entry occupies in the tar: headers (pax included), data, padding. */
export function tarEntrySize(path: string, size: number): number {
  return bundleHeaderSize(path, size) + padded(size);
}

/** The header block(s) of one entry: an optional pax header plus its records, then ustar. */
export function entryHeader(
  path: string,
  size: number,
  mtime: number,
  type: 'file' | 'directory' = 'file',
): Buffer {
  checkMemberPath(path);
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError(`${path}: invalid size ${size}`);
  if (type === 'directory' && size !== 0) throw new InvalidInputError(`${path}: a directory has no data`);
  if (!Number.isSafeInteger(mtime) || mtime < 0) throw new InvalidInputError(`invalid tar mtime ${mtime}`);
  return encodeBundleHeader({
    path,
    type: type === 'directory' ? 'Directory' : 'File',
    size: type === 'directory' ? 0 : size,
    mode: type === 'directory' ? 0o755 : 0o644,
    mtime,
  });
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * The tar byte stream of `entries`, in the order given. Each data stream is opened when its
 * entry is reached and must yield exactly the declared size (TarEntrySizeError otherwise).
 * Use with `stream.pipeline(tarStream(...), sink, { signal })`.
 */
export async function* tarStream(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  opts: TarStreamOptions,
): AsyncGenerator<Buffer, void, undefined> {
  const { mtime, signal } = opts;
  for await (const entry of entries) {
    throwIfAborted(signal);
    const type = entry.type ?? 'file';
    const path = type === 'directory' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
    yield entryHeader(path, entry.size, mtime, type);
    opts.onEntry?.({ path, size: entry.size, done: false });
    if (type === 'file') {
      let written = 0;
      if (entry.data instanceof Uint8Array) {
        written = entry.data.length;
        if (written !== entry.size)
          throw new TarEntrySizeError(path, entry.size, written, written > entry.size);
        if (written > 0) yield toBuffer(entry.data);
      } else {
        const source = await entry.data();
        for await (const chunk of source) {
          throwIfAborted(signal);
          const buf = toBuffer(chunk);
          written += buf.length;
          if (written > entry.size) throw new TarEntrySizeError(path, entry.size, written, true);
          if (buf.length > 0) yield buf;
        }
        if (written !== entry.size) throw new TarEntrySizeError(path, entry.size, written, false);
      }
      const pad = padded(written) - written;
      if (pad > 0) yield Buffer.alloc(pad);
    }
    opts.onEntry?.({ path, size: entry.size, done: true });
  }
  yield Buffer.alloc(TAR_END_SIZE);
}
