import type { CallOptions, ReadOnlyTarget } from '../content/index.ts';
import { fetchAll } from '../content/index.ts';
import type { Digest } from '../digest/index.ts';
import { NotFoundError } from '../errors/index.ts';
import { type Descriptor, isIndexType, parseManifest } from '../model/index.ts';
import { retryTransient } from '../util/index.ts';
import { COSIGN_SUFFIXES, type CosignSuffix, cosignTag, referrersTag } from './cosign.ts';

/** Kinds of supply-chain artifacts (lading.json `extras[].kind`). */
export type ExtraKind = CosignSuffix | 'referrer';

/** A supply-chain artifact found for one manifest of an image. */
export interface FoundExtra {
  kind: ExtraKind;
  /** The manifest (image, platform manifest, or upstream index) it is about. */
  subject: Digest;
  descriptor: Descriptor;
  /** cosign tag scheme: the tag it was found under (`sha256-<hex>.sig`). */
  tag?: string;
  artifactType?: string;
}

/** A source repository: resolves tags; may answer the referrers API. */
export interface ExtraSource extends ReadOnlyTarget {
  referrers?(digest: Digest, opts?: CallOptions): Promise<Descriptor[] | undefined>;
}

async function resolveOptional(
  repo: ReadOnlyTarget,
  ref: string,
  opts: CallOptions,
): Promise<Descriptor | undefined> {
  try {
    return await retryTransient(() => repo.resolve(ref, opts), opts);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/**
 * The supply-chain artifacts of `subjects` in `repo`: cosign's `sha256-<hex>.sig|.att|.sbom`
 * tags, and OCI referrers from the referrers API or, where the registry has none, from the
 * referrers tag schema (`sha256-<hex>` holding an index). Sorted for reproducible bundles.
 */
export async function discoverExtras(
  repo: ExtraSource,
  subjects: readonly Digest[],
  opts: CallOptions & { source?: string } = {},
): Promise<FoundExtra[]> {
  const so = opts.signal ? { signal: opts.signal } : {};
  const out: FoundExtra[] = [];
  for (const subject of [...new Set(subjects)]) {
    const found = await Promise.all(
      COSIGN_SUFFIXES.map(async (suffix) => {
        const tag = cosignTag(subject, suffix);
        const d = await resolveOptional(repo, tag, so);
        return d ? { kind: suffix, subject, descriptor: plain(d), tag } : undefined;
      }),
    );
    for (const f of found) if (f) out.push(f);
    let referrers = repo.referrers ? await retryTransient(() => repo.referrers!(subject, so), so) : undefined;
    if (referrers === undefined) {
      const d = await resolveOptional(repo, referrersTag(subject), so);
      if (d && isIndexType(d.mediaType)) {
        const source = `${opts.source ?? 'repository'}:${referrersTag(subject)}`;
        const bytes = await retryTransient(() => fetchAll(repo, d, { ...so, source }), so);
        const parsed = parseManifest(bytes, d.mediaType, source);
        referrers = parsed.kind === 'index' ? parsed.index.manifests : [];
      }
    }
    const seen = new Set<string>();
    for (const r of referrers ?? []) {
      if (seen.has(r.digest)) continue;
      seen.add(r.digest);
      const e: FoundExtra = { kind: 'referrer', subject, descriptor: plain(r) };
      if (r.artifactType) e.artifactType = r.artifactType;
      out.push(e);
    }
  }
  return out.sort((a, b) =>
    a.subject !== b.subject
      ? a.subject < b.subject
        ? -1
        : 1
      : a.kind !== b.kind
        ? a.kind < b.kind
          ? -1
          : 1
        : a.descriptor.digest < b.descriptor.digest
          ? -1
          : a.descriptor.digest > b.descriptor.digest
            ? 1
            : 0,
  );
}

function plain(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
