import { ExitCode, InvalidInputError, RemoteError } from '@lading/core';
import type { TagConflict } from './plan.ts';

/** `push` without `--key` and without `--skip-verify` (exit 2). */
export class UnverifiedPushError extends InvalidInputError {
  override readonly code = 'PUSH_UNVERIFIED';
  constructor(bundle: string) {
    super(`${bundle}: refusing to push a bundle that was not verified (no --key given)`, {
      hint: 'pass --key release.pub (the public key of whoever signed the bundle); --skip-verify pushes without checking, at your own risk',
    });
  }
}

/** A credential flag/env combination that cannot work (exit 2). */
export class PushCredentialsError extends InvalidInputError {
  override readonly code = 'PUSH_CREDENTIALS';
}

/**
 * A differential bundle leaves blobs out that the registry does not have (exit 2: nothing
 * remote failed; the operator must load the base bundle first). Nothing was pushed.
 */
export class BaseBundleMissingError extends InvalidInputError {
  override readonly code = 'BASE_BUNDLE_MISSING';
  readonly base: { name: string; version: string; digest: string };
  readonly missing: Array<{ digest: string; repositories: string[] }>;
  constructor(
    bundle: string,
    registry: string,
    base: { name: string; version: string; digest: string },
    missing: Array<{ digest: string; repositories: string[] }>,
  ) {
    const shown = missing
      .slice(0, 10)
      .map((m) => `${m.digest} (needed in ${m.repositories.join(', ')})`)
      .join('; ');
    super(
      `${bundle} is a differential bundle based on ${base.name} ${base.version}; ${missing.length} blob(s) it leaves out are not in ${registry}: ${shown}${missing.length > 10 ? '; …' : ''}. Nothing was pushed.`,
      {
        hint: `push the base bundle ${base.name} ${base.version} (SHA256SUMS ${base.digest}) to ${registry} first, with the same --registry prefix, then push this one again`,
      },
    );
    this.base = base;
    this.missing = missing;
  }
}

/** `--continue-on-error` finished with failures: exit 4 (3 when a failure was a verification one). */
export class PushIncompleteError extends RemoteError {
  override readonly code = 'PUSH_INCOMPLETE';
  override readonly exitCode: ExitCode;
  readonly failed: Array<{ source: string; target: string; error: string }>;
  constructor(
    failed: Array<{ source: string; target: string; error: string }>,
    total: number,
    verification: boolean,
  ) {
    super(
      `${failed.length} of ${total} image(s)/chart(s) failed to push:\n${failed
        .map((f) => `  ${f.source} → ${f.target}: ${f.error}`)
        .join('\n')}`,
      { hint: 'fix the cause and run the same push again: what is already in the registry is skipped' },
    );
    this.failed = failed;
    this.exitCode = verification ? ExitCode.verification : ExitCode.remote;
  }
}

/**
 * `push --on-existing-tag fail`: target tags point at other digests (exit 4, a remote refused by
 * policy). Found in the plan, before anything was written; every conflict is named.
 */
export class ExistingTagError extends RemoteError {
  override readonly code = 'EXISTING_TAG';
  readonly conflicts: TagConflict[];
  constructor(registry: string, conflicts: TagConflict[]) {
    const list = conflicts.map((c) => `${c.target} is ${c.existing}, the bundle has ${c.bundled}`).join('; ');
    super(
      `${conflicts.length} tag(s) in ${registry} already point at another digest: ${list}. Nothing was pushed.`,
      {
        hint: '--on-existing-tag overwrite moves them to the bundled digests, --on-existing-tag skip keeps them and pushes the rest; or push under another --registry prefix',
      },
    );
    this.conflicts = conflicts;
  }
}
