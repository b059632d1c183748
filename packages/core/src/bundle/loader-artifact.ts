import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError, throwIfAborted } from '../errors/index.ts';
import { openAtomic } from '../util/atomic-file.ts';
import { writeChecksumFile } from './checksum-file.ts';
import { parsePartName, partsChecksumName } from './format.ts';
import { parseSums, type SumsEntry } from './sums.ts';

/**
 * The standalone loader beside a bundle (`lading-build create --with-loader`): the single
 * executable `lading-load` that scripts/build-loader makes is copied next to the bundle as
 * `lading-load-linux-x64`, and its sha256 goes into the bundle's checksum file `NAME.tar.sha256`
 * (coreutils format) — the parts file of a split bundle, or a new file over `NAME.tar` and the
 * loader for an unsplit one — so the operator checks both with `sha256sum -c NAME.tar.sha256`.
 */

/** File name of the standalone loader beside a bundle. */
export const STANDALONE_LOADER_NAME = 'lading-load-linux-x64';
/** Environment variable naming the standalone loader to copy when no path is given. */
export const LOADER_BINARY_ENV = 'LADING_LOADER_BINARY';
/** Where scripts/build-loader puts it, relative to the repository root. */
export const STANDALONE_LOADER_BUILD_PATH = join('dist', 'standalone', STANDALONE_LOADER_NAME);
/**
 * Node's SEA fuse, flipped to `…:1` in an executable that has a blob injected. Assembled at run
 * time: the fuse must occur exactly once in an executable, and this module is itself bundled into
 * the standalone loader (postject refuses a binary whose blob holds a second copy).
 */
const SEA_FUSE_INJECTED = Buffer.from(
  `${['NODE', 'SEA', 'FUSE', 'fce680ab2cc467b6e072b8b5df1996b2'].join('_')}:1`,
);

export class LoaderBinaryError extends InvalidInputError {
  override readonly code = 'LOADER_BINARY_INVALID';
  readonly path: string | undefined;
  constructor(path: string | undefined, reason: string) {
    super(path === undefined ? reason : `standalone loader ${path}: ${reason}`, {
      hint: `build it with scripts/build-loader (→ ${STANDALONE_LOADER_BUILD_PATH}), or name one with --loader-binary PATH or ${LOADER_BINARY_ENV}`,
    });
    this.path = path;
  }
}

export interface FindStandaloneLoaderOptions {
  /** An explicit path (`--with-loader PATH`); wins over everything else. */
  source?: string;
  /** Environment to read `LADING_LOADER_BINARY` from. Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Folders to search upwards from for `dist/standalone/lading-load-linux-x64`. Default: the
   * current directory and the folder of this module (so a repository checkout finds its build).
   */
  searchFrom?: string[];
}

async function isFile(p: string): Promise<boolean> {
  return stat(p)
    .then((s) => s.isFile())
    .catch(() => false);
}

function moduleDir(): string | undefined {
  try {
    const url = (import.meta as { url?: string }).url;
    return typeof url === 'string' && url.startsWith('file:') ? dirname(fileURLToPath(url)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the standalone loader is: `source`, else `$LADING_LOADER_BINARY`, else
 * `dist/standalone/lading-load-linux-x64` in the nearest folder upwards of `searchFrom` that has
 * one. Throws LoaderBinaryError (exit 2) when none is found or the named file does not exist.
 */
export async function findStandaloneLoader(opts: FindStandaloneLoaderOptions = {}): Promise<string> {
  const named = opts.source ?? (opts.env ?? process.env)[LOADER_BINARY_ENV];
  if (named !== undefined && named !== '') {
    const p = resolve(named);
    if (!(await isFile(p))) {
      throw new LoaderBinaryError(
        p,
        opts.source !== undefined ? 'no such file' : `no such file (from ${LOADER_BINARY_ENV})`,
      );
    }
    return p;
  }
  const starts = opts.searchFrom ?? [process.cwd(), ...(moduleDir() ? [moduleDir() as string] : [])];
  const tried: string[] = [];
  for (const start of starts) {
    let dir = resolve(start);
    for (;;) {
      const candidate = join(dir, STANDALONE_LOADER_BUILD_PATH);
      if (!tried.includes(candidate)) {
        tried.push(candidate);
        if (await isFile(candidate)) return candidate;
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new LoaderBinaryError(
    undefined,
    `no standalone loader found (looked for ${STANDALONE_LOADER_BUILD_PATH} above ${starts.join(', ')})`,
  );
}

/** The bundle a loader goes beside: a path, or what `writeBundle` returned. */
export type LoaderBundleInput =
  | string
  | {
      /** The bundle path (for split output, the name the parts are derived from: `NAME.tar`). */
      path: string;
      /** The bundle file, or its parts in order. */
      files: readonly string[];
      /** `NAME.tar.sha256` of a split bundle. */
      checksumFile?: string;
      /** sha256 of the whole tar (`sha256:<hex>`); for an unsplit bundle, the file's sha256. */
      digest?: string;
    };

export interface CopyStandaloneLoaderOptions extends FindStandaloneLoaderOptions {
  signal?: AbortSignal;
  /** Sign the rewritten `NAME.tar.sha256` (`NAME.tar.sha256.sig`); without it no signature is left. */
  key?: KeyObject;
}

export interface StandaloneLoaderCopy {
  /** `DIR/lading-load-linux-x64`, beside the bundle. */
  path: string;
  /** Where it was copied from. */
  source: string;
  /** Lowercase hex sha256 of the executable. */
  sha256: string;
  size: number;
  /** The checksum file now listing it: `NAME.tar.sha256`. */
  checksumFile: string;
  /** Every line of the checksum file, in order. */
  entries: SumsEntry[];
}

/** `NAME.tar` for `NAME.tar.000`; the path itself otherwise. */
function bundleBase(path: string): string {
  return parsePartName(path)?.base ?? path;
}

async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Copy the standalone loader (see `findStandaloneLoader` for where it comes from) beside the
 * bundle as `lading-load-linux-x64`, atomically (temporary name in the same folder, then rename;
 * mode 0755), and list it in `NAME.tar.sha256`:
 * - split bundle: the parts file gets one more line (a loader line from an earlier run is
 *   replaced); its part lines stay as they are;
 * - unsplit bundle: `NAME.tar.sha256` is written with two lines, the bundle file and the loader
 *   (the bundle's sha256 is `bundle.digest` when given, else read from the file).
 * The source must be an ELF executable with a Node SEA blob injected (LoaderBinaryError, exit 2).
 * `sha256sum -c NAME.tar.sha256` in the bundle's folder then checks the bundle and the loader.
 */
export async function copyStandaloneLoader(
  bundle: LoaderBundleInput,
  opts: CopyStandaloneLoaderOptions = {},
): Promise<StandaloneLoaderCopy> {
  const signal = opts.signal;
  throwIfAborted(signal);
  const source = await findStandaloneLoader(opts);
  const base = bundleBase(typeof bundle === 'string' ? bundle : bundle.path);
  const dir = dirname(base);
  const dest = join(dir, STANDALONE_LOADER_NAME);
  if (resolve(source) === resolve(dest)) {
    throw new LoaderBinaryError(source, 'is already where the copy would go; name the built one instead');
  }

  // Copy to a temporary name, hashing and checking it on the way.
  const out = await openAtomic(dest, { mode: 0o755 });
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  let sea = false;
  let tail = Buffer.alloc(0);
  try {
    for await (const chunk of createReadStream(source, signal ? { signal } : {})) {
      const b = chunk as Buffer;
      hash.update(b);
      size += b.length;
      if (head.length < 20) head = Buffer.concat([head, b.subarray(0, 20 - head.length)]);
      if (!sea) {
        const window = Buffer.concat([tail, b]);
        sea = window.includes(SEA_FUSE_INJECTED);
        tail = window.subarray(Math.max(0, window.length - SEA_FUSE_INJECTED.length + 1));
      }
      await out.handle.write(b);
    }
    // ELF magic, 64-bit, little-endian, e_machine EM_X86_64 (0x3e).
    const elf = head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46 && head[4] === 2 && head[5] === 1;
    if (!elf || head.readUInt16LE(18) !== 0x3e) {
      throw new LoaderBinaryError(source, 'is not a linux-x64 ELF executable');
    }
    if (!sea) {
      throw new LoaderBinaryError(
        source,
        'is a plain executable without an injected lading-load (no Node SEA blob)',
      );
    }
    await out.handle.chmod(0o755);
    throwIfAborted(signal);
    await out.commit();
  } catch (err) {
    await out.discard();
    throw err;
  }
  const sha256 = hash.digest('hex');

  // The checksum file.
  const checksumFile =
    typeof bundle !== 'string' && bundle.checksumFile ? bundle.checksumFile : partsChecksumName(base);
  const sumsName = basename(checksumFile);
  let existing: SumsEntry[] | undefined;
  try {
    existing = parseSums(await readFile(checksumFile), sumsName).map(({ path, hex }) => ({ path, hex }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const split =
    typeof bundle !== 'string'
      ? bundle.files.length !== 1 || resolve(bundle.files[0] as string) !== resolve(base)
      : !(await isFile(base));
  let entries: SumsEntry[];
  if (split) {
    if (!existing) {
      throw new LoaderBinaryError(
        undefined,
        `${checksumFile}: the split bundle's parts checksum file is missing`,
      );
    }
    entries = existing.filter((e) => e.path !== STANDALONE_LOADER_NAME);
  } else {
    const given = typeof bundle !== 'string' ? bundle.digest : undefined;
    const hex = given?.startsWith('sha256:') ? given.slice('sha256:'.length) : await sha256File(base, signal);
    entries = [{ path: basename(base), hex }];
  }
  entries.push({ path: STANDALONE_LOADER_NAME, hex: sha256 });
  await writeChecksumFile(checksumFile, entries, { key: opts.key, overwrite: true });
  return { path: dest, source, sha256, size, checksumFile, entries };
}
