import type { LadingJson } from '../bundle/lading-json.ts';
import { type CallOptions, type Fetcher, fetchAll, type ReadOnlyTarget } from '../content/index.ts';
import type { Digest } from '../digest/index.ts';
import { type Descriptor, isIndexType, parseManifest } from '../model/index.ts';
import { checkSignatures, type SignatureResult } from './check.ts';
import type { ImageKey } from './keys.ts';

/**
 * `lading-load verify --image-key KEY`: re-check, offline at the site, the upstream signatures the
 * bundle carries, with the vendor keys the site trusts (not the fingerprints lading.json names).
 * The same rule as at build time: a valid signature over the image's own digest, or over the
 * upstream index (then the bundled index must list only manifests the upstream index lists), or
 * over every bundled platform manifest.
 */
export interface ImageSignatureReport {
  ref: string;
  /** checked at build time by a verify: rule (lading.json `signatures[]`): a failure here fails verify. */
  required: boolean;
  ok: boolean;
  signatures: SignatureResult[];
  problems: string[];
}

async function manifestAt(fetcher: Fetcher, d: Descriptor, opts: CallOptions) {
  const bytes = await fetchAll(fetcher, d, { ...opts, source: d.digest });
  return parseManifest(bytes, d.mediaType, d.digest);
}

export async function recheckImageSignatures(
  fetcher: ReadOnlyTarget,
  lading: Pick<LadingJson, 'images'>,
  keys: readonly ImageKey[],
  opts: CallOptions = {},
): Promise<ImageSignatureReport[]> {
  const out: ImageSignatureReport[] = [];
  for (const img of lading.images) {
    const extras = (img.extras ?? []).map((e) => ({
      kind: e.kind,
      subject: e.subject as Digest,
      descriptor: { mediaType: e.mediaType, digest: e.digest as Digest, size: e.size },
    }));
    const required = (img.signatures?.length ?? 0) > 0;
    if (!required && !extras.some((e) => e.kind === 'sig' || e.kind === 'referrer')) continue;
    const report: ImageSignatureReport = { ref: img.ref, required, ok: false, signatures: [], problems: [] };
    out.push(report);
    try {
      const r = await fetcher.resolve(img.ref, opts);
      const rootDesc: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
      const manifests = new Map<string, Descriptor>([[rootDesc.digest, rootDesc]]);
      let children: Descriptor[] = [];
      if (isIndexType(img.mediaType)) {
        const parsed = await manifestAt(fetcher, rootDesc, opts);
        if (parsed.kind === 'index') children = parsed.index.manifests;
        for (const c of children) manifests.set(c.digest, c);
      }
      let first: Digest = rootDesc.digest;
      if (img.digest !== img.upstreamDigest && img.upstreamIndex) {
        const up: Descriptor = { ...img.upstreamIndex, digest: img.upstreamDigest as Digest };
        const parsed = await manifestAt(fetcher, up, opts);
        const listed = new Set(parsed.kind === 'index' ? parsed.index.manifests.map((m) => m.digest) : []);
        const extra = children.filter((c) => !listed.has(c.digest));
        if (extra.length > 0) {
          report.problems.push(
            `the bundled index lists ${extra.map((c) => c.digest).join(', ')}, which the upstream index ${img.upstreamDigest} does not`,
          );
          continue;
        }
        manifests.set(up.digest, up);
        first = up.digest;
      }
      const alternatives: Digest[][] = [[first]];
      if (children.length > 0) alternatives.push(children.map((c) => c.digest));
      report.signatures = await checkSignatures(
        {
          image: img.ref,
          rule: `--image-key ${keys.map((k) => k.source).join(', ')}`,
          fetcher,
          extras,
          manifests,
          keys,
          alternatives,
        },
        opts,
      );
      report.ok = true;
    } catch (err) {
      const reasons = (err as { reasons?: string[] }).reasons;
      report.problems.push(...(reasons ?? [(err as Error).message]));
    }
  }
  return out;
}
