import {
  Annotation,
  type BundleTarget,
  type Descriptor,
  type Digest,
  fetchAll,
  helmOciTag,
  isManifestOrIndexType,
  type Limiter,
  manifestChildren,
  NotFoundError,
  type RegistryRepository,
  walkDescriptors,
} from '@lading/core';
import {
  chartRepository,
  formatRegistryTarget,
  PathCollisionError,
  planTargetPaths,
  type RegistryTarget,
} from '../registry-target.ts';

/** One image or chart of the bundle and where it goes. */
export interface PushItem {
  kind: 'image' | 'chart';
  /** The reference in the bundle's index.json (`docker.io/library/nginx:1.27.3`, `charts/web:1.0.0`). */
  source: string;
  /** The root descriptor (annotations dropped). */
  descriptor: Descriptor;
  /** Target repository, without the host (`airgap/library/nginx`). */
  repository: string;
  /** The tag to push under; undefined for a digest-only source (pushed by digest, untagged). */
  tag: string | undefined;
  /** `host/repository:tag` or `host/repository@digest`. */
  target: string;
}

/** What `push` does with a target tag that already points at another digest (`lading-load push --help`). */
export type OnExistingTag = 'overwrite' | 'skip' | 'fail';
export const ON_EXISTING_TAG: readonly OnExistingTag[] = ['overwrite', 'skip', 'fail'];

/** A target tag that already points at another digest than the bundled one. */
export interface TagConflict {
  /** `host/repository:tag`. */
  target: string;
  /** The digest the tag points at now. */
  existing: string;
  /** The digest the bundle would put there. */
  bundled: string;
  /** The bundle's reference (`docker.io/library/nginx:1.27.3`). */
  source: string;
}

/** What a root's graph needs: blobs held by the bundle and blobs a differential bundle leaves out. */
export interface ItemGraph {
  /** Non-manifest blobs in the bundle, each once (sizes count toward the progress total). */
  blobs: Descriptor[];
  /** Blobs of the graph the bundle does not hold but lading.json `since.omittedBlobs` lists. */
  omitted: Descriptor[];
  /** Blob bytes of the graph held by the bundle. */
  bytes: number;
}

function stripDescriptor(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/**
 * Map every index.json entry of the bundle to its target (README.md, image paths at the target): images at
 * `<host>/<prefix>/<source repository>:<tag>` (source host dropped), charts at
 * `<host>/<prefix>/charts/<name>:<version>`. Throws PathCollisionError (exit 2) before anything
 * is written when two sources would share a repository, an image would land on a chart's path,
 * or one tag would have to point at two different digests.
 */
export function planPush(bundle: BundleTarget, target: RegistryTarget): PushItem[] {
  const chartDigests = new Set<string>(bundle.bundle.ladingJson.charts.map((c) => c.digest));
  const entries = bundle.bundle.indexJson.manifests.map((d) => ({
    ref: d.annotations?.[Annotation.refName] ?? d.annotations?.[Annotation.containerdName] ?? '',
    descriptor: d,
  }));
  const imageRefs = new Set(bundle.bundle.ladingJson.images.map((i) => i.ref));
  // `charts/<name>:<version>` (docs/bundle-format.md §4); image refs are full references with a host.
  const isChart = (e: { ref: string; descriptor: Descriptor }) =>
    e.ref.startsWith('charts/') && (chartDigests.has(e.descriptor.digest) || !imageRefs.has(e.ref));
  const images = entries.filter((e) => e.ref && !isChart(e));
  const charts = entries.filter((e) => e.ref && isChart(e));
  const host = formatRegistryTarget(target).split('/')[0] as string;
  const paths = planTargetPaths(
    target,
    images.map((e) => e.ref),
  );
  const items: PushItem[] = [];
  for (const e of images) {
    const p = paths.get(e.ref);
    if (!p) continue;
    const tag = p.reference.tag ?? (p.reference.digest ? undefined : 'latest');
    items.push({
      kind: 'image',
      source: e.ref,
      descriptor: stripDescriptor(e.descriptor),
      repository: p.repository,
      tag,
      target: `${host}/${p.repository}${tag ? `:${tag}` : `@${e.descriptor.digest}`}`,
    });
  }
  for (const e of charts) {
    const rest = e.ref.slice('charts/'.length);
    const colon = rest.lastIndexOf(':');
    const name = colon < 0 ? rest : rest.slice(0, colon);
    const version = colon < 0 ? 'latest' : rest.slice(colon + 1);
    const repository = chartRepository(target, name);
    const tag = helmOciTag(version);
    items.push({
      kind: 'chart',
      source: e.ref,
      descriptor: stripDescriptor(e.descriptor),
      repository,
      tag,
      target: `${host}/${repository}:${tag}`,
    });
  }

  // An image on a chart's path, or two digests for one tag: stop before writing anything.
  const collisions: Array<{ path: string; sources: string[] }> = [];
  const chartRepos = new Set(items.filter((i) => i.kind === 'chart').map((i) => i.repository));
  const onChartPath = new Map<string, Set<string>>();
  for (const i of items) {
    if (i.kind === 'image' && chartRepos.has(i.repository)) {
      const set = onChartPath.get(i.repository) ?? new Set<string>();
      set.add(i.source);
      onChartPath.set(i.repository, set);
    }
  }
  for (const [repo, set] of onChartPath) {
    const chartSources = items
      .filter((i) => i.kind === 'chart' && i.repository === repo)
      .map((i) => i.source);
    collisions.push({ path: `${host}/${repo}`, sources: [...set, ...chartSources].sort() });
  }
  const byTarget = new Map<string, PushItem[]>();
  for (const i of items) {
    if (!i.tag) continue;
    const list = byTarget.get(i.target) ?? [];
    list.push(i);
    byTarget.set(i.target, list);
  }
  for (const [t, list] of byTarget) {
    if (new Set(list.map((i) => i.descriptor.digest)).size > 1) {
      collisions.push({ path: t, sources: list.map((i) => `${i.source} (${i.descriptor.digest})`).sort() });
    }
  }
  if (collisions.length > 0) throw new PathCollisionError(collisions);
  return items;
}

/**
 * Walk a root's graph in the bundle (manifests are small and read whole, verified): the blobs it
 * needs, and those a differential bundle leaves out (expected at the target).
 */
export async function walkGraph(
  bundle: BundleTarget,
  root: Descriptor,
  opts: { signal?: AbortSignal } = {},
): Promise<ItemGraph> {
  const omittedSet = new Set<string>(bundle.bundle.ladingJson.since?.omittedBlobs ?? []);
  const out: ItemGraph = { blobs: [], omitted: [], bytes: 0 };
  const so = opts.signal ? { signal: opts.signal } : {};
  const read = (d: Descriptor) => fetchAll(bundle, d, { ...so, source: d.digest });
  await walkDescriptors([root], manifestChildren(read), {
    enter: (d) => {
      if (!bundle.bundle.hasBlob(d.digest as Digest)) {
        if (omittedSet.has(d.digest)) out.omitted.push(stripDescriptor(d));
        // anything else missing is reported by the copy itself (BundleContentNotFoundError)
        return false;
      }
      if (!isManifestOrIndexType(d.mediaType)) {
        out.blobs.push(stripDescriptor(d));
        out.bytes += d.size;
      }
      return true;
    },
    ...so,
  });
  return out;
}

/** Where a target tag points now: a digest, `undefined` (no such tag), or why the registry could not say. */
export type TagState = { digest: string | undefined } | { error: unknown };

/**
 * Where every tagged item's target tag points now (one HEAD each, through the shared limiter).
 * Run in the plan, before anything is written, so that `--on-existing-tag fail` names every
 * conflict at once and the copy reuses the answers. A failed look-up is kept per item: it fails
 * that item (or, with `fail`, the push) rather than the whole plan under --continue-on-error.
 */
export async function resolveTargetTags(
  items: PushItem[],
  repoOf: (name: string) => RegistryRepository,
  limiter: Limiter,
  opts: { signal?: AbortSignal } = {},
): Promise<Map<PushItem, TagState>> {
  const out = new Map<PushItem, TagState>();
  const call = opts.signal ? { signal: opts.signal } : {};
  await Promise.all(
    items.map(async (item) => {
      const tag = item.tag;
      if (!tag) return;
      const state = await limiter.run(async (): Promise<TagState> => {
        try {
          return { digest: (await repoOf(item.repository).resolve(tag, call)).digest };
        } catch (err) {
          if (err instanceof NotFoundError) return { digest: undefined };
          return { error: err };
        }
      }, opts.signal);
      out.set(item, state);
    }),
  );
  return out;
}

/** The items whose target tag points at another digest than the bundled one (plan order). */
export function tagConflicts(items: PushItem[], states: Map<PushItem, TagState>): Map<PushItem, TagConflict> {
  const out = new Map<PushItem, TagConflict>();
  for (const item of items) {
    const state = states.get(item);
    if (!state || !('digest' in state) || state.digest === undefined) continue;
    if (state.digest !== item.descriptor.digest) {
      out.set(item, {
        target: item.target,
        existing: state.digest,
        bundled: item.descriptor.digest,
        source: item.source,
      });
    }
  }
  return out;
}
