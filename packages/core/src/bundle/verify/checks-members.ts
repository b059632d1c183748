import type { Digest } from '../../digest/index.ts';
import { Member } from '../format.ts';
import type { PartDigest } from '../source.ts';
import type { HashedMember, Observation } from './observations.ts';
import type { ProblemList } from './problems.ts';

/** A member as stored. */
export interface MemberInfo {
  name: string;
  hex: string;
  size: number;
  /** Index among regular-file members. */
  position: number;
}

/** What the members of the bundle are, from the hashing's observations. */
export interface MemberTable {
  /** The first member of each name. */
  members: Map<string, MemberInfo>;
  /** Later members of a name already seen. */
  duplicates: MemberInfo[];
  /** The metadata members' bytes. */
  meta: Map<string, Buffer>;
  /** Blobs whose content does not hash to the digest in their name. */
  badContent: Set<string>;
  /** The signature over SHA256SUMS holds (false when either is missing). */
  signatureOk: boolean;
}

function hexOf(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/**
 * Take the observations in stored order: record each member, check each blob against the digest
 * in its name, check the signature over SHA256SUMS as soon as both are in, pass each part hashed
 * whole to `onPart`, and add the problems the hashing found — all to `problems`, in that order.
 */
export function checkMembers(
  observations: readonly Observation[],
  verify: (sums: Buffer, sig: Buffer) => boolean,
  keyFingerprint: string,
  problems: ProblemList,
  onPart: (part: PartDigest) => void,
): MemberTable {
  const table: MemberTable = {
    members: new Map(),
    duplicates: [],
    meta: new Map(),
    badContent: new Set(),
    signatureOk: false,
  };
  let position = 0;
  let signatureChecked = false;
  const checkSignature = () => {
    const sums = table.meta.get(Member.sums);
    const sig = table.meta.get(Member.signature);
    if (signatureChecked || !sums || !sig) return;
    signatureChecked = true;
    table.signatureOk = sig.length > 0 && verify(sums, sig);
    if (!table.signatureOk) {
      problems.add(
        Member.signature,
        'signature',
        `the signature over ${Member.sums} does not verify with key ${keyFingerprint} (the bundle was changed after signing, or it was signed with another key)`,
      );
    }
  };
  const record = (m: HashedMember) => {
    const info: MemberInfo = { name: m.name, hex: m.hex, size: m.size, position };
    if (m.earlier !== undefined) {
      table.duplicates.push(info);
    } else {
      table.members.set(m.name, info);
      position++;
    }
    if (m.isMeta && m.earlier === undefined) {
      table.meta.set(m.name, m.data ?? Buffer.alloc(0));
      checkSignature();
    }
    if (m.blobDigest && (m.namedHex ?? m.hex) !== hexOf(m.blobDigest)) {
      table.badContent.add(m.name);
      problems.add(m.name, 'digest', `content hashes to ${m.namedHex ?? m.hex}, not the digest in its name`);
    }
  };
  for (const o of observations) {
    if (o.type === 'member') record(o.member);
    else if (o.type === 'problem') problems.add(o.member, o.kind, o.message);
    else onPart(o.part);
  }
  return table;
}
