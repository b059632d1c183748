import { type FileHandle, open } from 'node:fs/promises';
import type { FileRange } from '../digest/index.ts';
import type { RandomAccessReader } from './tar-reader.ts';

/**
 * The local files holding a bundle's bytes — one tar, or the parts of a split bundle — taken as
 * their concatenation, with the sizes found when the bundle was opened: where a byte range of the
 * whole lies in the files, and positional reads of it. Unlike `openParts` it checks nothing about
 * part names or the parts checksum file; it reads exactly the files a source walks.
 */

export interface LocalFile {
  path: string;
  size: number;
}

/** One piece of a range of the whole: file `index`, bytes [start, start+length) of it. */
interface Piece {
  index: number;
  start: number;
  length: number;
}

function pieces(files: readonly LocalFile[], offset: number, length: number): Piece[] {
  const total = files.reduce((n, f) => n + f.size, 0);
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`invalid range [${offset}, +${length})`);
  }
  if (offset + length > total) {
    throw new RangeError(`range [${offset}, ${offset + length}) runs past the end (${total} bytes)`);
  }
  const out: Piece[] = [];
  let fileStart = 0;
  let pos = offset;
  const end = offset + length;
  for (const [index, f] of files.entries()) {
    if (pos >= end) break;
    const fileEnd = fileStart + f.size;
    if (pos < fileEnd && f.size > 0) {
      const n = Math.min(fileEnd, end) - pos;
      out.push({ index, start: pos - fileStart, length: n });
      pos += n;
    }
    fileStart = fileEnd;
  }
  return out;
}

/**
 * Where bytes [offset, offset+length) of the concatenated files are: one range per file they
 * touch, in order (a member of a split bundle can span two parts). Empty for length 0.
 */
export function localRanges(files: readonly LocalFile[], offset: number, length: number): FileRange[] {
  return pieces(files, offset, length).map((p) => ({
    path: (files[p.index] as LocalFile).path,
    start: p.start,
    length: p.length,
  }));
}

/**
 * Positional reads over the concatenated files (a `RandomAccessReader` for the tar walker).
 * A read returns fewer bytes than asked only where a file turns out shorter than its recorded
 * size (it shrank): the walker then reports the archive as truncated.
 */
export class LocalFilesReader implements RandomAccessReader {
  readonly size: number;
  private readonly files: readonly LocalFile[];
  private readonly handles = new Map<number, Promise<FileHandle>>();

  constructor(files: readonly LocalFile[]) {
    this.files = files;
    this.size = files.reduce((n, f) => n + f.size, 0);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    for (const p of pieces(this.files, offset, n)) {
      const fh = await this.handle(p.index);
      let done = 0;
      while (done < p.length) {
        const { bytesRead } = await fh.read(out, got, p.length - done, p.start + done);
        if (bytesRead === 0) return out.subarray(0, got);
        done += bytesRead;
        got += bytesRead;
      }
    }
    return out;
  }

  private handle(index: number): Promise<FileHandle> {
    let h = this.handles.get(index);
    if (!h) {
      h = open((this.files[index] as LocalFile).path, 'r');
      h.catch(() => this.handles.delete(index));
      this.handles.set(index, h);
    }
    return h;
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    for (const h of hs) await (await h.catch(() => undefined))?.close().catch(() => {});
  }
}
