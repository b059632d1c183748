import { Header, Pax } from 'tar';

/**
 * The tar writer of chart archives (`helm package`'s layout): headers and pax records encoded by
 * the `tar` package. Chart archives are read by the one tar walker, `bundle/tar-reader.ts`.
 */

export const BLOCK = 512;

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
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
