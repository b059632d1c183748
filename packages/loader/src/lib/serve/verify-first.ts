import {
  assertVerified,
  type BundleInput,
  InvalidInputError,
  type VerifyReport,
  verifyBundle,
} from '@lading/core';

/** Neither --key nor --skip-verify: the loader never trusts a bundle silently. */
export class VerifyKeyRequiredError extends InvalidInputError {
  override readonly code = 'KEY_REQUIRED';
}

/**
 * Verify a bundle before using it (serve, install): throws BundleVerificationError (exit 3)
 * when it fails; returns undefined when the user skipped verification explicitly.
 */
export async function verifyBeforeUse(
  bundle: BundleInput,
  opts: { key?: string; skipVerify?: boolean; command: string; signal?: AbortSignal },
): Promise<VerifyReport | undefined> {
  if (opts.skipVerify) return undefined;
  if (!opts.key) {
    throw new VerifyKeyRequiredError(
      `${opts.command} verifies the bundle first and needs the release public key`,
      {
        hint: 'give --key release.pub, or --skip-verify to use an unverified bundle at your own risk',
      },
    );
  }
  const report = await verifyBundle(bundle, {
    publicKey: opts.key,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  assertVerified(report);
  return report;
}
