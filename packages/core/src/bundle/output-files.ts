import { randomBytes } from 'node:crypto';
import { type FileHandle, link, lstat, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidInputError } from '../errors/index.ts';

/**
 * The file steps of an atomic bundle output (PlacedOutput): pid-tagged temporary names beside
 * the final one, removal of temporaries a killed writer left, a no-clobber move into place, and a
 * directory fsync.
 */

export class OutputExistsError extends InvalidInputError {
  override readonly code = 'OUTPUT_EXISTS';
  readonly path: string;
  constructor(path: string) {
    super(`${path} already exists`, { hint: 'choose another output path, remove it, or pass --force' });
    this.path = path;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function tmpName(final: string): string {
  return join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove temporaries an earlier writer of this output left when it was killed (SIGKILL, power
 * loss): `.<name>[.NNN|.sha256].tmp-<pid>-<random>` whose process is gone.
 */
export async function removeStaleTemps(final: string): Promise<void> {
  const prefix = `.${basename(final)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(final));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      await rm(join(dirname(final), name), { force: true });
    }
  }
}

/** Move `tmp` to `final`; without `overwrite` fail when `final` exists (no check-then-rename race). */
export async function place(tmp: string, final: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(tmp, final);
    return;
  }
  try {
    await link(tmp, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new OutputExistsError(final);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // File systems without hard links (FAT/exFAT USB disks): check, then rename.
    if (await exists(final)) throw new OutputExistsError(final);
    await rename(tmp, final);
    return;
  }
  await rm(tmp, { force: true });
}

export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Best effort: some platforms cannot fsync a directory.
  } finally {
    await fh?.close().catch(() => {});
  }
}
