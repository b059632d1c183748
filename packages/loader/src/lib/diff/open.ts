import {
  assertVerified,
  type Bundle,
  digestOfBlobMember,
  MAX_METADATA_BYTES,
  openBundle,
  verifyBundle,
} from '@lading/core/bundle';
import { digestOf } from '@lading/core/digest';
import { VerificationError } from '@lading/core/errors';
import { isS3Url } from '@lading/core/s3';
import { openBundleLocation } from '../bundle-location.ts';
import { type BundleSnapshot, MAX_DIFF_TEXT } from './compare.ts';

export interface OpenForDiffOptions {
  /** Release public key: verify the bundle before reading it. */
  key?: string | undefined;
  /** s3:// bundles only. */
  endpoint?: string | undefined;
  region?: string | undefined;
  signal?: AbortSignal;
  /** Called when verification of this bundle starts. */
  onVerify?: (bundle: string) => void;
}

/** The opened bundle changed between its verification and its reading (exit 3). */
class ChangedAfterVerifyError extends VerificationError {
  override readonly code = 'BUNDLE_CHANGED';
}

/**
 * Open one side of a diff (tar, first part, folder or s3://), verified first when a key is given.
 * What is compared is what verified: the SHA256SUMS read on opening must be the one checked.
 */
export async function openForDiff(
  bundle: string,
  opts: OpenForDiffOptions,
): Promise<{ snapshot: BundleSnapshot; close(): Promise<void> }> {
  const s3 = isS3Url(bundle);
  const loc = await openBundleLocation(bundle, {
    ...(s3 ? { endpoint: opts.endpoint, region: opts.region } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let opened: Bundle | undefined;
  try {
    let keyFingerprint: string | undefined;
    let verifiedSums: string | null = null;
    if (opts.key) {
      opts.onVerify?.(bundle);
      const report = await verifyBundle(loc.input, {
        publicKey: opts.key,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      assertVerified(report);
      keyFingerprint = report.signature.keyFingerprint;
      verifiedSums = report.sumsDigest;
    }
    const b = await openBundle(loc.input, opts.signal ? { signal: opts.signal } : {});
    opened = b;
    const sumsDigest = digestOf(b.sumsBytes);
    if (opts.key && verifiedSums !== sumsDigest) {
      throw new ChangedAfterVerifyError(`${bundle}: SHA256SUMS changed between verification and reading`, {
        hint: 'make sure nothing writes the bundle while it is compared, then run diff again',
      });
    }
    const raw: unknown = JSON.parse(
      (await b.readMember('lading.json', { limit: MAX_METADATA_BYTES })).toString('utf8'),
    );
    const blobs = new Map<string, number>();
    for (const m of b.members.values()) {
      const d = digestOfBlobMember(m.name);
      if (d) blobs.set(d, m.size);
    }
    const l = b.ladingJson;
    const snapshot: BundleSnapshot = {
      side: {
        bundle,
        name: l.name,
        version: l.version,
        created: l.created,
        verified: opts.key !== undefined,
        ...(keyFingerprint ? { keyFingerprint } : {}),
        sumsDigest,
        ...(l.since
          ? {
              since: {
                name: l.since.name,
                version: l.since.version,
                digest: l.since.digest,
                omittedBlobs: l.since.omittedBlobs?.length ?? 0,
              },
            }
          : {}),
      },
      lading: l,
      raw,
      blobs,
      readFile: async (path) => {
        const name = `files/${path.replace(/^\.?\//, '')}`;
        const m = b.member(name);
        if (!m) return undefined;
        if (m.size > MAX_DIFF_TEXT) return { size: m.size };
        return b.readMember(name, {
          limit: MAX_METADATA_BYTES,
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      },
    };
    return {
      snapshot,
      close: async () => {
        await b.close().catch(() => {});
        await loc.close().catch(() => {});
      },
    };
  } catch (err) {
    await opened?.close().catch(() => {});
    await loc.close().catch(() => {});
    throw err;
  }
}
