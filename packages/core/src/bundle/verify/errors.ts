import { InvalidInputError, VerificationError } from '../../errors/index.ts';
import { Member } from '../format.ts';
import type { VerifyReport } from './report.ts';

/** The bundle failed verification (exit 3); names every bad member. */
export class BundleVerificationError extends VerificationError {
  override readonly code = 'BUNDLE_VERIFICATION_FAILED';
  readonly report: VerifyReport;
  /** Every member with a problem, in report order. */
  readonly members: string[];
  constructor(report: VerifyReport) {
    const members = [...new Set(report.problems.map((p) => p.member))];
    const lines = report.problems.slice(0, 50).map((p) => `  ${p.member} (${p.kind}): ${p.message}`);
    if (report.problems.length > 50) lines.push(`  … and ${report.problems.length - 50} more`);
    super(
      `${report.bundle.path} failed verification: ${report.problems.length} problem(s) in ${members.length} member(s): ${members.slice(0, 20).join(', ')}${members.length > 20 ? ', …' : ''}\n${lines.join('\n')}`,
      {
        hint: verifyFailureHint(report),
      },
    );
    this.report = report;
    this.members = members;
  }
}

/**
 * The likeliest cause of a failed verification, for the error's hint: a missing part of a split
 * bundle, an unsigned bundle, a signature that does not verify (wrong key, or changed after
 * signing), or a change after signing.
 */
export function verifyFailureHint(report: Pick<VerifyReport, 'problems' | 'signature' | 'parts'>): string {
  const missingPart = report.parts.find((p) => p.problems.some((x) => x.startsWith('missing')));
  if (missingPart) {
    return `part ${missingPart.name} of ${report.parts.length} is missing — copy every part of the split bundle (and NAME.tar.sha256 with its .sig) into one folder`;
  }
  if (report.problems.some((p) => p.member === Member.signature && p.kind === 'missing')) {
    return 'the bundle is unsigned (built with --unsigned, or its SHA256SUMS.sig was removed): it cannot be verified; ask the release engineer for a signed bundle';
  }
  if (!report.signature.ok) {
    return 'the signature does not verify: wrong public key (--key release.pub), or the bundle was changed after signing';
  }
  return 'the bundle was changed or damaged after it was signed; do not use it — get it again from a trusted source';
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
