import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** `<base>_<random>`: a name no other writer (thread or process) will pick. */
export function tempName(dir: string, base: string): string {
  return path.join(dir, `${base}_${randomBytes(12).toString('hex')}`);
}

/** Flush a directory entry to disk (best effort: some file systems refuse). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort: the rename already took effect
  }
}

/**
 * Write a small file atomically: a temporary file in the same directory, flushed, renamed over
 * the target. A failure leaves the old file untouched and no temporary file behind.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = tempName(dir, `.${path.basename(file)}`);
  try {
    await writeFile(tmp, data, { flag: 'wx', flush: true, mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

/** A promise-chain mutex: runs critical sections one after another. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
