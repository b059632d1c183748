import {
  type CallOptions,
  type Fetcher,
  fetchAll,
  fetchVerified,
  isReferencePusher,
  type ReadOnlyStorage,
  type Storage,
} from '../content/index.ts';
import type { Digest } from '../digest/index.ts';
import { InvalidInputError } from '../errors/index.ts';
import { type Descriptor, isManifestOrIndexType, parseManifest } from '../model/index.ts';
import { retryTransient } from '../util/index.ts';

/**
 * A supply-chain artifact (signature, attestation, SBOM, referrer) is a small graph: its manifest
 * (or index), config and layers. Unlike an image's graph it is walked WITHOUT its `subject`: the
 * subject is the image it is about, which travels on its own (or, for a filtered index, only as
 * the carried upstream bytes).
 */

/** A referrer whose `subject` is not the digest it was listed for. */
export class ReferrerSubjectError extends InvalidInputError {
  override readonly code = 'REFERRER_SUBJECT';
  constructor(source: string, listed: Digest, actual: string | undefined) {
    super(`${source}: listed as a referrer of ${listed} but its subject is ${actual ?? 'missing'}`, {
      hint: "the registry's referrers list (or referrers tag index) is wrong; fix or remove the entry",
    });
  }
}

/**
 * Every node of the artifact under `root`, root first, each once: manifests, indexes, configs,
 * layers; never the subject. With `subject`, the root must name it as its `subject`.
 */
export async function artifactNodes(
  fetcher: Fetcher,
  root: Descriptor,
  opts: CallOptions & { subject?: Digest; source?: string } = {},
): Promise<Descriptor[]> {
  const seen = new Map<string, Descriptor>();
  const visit = async (d: Descriptor, isRoot: boolean): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
    if (!isManifestOrIndexType(d.mediaType)) return;
    const source = opts.source ?? d.digest;
    const bytes = await retryTransient(() => fetchAll(fetcher, d, { ...opts, source }), opts);
    const parsed = parseManifest(bytes, d.mediaType, source);
    const node = parsed.kind === 'index' ? parsed.index : parsed.manifest;
    if (isRoot && opts.subject && node.subject?.digest !== opts.subject) {
      throw new ReferrerSubjectError(source, opts.subject, node.subject?.digest);
    }
    const children =
      parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
    for (const c of children) await visit(c, false);
  };
  await visit(root, true);
  return [...seen.values()];
}

/**
 * Copy an artifact's nodes (as `artifactNodes` lists them) from `src` to `dst`, children before
 * their manifest; what `dst` already has is skipped. With `tag`, the root goes in under it.
 * Artifacts are small: one transfer at a time, each verified by the destination as it streams.
 */
export async function copyArtifact(
  src: ReadOnlyStorage,
  dst: Storage,
  nodes: readonly Descriptor[],
  opts: CallOptions & { tag?: string; source?: string } = {},
): Promise<void> {
  const so = opts.signal ? { signal: opts.signal } : {};
  for (let i = nodes.length - 1; i >= 0; i--) {
    const d = nodes[i]!;
    const root = i === 0;
    if (!(root && opts.tag) && (await retryTransient(() => dst.exists(d, so), so))) continue;
    await retryTransient(async () => {
      const stream = await fetchVerified(src, d, {
        ...so,
        source: `${opts.source ?? 'artifact'} ${d.digest}`,
      });
      if (root && opts.tag && isReferencePusher(dst)) await dst.pushReference(d, stream, opts.tag, so);
      else await dst.push(d, stream, so);
    }, so);
  }
}
