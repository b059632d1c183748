import {
  type BundleTarget,
  blobMemberName,
  type Descriptor,
  type Digest,
  DigestMismatchError,
  descriptorFor,
  digestAlgorithm,
  digestOf,
  encodeJson,
  helmOciTag,
  isManifestOrIndexType,
  MAX_MANIFEST_BYTES,
  MediaType,
  type ParsedManifest,
  parseManifest,
  parseReference,
  referrersTag,
  successors,
  throwIfAborted,
  walkDescriptors,
} from '@lading/core';
import { PathCollisionError } from '../registry-target.ts';

/**
 * What `serve` offers, computed once from the bundle: every image and chart of index.json under
 * its source path with the host dropped (README.md, image paths at the target: `docker.io/library/nginx:1.27.3` →
 * `library/nginx:1.27.3`; charts are `charts/<name>:<version>` already), and for each repository
 * the set of digests its roots reach. Blobs and manifests are served only in the repositories
 * whose images reference them, as a registry does — a client cannot fetch an unrelated layer
 * through any name. Manifests are small and kept in memory; blobs are streamed from the tar.
 */

export interface ServedManifest {
  descriptor: Descriptor;
  /** The manifest's own media type (what Content-Type says). */
  mediaType: string;
  bytes: Buffer;
  parsed: ParsedManifest;
}

export interface ServedRepository {
  name: string;
  /** tag → root digest. */
  tags: Map<string, Digest>;
  /** Every digest reachable from this repository's roots (manifests and blobs). */
  digests: Map<Digest, Descriptor>;
  /** The source references that landed here. */
  sources: string[];
  /** Supply-chain referrers carried in the bundle: subject digest → referrer descriptors (the referrers API). */
  referrers: Map<Digest, Descriptor[]>;
}

export interface ServedImage {
  /** The reference in index.json (`docker.io/library/nginx:1.27.3`, `charts/webapp:1.4.2`). */
  source: string;
  /** Where serve offers it (`library/nginx:1.27.3`, or `name@digest` without a tag). */
  served: string;
  repository: string;
  tag?: string;
  digest: Digest;
  mediaType: string;
}

/**
 * The served name of an index.json ref: Docker's grammar with the host dropped. A chart whose
 * version is not a valid tag (`1.0.0+build`) is served under Helm's OCI tag (`1.0.0_build`).
 */
export function servedName(ref: string): { repository: string; tag?: string; origin: string } {
  try {
    const r = parseReference(ref);
    return {
      repository: r.repository,
      ...(r.tag ? { tag: r.tag } : {}),
      origin: `${r.registry}/${r.repository}`,
    };
  } catch (err) {
    const chart = /^charts\/([a-z0-9][a-z0-9._-]*):(.+)$/.exec(ref);
    if (!chart) throw err;
    return {
      repository: `charts/${chart[1]}`,
      tag: helmOciTag(chart[2] as string),
      origin: `charts/${chart[1]}`,
    };
  }
}

export class ServeCatalog {
  readonly target: BundleTarget;
  readonly repositories = new Map<string, ServedRepository>();
  readonly manifests = new Map<Digest, ServedManifest>();
  readonly images: ServedImage[] = [];

  private constructor(target: BundleTarget) {
    this.target = target;
  }

  /** Index the bundle: resolve every root and walk its manifests (blobs are not read). */
  static async build(target: BundleTarget, opts: { signal?: AbortSignal } = {}): Promise<ServeCatalog> {
    const c = new ServeCatalog(target);
    const refs = target.refs().map((x) => ({ ...x, served: servedName(x.ref) }));
    // Two different source repositories landing on the same served name: refuse, like push.
    const origins = new Map<string, Set<string>>();
    for (const x of refs) {
      const set = origins.get(x.served.repository) ?? new Set<string>();
      set.add(x.served.origin);
      origins.set(x.served.repository, set);
    }
    const clashes = [...origins].filter(([, set]) => set.size > 1);
    if (clashes.length > 0) {
      throw new PathCollisionError(clashes.map(([path, set]) => ({ path, sources: [...set].sort() })));
    }
    for (const { ref, descriptor, served: r } of refs) {
      throwIfAborted(opts.signal);
      let repo = c.repositories.get(r.repository);
      if (!repo) {
        repo = { name: r.repository, tags: new Map(), digests: new Map(), sources: [], referrers: new Map() };
        c.repositories.set(r.repository, repo);
      }
      if (!repo.sources.includes(ref)) repo.sources.push(ref);
      if (r.tag) repo.tags.set(r.tag, descriptor.digest);
      await c.walk(repo, descriptor, opts.signal);
      c.images.push({
        source: ref,
        served: r.tag ? `${r.repository}:${r.tag}` : `${r.repository}@${descriptor.digest}`,
        repository: r.repository,
        ...(r.tag ? { tag: r.tag } : {}),
        digest: descriptor.digest,
        mediaType: c.manifests.get(descriptor.digest)?.mediaType ?? descriptor.mediaType,
      });
    }
    await c.addExtras(opts.signal);
    return c;
  }

  /**
   * The images' supply-chain artifacts (lading.json `extras[]`) in their image's repository:
   * cosign tags under their own tag, referrers for the referrers API and, for clients that only
   * know the referrers tag schema, a `sha256-<hex>` index listing them (made here, in memory).
   */
  private async addExtras(signal?: AbortSignal): Promise<void> {
    for (const img of this.target.bundle.ladingJson.images) {
      if (!img.extras?.length) continue;
      const repo = this.repositories.get(servedName(img.ref).repository);
      if (!repo) continue;
      for (const e of img.extras) {
        const d: Descriptor = { mediaType: e.mediaType, digest: e.digest as Digest, size: e.size };
        if (!this.target.bundle.hasBlob(d.digest)) continue;
        await this.walkArtifact(repo, d, signal);
        if (e.tag) repo.tags.set(e.tag, d.digest);
        else {
          const list = repo.referrers.get(e.subject as Digest) ?? [];
          if (!list.some((x) => x.digest === d.digest))
            list.push(e.artifactType ? { ...d, artifactType: e.artifactType } : d);
          repo.referrers.set(e.subject as Digest, list);
        }
      }
      for (const [subject, list] of repo.referrers) {
        const tag = referrersTag(subject);
        if (repo.tags.has(tag)) continue;
        const bytes = encodeJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: list });
        const desc = descriptorFor(bytes, MediaType.ociIndex);
        const parsed = parseManifest(bytes, MediaType.ociIndex, `referrers of ${subject}`);
        this.manifests.set(desc.digest, { descriptor: desc, mediaType: MediaType.ociIndex, bytes, parsed });
        repo.digests.set(desc.digest, desc);
        repo.tags.set(tag, desc.digest);
      }
    }
  }

  /** An artifact's nodes, without following its subject (the image it is about). */
  private async walkArtifact(repo: ServedRepository, root: Descriptor, signal?: AbortSignal): Promise<void> {
    await this.walkRepo(repo, root, false, signal);
  }

  private async walk(repo: ServedRepository, root: Descriptor, signal?: AbortSignal): Promise<void> {
    await this.walkRepo(repo, root, true, signal);
  }

  /** Every node under `root` into the repository's digests (once per repository). */
  private async walkRepo(
    repo: ServedRepository,
    root: Descriptor,
    withSubject: boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    await walkDescriptors(
      [root],
      async (d) => {
        if (!isManifestOrIndexType(d.mediaType)) return undefined;
        const m = await this.manifest(d, signal);
        if (!m) return undefined;
        return successors(m.parsed, { subject: withSubject });
      },
      {
        enter: (d) => {
          if (repo.digests.has(d.digest)) return false;
          repo.digests.set(d.digest, d);
          return true;
        },
        ...(signal ? { signal } : {}),
      },
    );
  }

  /** Read and parse a manifest once; undefined when the bundle leaves it out (differential). */
  private async manifest(d: Descriptor, signal?: AbortSignal): Promise<ServedManifest | undefined> {
    const have = this.manifests.get(d.digest);
    if (have) return have;
    const bundle = this.target.bundle;
    if (!bundle.hasBlob(d.digest)) return undefined;
    const bytes = await bundle.readMember(blobMemberName(d.digest), {
      limit: MAX_MANIFEST_BYTES,
      ...(signal ? { signal } : {}),
    });
    // What is served is what the digest names, whatever happened to the file since it was verified.
    const actual = digestOf(bytes, digestAlgorithm(d.digest));
    if (actual !== d.digest)
      throw new DigestMismatchError(d.digest, actual, `${bundle.path}: ${blobMemberName(d.digest)}`);
    const parsed = parseManifest(bytes, d.mediaType, `${bundle.path}: ${d.digest}`);
    const m: ServedManifest = { descriptor: d, mediaType: parsed.mediaType, bytes, parsed };
    this.manifests.set(d.digest, m);
    return m;
  }

  /** Repository names, sorted (the catalog). */
  names(): string[] {
    return [...this.repositories.keys()].sort();
  }
}
