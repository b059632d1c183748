import { randomBytes } from 'node:crypto';
import { type FileHandle, link, lstat, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InvalidInputError } from '../errors/index.ts';

/**
 * The one atomic write of the project: a pid-tagged temporary name beside the final one, written
 * and fsynced, moved into place (rename, or a no-clobber link), then the directory fsynced.
 * `writeFileAtomic` does it for data in memory, `openAtomic` for a file written piece by piece;
 * bundle outputs (PlacedOutput) use the steps directly, with removal of temporaries a killed
 * writer left.
 */

export class OutputExistsError extends InvalidInputError {
  override readonly code = 'OUTPUT_EXISTS';
  readonly path: string;
  constructor(path: string) {
    super(`${path} already exists`, { hint: 'choose another output path, remove it, or pass --force' });
    this.path = path;
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The file an `--output` names, resolved: `output` itself, or `name` inside it when it is a folder
 * (an existing one, or written with a trailing `/`).
 */
export async function outputFile(output: string, name: string): Promise<string> {
  const st = await stat(output).catch(() => undefined);
  return st?.isDirectory() || output.endsWith('/') ? resolve(output, name) : resolve(output);
}

/** `.<name>.tmp-<pid>-<random>` beside `final`. */
export function tmpName(final: string): string {
  return join(dirname(final), `.${basename(final)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Whether a process with this id is running (ours or another user's). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove temporaries an earlier writer of this output left when it was killed (SIGKILL, power
 * loss): `.<name>[.NNN|.sha256|.journal].tmp-<pid>-<random>` whose process is gone, except `keep`
 * (the ones a new writer reads from: see bundle/unfinished.ts).
 */
export async function removeStaleTemps(final: string, keep: ReadonlySet<string> = new Set()): Promise<void> {
  const prefix = `.${basename(final)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(final));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || keep.has(join(dirname(final), name))) continue;
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
    if (await pathExists(final)) throw new OutputExistsError(final);
    await rename(tmp, final);
    return;
  }
  await rm(tmp, { force: true });
}

/** Flush a directory entry to disk (best effort: some file systems refuse). */
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

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644, less the umask). */
  mode?: number;
  /** Replace an existing file (default true); false fails with OutputExistsError instead. */
  overwrite?: boolean;
}

/**
 * Write `data` to `file` atomically and durably: temporary file, fsync, rename (or no-clobber
 * link), fsync of the folder. A failure leaves the old file untouched and no temporary behind.
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tmpName(file);
  try {
    await writeFile(tmp, data, { flag: 'wx', flush: true, mode: opts.mode ?? 0o644 });
    await place(tmp, file, opts.overwrite ?? true);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(file));
}

/** A file being written under a temporary name; `commit` makes it durable and moves it into place. */
export interface AtomicFile {
  /** The temporary path. */
  readonly tmp: string;
  readonly handle: FileHandle;
  /** fsync, close, move into place, fsync the folder. */
  commit(): Promise<void>;
  /** Close and remove the temporary file (safe after a failed commit). */
  discard(): Promise<void>;
}

/** Open a temporary file beside `file` for `openAtomic(…).commit()` to put in its place. */
export async function openAtomic(
  file: string,
  opts: AtomicWriteOptions & { flags?: string } = {},
): Promise<AtomicFile> {
  const tmp = tmpName(file);
  const handle = await open(tmp, opts.flags ?? 'wx', opts.mode ?? 0o644);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    tmp,
    handle,
    async commit() {
      await handle.sync();
      await close();
      await place(tmp, file, opts.overwrite ?? true);
      await syncDir(dirname(file));
    },
    async discard() {
      await close().catch(() => {});
      await rm(tmp, { force: true });
    },
  };
}
