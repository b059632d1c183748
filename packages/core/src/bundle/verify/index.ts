import { createHash, type KeyObject } from 'node:crypto';
import { Member } from '../format.ts';
import { loadPublicKey, publicKeyFingerprint } from '../keys.ts';
import { verifySignature } from '../signing.ts';
import { type BundleInput, type BundleSource, bundleInputName, openSource } from '../source.ts';
import { checkFiles } from './checks-files.ts';
import { checkGraph } from './checks-graph.ts';
import { checkMembers } from './checks-members.ts';
import { checkMetadataDocuments } from './checks-metadata.ts';
import { checkChecksumFileSignature, checkPartDigest, checkPartsList, partReports } from './checks-parts.ts';
import { checkMetadataMembers, checkSums } from './checks-sums.ts';
import { NotABundleError } from './errors.ts';
import { SignatureGate } from './gate.ts';
import { hashBundle } from './hashing.ts';
import { readLoaderChecksum, readPartsInput } from './parts-input.ts';
import { ProblemList } from './problems.ts';
import type { PartReport, VerifyOptions, VerifyReport } from './report.ts';

/**
 * `verifyBundle`: one pass over a bundle (tar, split parts or extracted directory). The metadata
 * comes first; the signature over SHA256SUMS is checked with the given key as soon as both are
 * in; every following member is hashed and compared with SHA256SUMS, every blob with its own
 * name; then the content graph of every image and chart in index.json is checked for
 * completeness. Failures go into the report; only unusable input (a malformed tar, an unreadable
 * file or key) throws.
 *
 * How the bytes are read and hashed is `hashing.ts` (streaming, or a seeking walk plus hash
 * workers on the opened files; it stops where `gate.ts` says); the checks are functions of what
 * it found (`checks-*.ts`), in this order: the parts file, the members as met, the metadata
 * members, SHA256SUMS, the metadata documents, the content graph, the extra files.
 */

export * from './errors.ts';
export { STOPPED_MEMBER } from './problems.ts';
export * from './report.ts';

/**
 * Verify a bundle (a path, or `{ reader, name }` such as an `s3://` object; see `openSource`);
 * see the module comment. Throws only for unusable input.
 */
export async function verifyBundle(path: BundleInput, opts: VerifyOptions): Promise<VerifyReport> {
  const key = await loadPublicKey(opts.publicKey);
  const keyFingerprint = publicKeyFingerprint(key);
  const source = await openSource(path, opts.signal ? { signal: opts.signal } : {});
  try {
    const report = await verifySource(source, key, keyFingerprint, opts);
    // Neither SHA256SUMS nor lading.json anywhere and nothing damaged: not a bundle but another
    // file (empty, YAML, a tar of something else) — bad input (exit 2), not a failed verification.
    // Problems with a named member (a header that promises more than the file holds, an unsafe
    // path) mean a damaged or hostile bundle; the walk's own places — "(header at byte 0)",
    // "(end of archive)" — are what any short non-tar file gives.
    const damaged = report.problems.some(
      (p) =>
        (p.kind === 'truncated' || p.kind === 'unsafe' || p.kind === 'duplicate') &&
        !p.member.startsWith('('),
    );
    if (report.sumsDigest === null && report.bundle.name === null && !report.signature.ok && !damaged)
      throw new NotABundleError(bundleInputName(path), report.members);
    return report;
  } finally {
    await source.close();
  }
}

async function verifySource(
  source: BundleSource,
  key: KeyObject,
  keyFingerprint: string,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  const problems = new ProblemList();
  const verify = (sums: Buffer, sig: Buffer) => verifySignature(sums, sig, key);

  // Split bundles: the parts file first; each part is hashed in the same pass.
  let expectedParts: Map<string, string> | undefined;
  let checksumName = '';
  if (source.kind === 'parts') {
    const input = await readPartsInput(source, key);
    checksumName = input.checksumName ?? '';
    expectedParts = checkPartsList(input, keyFingerprint, problems);
  } else if (source.kind === 'tar' && source.localFiles) {
    const loader = await readLoaderChecksum(source, key);
    if (loader) checkChecksumFileSignature(loader.name, loader.signature, keyFingerprint, problems);
  }

  const hashed = await hashBundle(source, new SignatureGate(verify, keyFingerprint), opts);

  const hashedParts: PartReport[] = [];
  const table = checkMembers(hashed.observations, verify, keyFingerprint, problems, (part) =>
    hashedParts.push(checkPartDigest(part, expectedParts, checksumName, problems)),
  );
  checkMetadataMembers(table, source.kind, problems);
  checkSums(table, hashed, problems);
  const { lading, ladingRaw, index } = checkMetadataDocuments(table.meta, problems);
  const graph = await checkGraph(
    {
      index,
      lading,
      members: table.members,
      manifests: hashed.manifests,
      badContent: table.badContent,
      truncated: hashed.truncated,
      stopped: hashed.stopped,
    },
    problems,
  );
  const files = checkFiles(lading, table.members, hashed.stopped, problems);
  const parts = partReports(hashedParts, expectedParts, problems);

  const sumsBytes = table.meta.get(Member.sums);
  return {
    ok: problems.list.length === 0 && table.signatureOk,
    bundle: {
      name: lading?.name ?? (typeof ladingRaw?.name === 'string' ? ladingRaw.name : null),
      version: lading?.version ?? (typeof ladingRaw?.version === 'string' ? ladingRaw.version : null),
      path: source.path,
      kind: source.kind,
    },
    signature: { ok: table.signatureOk, keyFingerprint },
    members: hashed.members,
    bytes: hashed.bytes,
    images: graph.images,
    charts: graph.charts,
    files,
    parts,
    expectedAtTarget: graph.expectedAtTarget,
    since: lading?.since
      ? { name: lading.since.name, version: lading.since.version, digest: lading.since.digest }
      : null,
    sumsDigest: sumsBytes ? `sha256:${createHash('sha256').update(sumsBytes).digest('hex')}` : null,
    problems: problems.list,
  };
}
