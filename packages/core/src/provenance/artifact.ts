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
import { type Descriptor, manifestChildren, type ParsedManifest, walkDescriptors } from '../model/index.ts';
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
 * layers; never the subject (the one walk, `model/walk.ts`). With `subject`, the root must name
 * it as its `subject`.
 */
export async function artifactNodes(
  fetcher: Fetcher,
  root: Descriptor,
  opts: CallOptions & { subject?: Digest; source?: string } = {},
): Promise<Descriptor[]> {
  const nodes: Descriptor[] = [];
  const name = (d: Descriptor): string => opts.source ?? d.digest;
  const read = (d: Descriptor) =>
    retryTransient(() => fetchAll(fetcher, d, { ...opts, source: name(d) }), opts);
  const checkSubject = (d: Descriptor, parsed: ParsedManifest): void => {
    if (!opts.subject || d.digest !== root.digest) return;
    const actual = (parsed.kind === 'index' ? parsed.index : parsed.manifest).subject?.digest;
    if (actual !== opts.subject) throw new ReferrerSubjectError(name(d), opts.subject, actual);
  };
  await walkDescriptors(
    [root],
    manifestChildren(read, { source: name, subject: false, visit: checkSubject }),
    {
      enter: (d) => {
        nodes.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
        return true;
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    },
  );
  return nodes;
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
