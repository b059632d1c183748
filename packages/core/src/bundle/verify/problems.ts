import type { ProblemKind, VerifyProblem } from './report.ts';

/** The member of the problem that says verification stopped before the end of the bundle. */
export const STOPPED_MEMBER = '(rest of the bundle)';

/** The problems of one verification, in the order found; the same problem twice is kept once. */
export class ProblemList {
  readonly list: VerifyProblem[] = [];
  private readonly seen = new Set<string>();
  add(member: string, kind: ProblemKind, message: string): void {
    const key = `${member}\0${kind}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push({ member, kind, message });
  }
  /** Whether `member` already has a problem (of `kind`, when given). */
  has(member: string, kind?: ProblemKind): boolean {
    return this.list.some((p) => p.member === member && (kind === undefined || p.kind === kind));
  }
  /** The problems of one member, as `kind: message`. */
  about(member: string): string[] {
    return this.list.filter((p) => p.member === member).map((p) => `${p.kind}: ${p.message}`);
  }
}
