import { createHash, type KeyObject } from 'node:crypto';
import { digestOfBlobMember, Member, verifySignature } from '@lading/core';

/**
 * What is wrong with the base of a differential bundle (`--since OLD`), as far as it can be told
 * without hashing its blobs: its metadata against its SHA256SUMS, its members against the list,
 * and — when the build signs — its signature against the release key. `create` warns with these
 * and goes on (docs/DECISIONS.md, "--since on a base that does not check out"): only the base's
 * blob names are used, and `lading-load push` stops, naming the base, when a blob left out is not
 * at the registry.
 */
export interface BaseContents {
  /** SHA256SUMS: member → sha256 hex. */
  sums: ReadonlyMap<string, string>;
  sumsBytes: Buffer;
  /** SHA256SUMS.sig; undefined when the base has none (unsigned, or lading.json given alone). */
  signature: Buffer | undefined;
  /** The metadata members read (lading.json, index.json) and their bytes. */
  metadata: ReadonlyArray<[string, Buffer]>;
  /** Every member name, when the bundle itself was read (not for a lading.json given alone). */
  members?: Iterable<string>;
}

const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function firsts(names: string[]): string {
  return `${names.slice(0, 3).join(', ')}${names.length > 3 ? `, … (${names.length})` : ''}`;
}

export function baseProblems(base: BaseContents, key?: KeyObject): string[] {
  const problems: string[] = [];
  for (const [name, bytes] of base.metadata) {
    const want = base.sums.get(name);
    if (want === undefined) problems.push(`${Member.sums} does not list ${name}`);
    else if (want !== hex(bytes)) problems.push(`${name} does not match its ${Member.sums} line`);
  }
  if (base.members) {
    const names = new Set(base.members);
    const missing = [...base.sums.keys()].filter((n) => !names.has(n));
    if (missing.length > 0) problems.push(`members ${Member.sums} lists are missing: ${firsts(missing)}`);
    const unlisted = [...names].filter((n) => digestOfBlobMember(n) !== undefined && !base.sums.has(n));
    if (unlisted.length > 0) problems.push(`blobs ${Member.sums} does not list: ${firsts(unlisted)}`);
  }
  if (key) {
    if (!base.signature || base.signature.length === 0) {
      if (base.members) problems.push('it is unsigned');
    } else if (!verifySignature(base.sumsBytes, base.signature, key)) {
      problems.push(
        'its signature does not verify with the public half of --key (signed with another key, or changed after signing)',
      );
    }
  }
  return problems;
}
