import type { KeyObject } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { partsChecksumSignatureName } from './format.ts';
import { sign, verifySignature } from './signing.ts';
import { formatSums, type SumsEntry } from './sums.ts';

/**
 * `NAME.tar.sha256` — the parts of a split bundle and the standalone loader beside a bundle, in
 * `sha256sum -c` format — and its signature `NAME.tar.sha256.sig`: the same key and DER format
 * as SHA256SUMS.sig, so `openssl dgst -sha256 -verify release.pub -signature NAME.tar.sha256.sig
 * NAME.tar.sha256 && sha256sum -c NAME.tar.sha256` authenticates the loader and every part.
 */

/**
 * Write the checksum file (and, with a key, its signature first) atomically. Without a key a
 * signature left by an earlier signed build of the same name is removed: it would not match.
 */
export async function writeChecksumFile(
  checksumFile: string,
  entries: readonly SumsEntry[],
  opts: { key?: KeyObject | undefined; overwrite: boolean },
): Promise<void> {
  const text = formatSums(entries, basename(checksumFile));
  const sigFile = partsChecksumSignatureName(checksumFile);
  if (opts.key) {
    await writeFileAtomic(sigFile, sign(text, opts.key), { overwrite: opts.overwrite });
  } else if (opts.overwrite) {
    await rm(sigFile, { force: true });
  }
  await writeFileAtomic(checksumFile, text, { overwrite: opts.overwrite });
}

/** What the signature check of a checksum file found. */
export type ChecksumSignature = 'ok' | 'bad' | 'missing';

/** Check `text` (the checksum file's bytes) against `NAME.tar.sha256.sig` beside it. */
export async function checkChecksumSignature(
  sig: Buffer | undefined,
  text: Buffer,
  key: KeyObject,
): Promise<ChecksumSignature> {
  if (sig === undefined) return 'missing';
  return sig.length > 0 && verifySignature(text, sig, key) ? 'ok' : 'bad';
}

/** The signature file's bytes, or undefined when it does not exist. */
export async function readChecksumSignature(checksumFile: string): Promise<Buffer | undefined> {
  try {
    return await readFile(partsChecksumSignatureName(checksumFile));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
