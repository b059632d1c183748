import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { formatBytes, InvalidInputError } from '@lading/core';

/** Free bytes (for an unprivileged user) on the file system holding `path` or its nearest existing parent. */
export async function freeBytes(path: string): Promise<number> {
  let p = resolve(path);
  for (;;) {
    try {
      const s = await statfs(p);
      return Number(s.bavail) * Number(s.bsize);
    } catch (err) {
      const parent = dirname(p);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw err;
      p = parent;
    }
  }
}

export class InsufficientSpaceError extends InvalidInputError {
  override readonly code = 'NO_SPACE';
  readonly path: string;
  readonly needed: number;
  readonly available: number;
  constructor(what: string, path: string, needed: number, available: number) {
    super(
      `not enough free space for the ${what} at ${path}: ${formatBytes(needed)} needed, ${formatBytes(available)} free`,
      {
        hint:
          what === 'bundle'
            ? 'free space there, write the bundle elsewhere (--output), or build a smaller one (--since OLD)'
            : 'free space there or point --cache (or LADING_CACHE) at a bigger disk',
      },
    );
    this.path = path;
    this.needed = needed;
    this.available = available;
  }
}

/** Throws InsufficientSpaceError when `needed` bytes (plus a 1% / 16 MiB margin) do not fit at `path`. */
export async function checkFreeSpace(
  what: string,
  path: string,
  needed: number,
  free: (p: string) => Promise<number> = freeBytes,
): Promise<void> {
  if (needed <= 0) return;
  const available = await free(path);
  const margin = Math.max(16 * 1024 * 1024, Math.ceil(needed / 100));
  if (available < needed + margin) throw new InsufficientSpaceError(what, path, needed, available);
}
