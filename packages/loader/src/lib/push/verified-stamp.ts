import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, realpath, stat, statfs } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { openParts, writeFileAtomic } from '@lading/core';

/**
 * A record that a local bundle passed the full verification: which files (by device, inode,
 * size, mtime and ctime — the kernel moves ctime on every write, and no user can set it back),
 * which key, which SHA256SUMS. `push` skips the full hashing pass when the stamp still matches,
 * like git's index trusts unchanged stat data; it still checks the signature and the metadata,
 * and every blob it sends is hashed again as it streams. `verify` never uses it.
 */
export interface VerifiedStamp {
  files: Array<{ path: string; dev: number; ino: number; size: number; mtimeNs: string; ctimeNs: string }>;
  keyFingerprint: string;
  sumsDigest: string;
}

/** Where stamps live: $LADING_STATE_DIR, else $XDG_STATE_HOME/lading, else ~/.local/state/lading. */
export function stampDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LADING_STATE_DIR) return join(env.LADING_STATE_DIR, 'verified');
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'lading', 'verified');
}

/** The stat identity of a local bundle's files (tar or parts); undefined for anything else. */
export async function bundleFiles(bundle: string): Promise<VerifiedStamp['files'] | undefined> {
  let paths: readonly string[];
  try {
    const parts = await openParts(bundle);
    paths = parts.paths;
    await parts.close();
  } catch {
    return undefined; // a directory, s3://, or unreadable: no stamp
  }
  const out: VerifiedStamp['files'] = [];
  for (const p of paths) {
    const s = await stat(p, { bigint: true });
    out.push({
      path: await realpath(p),
      dev: Number(s.dev),
      ino: Number(s.ino),
      size: Number(s.size),
      mtimeNs: s.mtimeNs.toString(),
      ctimeNs: s.ctimeNs.toString(),
    });
  }
  return out;
}

/** statfs magic numbers of file systems whose stat identity a writer can reset (no real ctime or inode). */
const UNSAFE_FS: ReadonlyMap<number, string> = new Map([
  [0x4d44, 'FAT'], // MSDOS_SUPER_MAGIC (vfat, msdos)
  [0x2011bab0, 'exFAT'],
]);

/**
 * Why stamps cannot be trusted here, or undefined when they can: the state folder (or a stamp in
 * it) is not owned by this user or is writable by others (anyone could forge a stamp), or a bundle
 * file lives on FAT/exFAT (no ctime, unstable inodes: a rewritten file can look unchanged).
 */
export async function stampProblem(
  files: VerifiedStamp['files'] | undefined,
  dir = stampDir(),
): Promise<string | undefined> {
  const uid = process.getuid?.();
  const st = await lstat(dir).catch(() => undefined); // not there yet: made with mode 0700
  if (st) {
    if (!st.isDirectory()) return `${dir} is not a directory`;
    if (uid !== undefined && st.uid !== uid)
      return `${dir} is owned by uid ${st.uid}, not by this user (${uid})`;
    if ((st.mode & 0o022) !== 0)
      return `${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  }
  for (const f of files ?? []) {
    try {
      const type = UNSAFE_FS.get(Number((await statfs(f.path)).type));
      if (type) return `${f.path} is on ${type}, whose file identity cannot show a rewrite`;
    } catch {
      return `cannot tell the file system of ${f.path}`;
    }
  }
  return undefined;
}

function stampFile(files: VerifiedStamp['files'], keyFingerprint: string, dir: string): string {
  const id = createHash('sha256')
    .update(JSON.stringify([files.map((f) => f.path), keyFingerprint]))
    .digest('hex');
  return join(dir, `${id}.json`);
}

/** Whether a stamp for exactly these files (unchanged), this key and these sums exists. */
export async function hasVerifiedStamp(
  files: VerifiedStamp['files'],
  keyFingerprint: string,
  sumsDigest: string,
  dir = stampDir(),
): Promise<boolean> {
  if (await stampProblem(files, dir)) return false;
  try {
    const file = stampFile(files, keyFingerprint, dir);
    const st = await lstat(file);
    const uid = process.getuid?.();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) return false;
    const s = JSON.parse(await readFile(file, 'utf8')) as VerifiedStamp;
    return (
      s.keyFingerprint === keyFingerprint &&
      s.sumsDigest === sumsDigest &&
      JSON.stringify(s.files) === JSON.stringify(files)
    );
  } catch {
    return false;
  }
}

/** Record a successful full verification (atomically; failures to write are not fatal). */
export async function writeVerifiedStamp(stamp: VerifiedStamp, dir = stampDir()): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (await stampProblem(stamp.files, dir)) return;
    const file = stampFile(stamp.files, stamp.keyFingerprint, dir);
    await writeFileAtomic(file, JSON.stringify(stamp), { mode: 0o600 });
  } catch {
    // A read-only home only costs the next push a full verification.
  }
}
