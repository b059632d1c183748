import {
  bytesStream,
  type CallOptions,
  fetchAll,
  type ReadOnlyStorage,
  type ReadOnlyTarget,
  type Target,
} from '../content/index.ts';
import { type Digest, digestOf, isDigest } from '../digest/index.ts';
import { throwIfAborted } from '../errors/index.ts';
import {
  type Descriptor,
  formatPlatform,
  InvalidManifestError,
  isIndexType,
  isManifestType,
  MediaType,
  matchesAny,
  type Platform,
  parseManifest,
} from '../model/index.ts';
import { retryTransient } from '../util/index.ts';
import { PlatformNotFoundError } from './errors.ts';
import type { CopyStats } from './events.ts';
import { type CopyGraphOptions, runGraph } from './graph.ts';

export interface CopyOptions extends CopyGraphOptions {
  /**
   * Keep only these platforms. For an index, a new index holding only the matching entries is
   * written (unless every entry matches); for a single image, its config must match.
   */
  platforms?: readonly Platform[];
  /**
   * What `srcRef` names at `src`, when the caller resolved it already (create resolves every
   * image before pulling any): the copy starts from it instead of asking the source again.
   */
  resolved?: Descriptor;
}

export interface CopyResult extends CopyStats {
  /** The root copied and tagged at the destination. */
  descriptor: Descriptor;
  /** Its digest: differs from `upstreamDigest` when a platform filter wrote a new index. */
  digest: Digest;
  /** The digest the source reference resolved to. */
  upstreamDigest: Digest;
  mediaType: string;
  /** The platforms copied (`os/arch[/variant]`), as the index or the image config names them. */
  platforms: string[];
  /** Every node of the graph visited (see `GraphRun.nodes`; complete with `walkExisting`). */
  nodes: Descriptor[];
}

const IMAGE_CONFIG_TYPES: readonly string[] = [MediaType.ociConfig, MediaType.dockerConfig];

/** A source that also serves one document held in memory (the filtered index). */
function withDocument(src: ReadOnlyStorage, desc: Descriptor, bytes: Buffer): ReadOnlyStorage {
  return {
    fetch: (d: Descriptor, o?: CallOptions) =>
      d.digest === desc.digest ? Promise.resolve(bytesStream(bytes)) : src.fetch(d, o),
    exists: (d: Descriptor, o?: CallOptions) =>
      d.digest === desc.digest ? Promise.resolve(true) : src.exists(d, o),
  };
}

function platformOfConfig(bytes: Buffer): Platform | undefined {
  try {
    const c = JSON.parse(bytes.toString('utf8')) as Partial<Platform>;
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    const p: Platform = { os: c.os, architecture: c.architecture };
    if (typeof c.variant === 'string' && c.variant) p.variant = c.variant;
    return p;
  } catch {
    return undefined;
  }
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/**
 * Copy what `srcRef` names in `src` to `dst` and tag it `dstRef` there (with `pushReference`
 * when the destination offers it). With `platforms`, an index is narrowed to the matching
 * entries; the result reports both digests. An empty `dstRef` or a digest copies untagged.
 */
export async function copy(
  src: ReadOnlyTarget,
  srcRef: string,
  dst: Target,
  dstRef: string,
  opts: CopyOptions = {},
): Promise<CopyResult> {
  const { signal } = opts;
  throwIfAborted(signal);
  // what messages and events call it: the label (a caller's full reference) rather than a bare
  // tag or digest
  const name = opts.label ?? srcRef;
  const graphOpts: CopyOptions = { ...opts, label: name };
  const upstream = opts.resolved ?? (await retryTransient(() => src.resolve(srcRef, { signal }), { signal }));
  const wanted = opts.platforms && opts.platforms.length > 0 ? opts.platforms : undefined;
  let root: Descriptor = { mediaType: upstream.mediaType, digest: upstream.digest, size: upstream.size };
  let source: ReadOnlyStorage = src;
  let platforms: string[] = [];
  // Documents read here are handed to the walk (not fetched twice); with `walkExisting` they are
  // read from the destination when it holds them.
  const documents = new Map<string, Buffer>();
  const read = async (d: Descriptor, source: string): Promise<Buffer> => {
    const bytes =
      opts.walkExisting && (await dst.exists(d, { signal }))
        ? await fetchAll(dst, d, { signal, source })
        : await retryTransient(() => fetchAll(src, d, { signal, source }), { signal });
    documents.set(d.digest, bytes);
    return bytes;
  };

  if (isIndexType(upstream.mediaType)) {
    const bytes = await read(root, name);
    const parsed = parseManifest(bytes, upstream.mediaType, name);
    if (parsed.kind !== 'index') throw new InvalidManifestError(name, 'expected an index');
    const children = parsed.index.manifests;
    const available = unique(children.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : [])));
    let kept = children;
    if (wanted) {
      const keep = children.map((c) => matchesAny(wanted, c.platform));
      kept = children.filter((_, i) => keep[i]);
      if (kept.length === 0) throw new PlatformNotFoundError(name, wanted.map(formatPlatform), available);
      if (kept.length < children.length) {
        // the same document minus the dropped entries: mediaType, annotations and unknown
        // fields stay as they were, in their order
        const doc = JSON.parse(bytes.toString('utf8')) as { manifests: unknown[] };
        doc.manifests = doc.manifests.filter((_, i) => keep[i]);
        const filtered = Buffer.from(JSON.stringify(doc), 'utf8');
        root = { mediaType: parsed.mediaType, digest: digestOf(filtered), size: filtered.length };
        source = withDocument(src, root, filtered);
      }
    }
    platforms = unique(kept.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : [])));
  } else if (isManifestType(upstream.mediaType)) {
    const bytes = await read(root, name);
    const parsed = parseManifest(bytes, upstream.mediaType, name);
    if (parsed.kind !== 'manifest') throw new InvalidManifestError(name, 'expected a manifest');
    const config = parsed.manifest.config;
    if (IMAGE_CONFIG_TYPES.includes(config.mediaType)) {
      const platform = platformOfConfig(await read(config, `${name} config ${config.digest}`));
      if (platform) {
        platforms = [formatPlatform(platform)];
        if (wanted && !matchesAny(wanted, platform)) {
          throw new PlatformNotFoundError(name, wanted.map(formatPlatform), platforms);
        }
      }
    }
  }

  const tagRef = dstRef && !isDigest(dstRef) ? dstRef : undefined;
  const run = await runGraph(source, dst, root, graphOpts, {
    documents,
    ...(tagRef ? { rootReference: tagRef } : {}),
  });
  if (tagRef && !run.rootTagged) await dst.tag(root, tagRef, { signal });
  return {
    descriptor: root,
    digest: root.digest,
    upstreamDigest: upstream.digest,
    mediaType: root.mediaType,
    platforms,
    nodes: run.nodes,
    ...run.stats,
  };
}
