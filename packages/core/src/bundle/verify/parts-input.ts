import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type ChecksumSignature, checkChecksumSignature, readChecksumSignature } from '../checksum-file.ts';
import { parsePartName, partsChecksumName } from '../format.ts';
import type { BundleSource } from '../source.ts';
import type { PartsInput } from './checks-parts.ts';

/** Read what the parts checks need: the parts present and the signed parts file. */
export async function readPartsInput(source: BundleSource, key: KeyObject): Promise<PartsInput> {
  const file = source.partsChecksumPath;
  const first = source.parts[0]?.name ?? basename(source.path);
  const stem = parsePartName(first)?.base ?? first.slice(0, -4);
  const onDisk = [...new Map([...source.parts, ...source.partsAfterGap].map((p) => [p.name, p])).keys()];
  const input: PartsInput = {
    stem,
    onDisk,
    checksumName: file ? basename(file) : undefined,
    text: undefined,
    signature: undefined,
  };
  if (!file) return input;
  try {
    input.text = source.readPartsChecksum ? await source.readPartsChecksum() : await readFile(file);
  } catch {
    input.text = undefined;
  }
  if (input.text === undefined) return input;
  let sig: Buffer | undefined;
  try {
    sig = await source.readPartsChecksumSignature?.();
  } catch {
    sig = undefined;
  }
  input.signature = await checkChecksumSignature(sig, input.text, key);
  return input;
}

/**
 * An unsplit local bundle with the standalone loader beside it: NAME.tar.sha256 lists both.
 * Its name and signature state, when the file is there.
 */
export async function readLoaderChecksum(
  source: BundleSource,
  key: KeyObject,
): Promise<{ name: string; signature: ChecksumSignature } | undefined> {
  const file = partsChecksumName(source.path);
  const text = await readFile(file).catch(() => undefined);
  if (text === undefined) return undefined;
  const sig = await readChecksumSignature(file).catch(() => undefined);
  return { name: basename(file), signature: await checkChecksumSignature(sig, text, key) };
}
