import {
  artifactNodes,
  type BundleExtra,
  type BundleTarget,
  bytesStream,
  type CallOptions,
  copyArtifact,
  type Descriptor,
  type Digest,
  descriptorFor,
  encodeJson,
  MediaType,
  NotFoundError,
  parseManifest,
  type RegistryRepository,
  referrersTag,
  retryTransient,
} from '@lading/core';

/**
 * Push an image's supply-chain artifacts (lading.json `extras[]`) into its relocated repository
 * (docs/bundle-format.md §6.2): cosign tag-scheme artifacts under the same `sha256-<hex>.sig|.att|.sbom` tags,
 * referrers by digest with their `subject`, and — where the target has no referrers API — the
 * referrers tag schema index `sha256-<hex>` extended with them (what is there already is kept).
 * What the target already holds is skipped, so a re-push sends nothing.
 */
export interface ExtrasPushCounts {
  pushed: number;
  skipped: number;
  /** Referrers tag schema indexes written (targets without the referrers API). */
  indexes: number;
  /**
   * cosign tags that named another manifest at the target and now name the bundled one (a
   * signature manifest there that the bundle does not carry is replaced, as `cosign` would not do:
   * listed so that nobody loses a site-made signature silently).
   */
  replaced: Array<{ target: string; existing: string; bundled: string }>;
}

function descriptorOf(e: BundleExtra): Descriptor {
  return { mediaType: e.mediaType, digest: e.digest as Digest, size: e.size };
}

async function currentDigest(
  repo: RegistryRepository,
  tag: string,
  opts: CallOptions,
): Promise<string | undefined> {
  try {
    return (await retryTransient(() => repo.resolve(tag, opts), opts)).digest;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

export async function pushExtras(
  bundle: BundleTarget,
  repo: RegistryRepository,
  extras: readonly BundleExtra[],
  opts: CallOptions & { source?: string } = {},
): Promise<ExtrasPushCounts> {
  const so = opts.signal ? { signal: opts.signal } : {};
  const counts: ExtrasPushCounts = { pushed: 0, skipped: 0, indexes: 0, replaced: [] };
  const referrers = new Map<Digest, BundleExtra[]>();
  for (const e of extras) {
    const desc = descriptorOf(e);
    const source = `${opts.source ?? repo.name} ${e.tag ?? `referrer ${e.digest}`}`;
    if (e.tag) {
      const now = await currentDigest(repo, e.tag, so);
      if (now === e.digest) {
        counts.skipped++;
        continue;
      }
      if (now)
        counts.replaced.push({ target: `${repo.reference}:${e.tag}`, existing: now, bundled: e.digest });
    } else {
      const list = referrers.get(e.subject as Digest) ?? [];
      list.push(e);
      referrers.set(e.subject as Digest, list);
      if (await retryTransient(() => repo.exists(desc, so), so)) {
        counts.skipped++;
        continue;
      }
    }
    const nodes = await artifactNodes(bundle, desc, { ...so, source });
    await copyArtifact(bundle, repo, nodes, { ...so, source, ...(e.tag ? { tag: e.tag } : {}) });
    counts.pushed++;
  }
  for (const [subject, list] of referrers) {
    if ((await retryTransient(() => repo.referrers(subject, so), so)) !== undefined) continue;
    if (await updateReferrersTag(repo, subject, list, so)) counts.indexes++;
  }
  return counts;
}

/** Add `list` to the referrers tag schema index of `subject` (created when missing). True when written. */
async function updateReferrersTag(
  repo: RegistryRepository,
  subject: Digest,
  list: readonly BundleExtra[],
  opts: CallOptions,
): Promise<boolean> {
  const tag = referrersTag(subject);
  let manifests: Descriptor[] = [];
  try {
    const { bytes, descriptor } = await retryTransient(() => repo.getManifest(tag, opts), opts);
    const parsed = parseManifest(bytes, descriptor.mediaType, `${repo.reference}:${tag}`);
    if (parsed.kind === 'index') manifests = parsed.index.manifests;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  const have = new Set(manifests.map((m) => m.digest));
  const add = list.filter((e) => !have.has(e.digest as Digest));
  if (add.length === 0) return false;
  for (const e of add) {
    const d: Descriptor = descriptorOf(e);
    if (e.artifactType) d.artifactType = e.artifactType;
    manifests.push(d);
  }
  const bytes = encodeJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests });
  const desc = descriptorFor(bytes, MediaType.ociIndex);
  await retryTransient(() => repo.pushReference(desc, bytesStream(bytes), tag, opts), opts);
  return true;
}
