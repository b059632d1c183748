import { VerificationError } from '../errors/index.ts';
import type { TarHeader } from './tar-reader.ts';

/**
 * Member checks for bundles. A bundle holds plain files (and, in archives made by hand from an
 * extracted bundle, directories) with relative names; anything else is refused before its data is
 * used: path traversal, absolute paths, links, devices, FIFOs, names with NUL, control characters
 * or backslashes, and duplicates (also ones that differ only in case).
 */

/** A member a bundle must not contain (exit 3). */
export class UnsafeTarEntryError extends VerificationError {
  override readonly code = 'UNSAFE_TAR_ENTRY';
  readonly member: string;
  constructor(source: string, member: string, reason: string) {
    super(`${source}: unsafe member ${JSON.stringify(member)}: ${reason}`, {
      hint: 'a bundle holds only plain files with relative names; this archive was not written by Lading or was tampered with',
    });
    this.member = member;
  }
}

/** The longest member name accepted. */
export const MAX_MEMBER_NAME = 4096;

/**
 * The canonical name of a member: a leading `./` is dropped (GNU tar writes it when archiving
 * `.`), a directory's trailing `/` too. No other rewriting: unsafe names stay unsafe.
 */
export function normalizeMemberName(name: string): string {
  let n = name;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.length > 1 && n.endsWith('/')) n = n.slice(0, -1);
  return n;
}

/** Why a member name is unsafe, or undefined when it is fine. */
export function memberNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (name.length > MAX_MEMBER_NAME) return `name longer than ${MAX_MEMBER_NAME} characters`;
  if (name.includes('\0')) return 'name contains a NUL byte';
  if (name.includes('\\')) return 'name contains a backslash';
  if (name.includes('\uFFFD')) return 'name is not valid UTF-8';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we look for
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'name contains a control character';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[a-zA-Z]:/.test(name)) return 'absolute path (drive letter)';
  const n = normalizeMemberName(name);
  if (n === '.' || n === '') return 'names the archive root';
  for (const part of n.split('/')) {
    if (part === '..') return 'path traversal (".." component)';
    if (part === '.') return 'a "." component inside the path';
    if (part === '') return 'an empty path component ("//")';
  }
  return undefined;
}

/** Why a tar entry is unsafe (its type or its name), or undefined when it is fine. */
export function entryProblem(
  entry: Pick<TarHeader, 'name' | 'type' | 'typeflag' | 'linkname'> & { size?: number },
): string | undefined {
  const nameProblem = memberNameProblem(entry.name);
  if (nameProblem) return nameProblem;
  switch (entry.type) {
    case 'file':
      return undefined;
    case 'directory':
      // A type-0 header named `x/` with data: GNU tar extracts a file, we would see a directory.
      return (entry.size ?? 0) > 0
        ? `a file member (type ${JSON.stringify(entry.typeflag)}) whose name ends in "/" and holds ${entry.size} bytes: tar reads it as a file, not a directory`
        : undefined;
    case 'symlink':
      return `symbolic link to ${JSON.stringify(entry.linkname)}`;
    case 'hardlink':
      return `hard link to ${JSON.stringify(entry.linkname)}`;
    case 'char-device':
      return 'character device';
    case 'block-device':
      return 'block device';
    case 'fifo':
      return 'FIFO (named pipe)';
    default:
      return `unsupported tar entry type ${JSON.stringify(entry.typeflag)}`;
  }
}

/** Throw UnsafeTarEntryError when the entry is unsafe. */
export function assertSafeEntry(
  entry: Pick<TarHeader, 'name' | 'type' | 'typeflag' | 'linkname'>,
  source = 'bundle',
): void {
  const problem = entryProblem(entry);
  if (problem) throw new UnsafeTarEntryError(source, entry.name, problem);
}

/**
 * Tracks member names to find duplicates: the same name twice, or two names that differ only in
 * case (they would overwrite each other when extracted on a case-insensitive file system).
 */
export class DuplicateTracker {
  private readonly exact = new Set<string>();
  private readonly folded = new Map<string, string>();

  /** Record a (normalised) name; returns the earlier name it collides with, if any. */
  add(name: string): string | undefined {
    if (this.exact.has(name)) return name;
    const key = name.toLowerCase();
    const earlier = this.folded.get(key);
    this.exact.add(name);
    if (earlier !== undefined) return earlier;
    this.folded.set(key, name);
    return undefined;
  }
}
