import { InvalidInputError, VerificationError } from '../../errors/index.ts';
import { Member } from '../format.ts';
import type { VerifyReport } from './report.ts';

/**
 * The bundle failed verification (exit 3): the root cause first, then each problem once. The one
 * error for it, in core and in both CLIs (`lading-load verify` throws it with its extended report).
 */
export class BundleVerificationError extends VerificationError {
  override readonly code = 'BUNDLE_VERIFICATION_FAILED';
  readonly report: VerifyReport;
  /** Every member with a problem, in report order. */
  readonly members: string[];
  constructor(report: VerifyReport) {
    const members = [...new Set(report.problems.map((p) => p.member))];
    const lines = report.problems.slice(0, 50).map((p) => `  ${p.member} (${p.kind}): ${p.message}`);
    if (report.problems.length > 50) lines.push(`  … and ${report.problems.length - 50} more`);
    if (!report.signature.ok && !report.problems.some((p) => p.kind === 'signature')) {
      lines.push(
        `  ${Member.signature} (signature): not verified with key ${report.signature.keyFingerprint}`,
      );
    }
    super(`${verifyFailureHeadline(report.bundle.path, report)}\n${lines.join('\n')}`, {
      hint: verifyFailureHint(report),
    });
    this.report = report;
    this.members = members;
  }
}

/**
 * The first line of a failed verification: the root cause when one explains the rest (a missing
 * part, an unsigned bundle, a signature that does not verify), then how many problems in all.
 */
export function verifyFailureHeadline(
  path: string,
  report: Pick<VerifyReport, 'problems' | 'signature' | 'parts'>,
): string {
  const { cause } = verifyFailureCause(report);
  const members = new Set(report.problems.map((p) => p.member)).size;
  const count = `${report.problems.length} problem(s) in ${members} member(s)`;
  return cause
    ? `${path} failed verification: ${cause} (${count} in all)`
    : `${path} failed verification: ${count}`;
}

/** The number of a part from its name (`NAME.tar.001` is part 2), for people. */
function partOrdinal(name: string): number | undefined {
  const m = /\.(\d{3,})$/.exec(name);
  return m ? Number(m[1]) + 1 : undefined;
}

/**
 * The root cause of a failed verification, when one explains the other problems, and the hint
 * for the error: a missing part of a split bundle, an unsigned bundle, a signature that does not
 * verify (wrong key, or changed after signing); else a change after signing.
 */
export function verifyFailureCause(report: Pick<VerifyReport, 'problems' | 'signature' | 'parts'>): {
  cause: string | undefined;
  hint: string;
} {
  const missing = report.parts.filter((p) => p.problems.some((x) => x.startsWith('missing')));
  if (missing.length > 0) {
    const total = report.parts.length;
    const one = missing[0]!.name;
    const n = partOrdinal(one);
    return {
      cause:
        missing.length === 1
          ? `${n === undefined ? 'part' : `part ${n} of ${total}`} (${one}) is missing`
          : `${missing.length} of the ${total} parts are missing (${missing.map((p) => p.name).join(', ')})`,
      hint: 'copy every part of the split bundle (NAME.tar.000, .001, … with NAME.tar.sha256 and its .sig) into one folder, then verify again',
    };
  }
  if (report.problems.some((p) => p.member === Member.signature && p.kind === 'missing')) {
    return {
      cause: `the bundle is not signed (no ${Member.signature})`,
      hint: 'the bundle is unsigned (built with --unsigned, or its SHA256SUMS.sig was removed): it cannot be verified; ask the release engineer for a signed bundle',
    };
  }
  if (!report.signature.ok) {
    return {
      cause: `the signature over ${Member.sums} does not verify`,
      hint: 'the signature does not verify: wrong public key (--key release.pub), or the bundle was changed after signing',
    };
  }
  return {
    cause: undefined,
    hint: 'the bundle was changed or damaged after it was signed; do not use it — get it again from a trusted source',
  };
}

/** The hint of a failed verification (see verifyFailureCause). */
export function verifyFailureHint(report: Pick<VerifyReport, 'problems' | 'signature' | 'parts'>): string {
  return verifyFailureCause(report).hint;
}

/** Throw BundleVerificationError unless the report is OK. */
export function assertVerified(report: VerifyReport): void {
  if (!report.ok) throw new BundleVerificationError(report);
}

/** The input holds neither SHA256SUMS nor lading.json: it is not a Lading bundle (exit 2). */
export class NotABundleError extends InvalidInputError {
  override readonly code: string = 'NOT_A_BUNDLE';
  readonly path: string;
  constructor(path: string, members: number) {
    super(
      `${path} is not a Lading bundle: ${members === 0 ? 'it holds no tar members' : `none of its ${members} member(s) is SHA256SUMS or lading.json`}`,
      {
        hint: 'give the bundle tar file (NAME.tar), the first part of a split bundle (NAME.tar.000), an extracted bundle directory or s3://bucket/NAME.tar',
      },
    );
    this.path = path;
  }
}
