import { Member } from '../format.ts';
import { parseSums } from '../sums.ts';

/** Members not listed in a validly signed SHA256SUMS hashed before verify stops. */
export const MAX_UNLISTED = 1000;

/** What the gate says of the next member past the metadata. */
export type Admission =
  | { stop: false /** Listed in the signed SHA256SUMS (or a metadata member). */; listed: boolean }
  | { stop: true; kind: 'signature' | 'extra'; why: string };

/**
 * When hashing stops: nothing past the metadata is hashed unless the signature over SHA256SUMS
 * holds (a bundle that is unsigned, signed with another key or changed cannot make verify read,
 * or keep, anything more than its metadata), and no more than MAX_UNLISTED members the signed
 * SHA256SUMS does not list are hashed. Pure: fed the metadata members as the walk meets them.
 */
export class SignatureGate {
  private readonly verify: (sums: Buffer, sig: Buffer) => boolean;
  private readonly keyFingerprint: string;
  private readonly meta = new Map<string, Buffer>();
  private signature: 'pending' | 'ok' | 'bad' = 'pending';
  /** The member names SHA256SUMS lists, once its signature holds. */
  private sums: Set<string> | undefined;
  private unlisted = 0;

  constructor(verify: (sums: Buffer, sig: Buffer) => boolean, keyFingerprint: string) {
    this.verify = verify;
    this.keyFingerprint = keyFingerprint;
  }

  /** A metadata member met by the walk (its first occurrence), with its bytes. */
  addMetadata(name: string, data: Buffer): void {
    this.meta.set(name, data);
    const sums = this.meta.get(Member.sums);
    const sig = this.meta.get(Member.signature);
    if (this.signature !== 'pending' || !sums || !sig) return;
    this.signature = sig.length > 0 && this.verify(sums, sig) ? 'ok' : 'bad';
    if (this.signature === 'ok') {
      try {
        this.sums = new Set(parseSums(sums).map((x) => x.path));
      } catch {
        // reported with the SHA256SUMS checks
      }
    }
  }

  /** May the walk hash `name` (a member that is not metadata), and is it listed? */
  admit(name: string): Admission {
    if (this.signature !== 'ok') {
      const why =
        this.signature === 'bad'
          ? `the signature over ${Member.sums} does not verify with key ${this.keyFingerprint}`
          : !this.meta.has(Member.signature)
            ? `the bundle is not signed (no ${Member.signature} before its first blob)`
            : `${Member.sums} does not come before the first blob`;
      return { stop: true, kind: 'signature', why };
    }
    const listed = this.sums === undefined || this.sums.has(name);
    if (!listed && ++this.unlisted > MAX_UNLISTED) {
      return {
        stop: true,
        kind: 'extra',
        why: `more than ${MAX_UNLISTED} members are not listed in ${Member.sums}`,
      };
    }
    return { stop: false, listed };
  }
}
