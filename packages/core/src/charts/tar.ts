import { encodePackageHeader, padded, TAR_END_SIZE, type TarTypeName } from '../bundle/tar-header.ts';

/**
 * The tar writer of chart archives (`helm package`'s layout): headers as the `tar` package writes
 * them, from the one tar codec (`bundle/tar-header.ts`). Chart archives are read by the one tar
 * walker, `bundle/tar-reader.ts`.
 */

/** What `encodeTarEntry` writes. Only what chart packing and tests need. */
export interface TarWriteEntry {
  path: string;
  type?: TarTypeName;
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
  const type = e.type ?? 'File';
  const header = encodePackageHeader({
    path: e.path,
    type,
    size: type === 'File' ? (e.size ?? data.length) : 0,
    mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
    mtime: e.mtime ?? new Date(0),
    ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    ...(e.devmaj !== undefined ? { devmaj: e.devmaj } : {}),
    ...(e.devmin !== undefined ? { devmin: e.devmin } : {}),
  });
  if (type !== 'File' || data.length === 0) return header;
  return Buffer.concat([
    header,
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    Buffer.alloc(padded(data.length) - data.length),
  ]);
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Buffer {
  return Buffer.alloc(TAR_END_SIZE);
}

/** A whole tar in memory from entries (small archives: charts, test corpora). */
export function encodeTar(entries: readonly TarWriteEntry[]): Buffer {
  return Buffer.concat([...entries.map(encodeTarEntry), tarEnd()]);
}
