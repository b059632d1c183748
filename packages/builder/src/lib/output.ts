import { lstat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { OutputExistsError, outputFile, partName, partsChecksumName } from '@lading/core';

/** `--output DIR|FILE`: a folder (existing, or written with a trailing `/`) gets `<name>-<version>.tar`. */
export async function resolveOutputPath(output: string, name: string, version: string): Promise<string> {
  return outputFile(output, `${name}-${version}.tar`);
}

/** The files a bundle at `path` would occupy (the file, or the first part and the parts file). */
export function outputTargets(path: string, splitSize: number | undefined): string[] {
  return splitSize === undefined ? [path] : [partName(path, 0), partsChecksumName(path)];
}

/** Refuse an existing output (before any download) unless `force`. */
export async function refuseExisting(
  path: string,
  splitSize: number | undefined,
  force: boolean,
): Promise<void> {
  if (force) return;
  for (const t of outputTargets(path, splitSize)) {
    if (
      await lstat(t).then(
        () => true,
        () => false,
      )
    )
      throw new OutputExistsError(t);
  }
}

/** The content cache: `--cache`, else $LADING_CACHE, else $XDG_CACHE_HOME/lading/content or ~/.cache/lading/content. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LADING_CACHE) return resolve(env.LADING_CACHE);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'lading', 'content');
}
