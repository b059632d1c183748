import { Header, Pax } from 'tar';

/**
 * A minimal streaming tar reader and writer for chart archives. Header fields are decoded and
 * encoded by the `tar` package (ustar, pax, GNU base-256 numbers); the block loop is ours so the
 * caller sees every header (links, devices, declared sizes) before a byte of its body is read,
 * and nothing is ever written to disk here.
 */

export const BLOCK = 512;

export interface TarHeader {
  /** The entry name as stored (pax / GNU long names applied). */
  path: string;
  /** The `tar` package's type name: File, OldFile, Directory, SymbolicLink, Link, CharacterDevice… */
  type: string;
  /** Declared body size in bytes. */
  size: number;
  mode: number;
  linkpath: string | undefined;
}

export interface TarEntry {
  header: TarHeader;
  /** The body, streamed; entries not read are skipped by the reader. */
  body(): AsyncIterable<Buffer>;
}

export class TarFormatError extends Error {}

class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private chunks: Buffer[] = [];
  private length = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.chunks.push(b);
        this.length += b.length;
      }
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  /** Exactly n bytes, or undefined at a clean end of input; throws on a short read. */
  async read(n: number): Promise<Buffer | undefined> {
    await this.fill(n);
    if (this.length === 0 && this.done) return undefined;
    if (this.length < n) throw new TarFormatError('truncated archive');
    return this.take(n);
  }

  /** Up to n bytes, as they arrive, at most one source chunk at a time. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      await this.fill(1);
      if (this.length === 0) throw new TarFormatError('truncated archive');
      const out = this.take(Math.min(left, this.length));
      left -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }

  /** Stop reading the source (lets it release resources). */
  async close(): Promise<void> {
    this.done = true;
    await this.it.return?.();
  }
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

async function readAll(reader: ByteReader, size: number, limit: number, what: string): Promise<Buffer> {
  if (size > limit) throw new TarFormatError(`${what} of ${size} bytes is larger than ${limit}`);
  const body = size === 0 ? Buffer.alloc(0) : await reader.read(size);
  if (!body) throw new TarFormatError('truncated archive');
  await reader.skip(padded(size) - size);
  return body;
}

/**
 * Iterate the entries of an (uncompressed) tar stream. Pax extended headers and GNU long names
 * are folded into the following entry; the iteration ends at the first zero block or at the end
 * of input (data after the end marker is never read). Each entry's body must be consumed before
 * the next entry is requested, or it is skipped.
 */
export async function* readTar(
  source: AsyncIterable<Uint8Array>,
  opts: { maxMetaBytes?: number } = {},
): AsyncGenerator<TarEntry> {
  const maxMeta = opts.maxMetaBytes ?? 1024 * 1024;
  const reader = new ByteReader(source);
  let ex: Record<string, unknown> | undefined;
  let gex: Record<string, unknown> | undefined;
  try {
    for (;;) {
      const block = await reader.read(BLOCK);
      if (!block) return;
      if (block.every((b) => b === 0)) return;
      const h = new Header(block, 0, ex as never, gex as never);
      if (!h.cksumValid) throw new TarFormatError('bad header checksum (not a tar archive?)');
      const size = h.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`invalid entry size ${size}`);
      const type = h.type as string;
      if (type === 'ExtendedHeader' || type === 'GlobalExtendedHeader') {
        const body = await readAll(reader, size, maxMeta, 'pax header');
        const global = type === 'GlobalExtendedHeader';
        const pax = Pax.parse(body.toString('utf8'), (global ? gex : ex) as never, global);
        if (global) gex = { ...pax };
        else ex = { ...pax };
        continue;
      }
      if (type === 'NextFileHasLongPath' || type === 'NextFileHasLongLinkpath') {
        const body = await readAll(reader, size, maxMeta, 'GNU long name');
        const value = body.toString('utf8').replace(/\0+$/, '');
        ex = { ...(ex ?? {}), [type === 'NextFileHasLongPath' ? 'path' : 'linkpath']: value };
        continue;
      }
      ex = undefined;
      const header: TarHeader = {
        path: h.path ?? '',
        type,
        size,
        mode: h.mode ?? 0,
        linkpath: h.linkpath || undefined,
      };
      // Links and devices carry no body in practice; what a header declares is skipped anyway.
      let consumed = 0;
      let started = false;
      const entry: TarEntry = {
        header,
        body: () => {
          if (started) throw new Error('tar entry body can be read only once');
          started = true;
          return (async function* () {
            for await (const chunk of reader.stream(size)) {
              consumed += chunk.length;
              yield chunk;
            }
          })();
        },
      };
      yield entry;
      await reader.skip(size - consumed + (padded(size) - size));
    }
  } finally {
    await reader.close();
  }
}

/** What `encodeTarEntry` writes. Only what chart packing and tests need. */
export interface TarWriteEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  data?: Uint8Array;
  /** Declared size; defaults to data length. Tests use it to forge headers. */
  size?: number;
  mode?: number;
  mtime?: Date;
  linkpath?: string;
  devmaj?: number;
  devmin?: number;
}

/** One entry as tar blocks: [pax header,] header, body, padding. Deterministic (uid/gid 0, no names). */
export function encodeTarEntry(e: TarWriteEntry): Buffer {
  const data = e.data ?? new Uint8Array(0);
  const size = e.size ?? data.length;
  const type = e.type ?? 'File';
  const mtime = e.mtime ?? new Date(0);
  const h = new Header({
    path: e.path,
    mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
    uid: 0,
    gid: 0,
    size: type === 'File' ? size : 0,
    mtime,
    type,
    linkpath: e.linkpath ?? '',
    uname: '',
    gname: '',
    devmaj: e.devmaj ?? 0,
    devmin: e.devmin ?? 0,
  });
  const block = Buffer.alloc(BLOCK);
  const needPax = h.encode(block, 0);
  const parts: Buffer[] = [];
  if (needPax) {
    parts.push(new Pax({ path: e.path, linkpath: e.linkpath, mtime } as never).encode());
  }
  parts.push(block);
  if (type === 'File' && data.length > 0) {
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    const pad = padded(data.length) - data.length;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  return Buffer.concat(parts);
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** A whole tar in memory from entries (small archives: charts, test corpora). */
export function encodeTar(entries: readonly TarWriteEntry[]): Buffer {
  return Buffer.concat([...entries.map(encodeTarEntry), tarEnd()]);
}
