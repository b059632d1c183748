import {
  type CallOptions,
  type Descriptor,
  type Fetcher,
  fetchAll,
  isIndexType,
  isManifestType,
  parseManifest,
  retryTransient,
  successors,
} from '@lading/core';

/**
 * Every node of the graph under `root` (root first, then children depth-first), each once:
 * indexes, manifests, configs, layers. Only manifests and indexes are read (fetchAll).
 */
export async function graphOf(
  fetcher: Fetcher,
  root: Descriptor,
  opts: CallOptions = {},
): Promise<Descriptor[]> {
  const seen = new Map<string, Descriptor>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
    if (!isIndexType(d.mediaType) && !isManifestType(d.mediaType)) return;
    const bytes = await retryTransient(() => fetchAll(fetcher, d, { ...opts, source: d.digest }), opts);
    const parsed = parseManifest(bytes, d.mediaType, d.digest);
    for (const child of successors(parsed)) await visit(child);
  };
  await visit(root);
  return [...seen.values()];
}

/** Whether a descriptor is a manifest or an index (kept in differential bundles). */
export function isManifestNode(d: Descriptor): boolean {
  return isIndexType(d.mediaType) || isManifestType(d.mediaType);
}
