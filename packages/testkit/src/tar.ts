/**
 * Minimal deterministic ustar writer for test layers: fixed mode, uid/gid 0, mtime 0, no user names.
 */

export interface TarLayerEntry {
  /** Relative path; directories end with '/'. */
  path: string;
  /** File content; omitted for directories. */
  content?: Buffer | string;
  mode?: number;
}

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A 512-byte ustar header for a regular file (type '0') or directory (type '5'). */
export function tarHeader(path: string, size: number, opts: { dir?: boolean; mode?: number } = {}): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tarHeader: path longer than 100 bytes: ${path}`);
  const h = Buffer.alloc(512, 0);
  h.write(path, 0, 100, 'utf8');
  h.write(octal(opts.mode ?? (opts.dir ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(opts.dir ? '5' : '0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Zero bytes that pad `size` bytes of content up to the next 512-byte block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512, 0);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(1024, 0);

/** A whole tar archive in memory (small layers only). */
export function makeTar(entries: TarLayerEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const dir = e.path.endsWith('/');
    const body = dir ? Buffer.alloc(0) : Buffer.from(e.content ?? '');
    parts.push(tarHeader(e.path, body.length, { dir, ...(e.mode !== undefined ? { mode: e.mode } : {}) }));
    if (!dir) parts.push(body, tarPadding(body.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}
