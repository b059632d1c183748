import { Header } from 'tar';

/**
 * Minimal deterministic ustar writer for test layers: fixed mode, uid/gid 0, mtime 0, no user
 * names. Headers are encoded by the `tar` package's `Header`, in the dialect of core's one codec
 * (`bundle/tar-header.ts`, `encodePackageHeader`): testkit cannot depend on core, whose tests
 * depend on testkit. The block layout is ours.
 */

export interface TarLayerEntry {
  /** Relative path; directories end with '/'. */
  path: string;
  /** File content; omitted for directories. */
  content?: Buffer | string;
  mode?: number;
}

/** A 512-byte ustar header for a regular file (type '0') or directory (type '5'), encoded by `tar`. */
export function tarHeader(path: string, size: number, opts: { dir?: boolean; mode?: number } = {}): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tarHeader: path longer than 100 bytes: ${path}`);
  const h = new Header({
    path,
    mode: opts.mode ?? (opts.dir ? 0o755 : 0o644),
    uid: 0,
    gid: 0,
    size,
    mtime: new Date(0),
    type: opts.dir ? 'Directory' : 'File',
    uname: '',
    gname: '',
  });
  const block = Buffer.alloc(512);
  if (h.encode(block, 0)) throw new Error(`tarHeader: ${path} needs a pax header`);
  return block;
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
