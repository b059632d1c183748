import {
  artifactNodes,
  type BundleExtra,
  type BundleSignature,
  bytesStream,
  checkSignatures,
  copyArtifact,
  type Descriptor,
  type Digest,
  discoverExtras,
  type Fetcher,
  fanOut,
  fetchAll,
  type ImageKey,
  isIndexType,
  loadImageKey,
  matchesImageGlob,
  type OciLayout,
  parseManifest,
  UpstreamSignatureError,
} from '@lading/core';
import type { PulledImage } from './images.ts';
import type { SourceRegistries } from './sources.ts';
import type { Spec, SpecVerifyRule } from './spec/index.ts';

/**
 * Supply-chain artifacts of the pulled images (docs/bundle-format.md §6.2): found in the source repository for
 * every bundled manifest (the image, each kept platform manifest, and the upstream index when a
 * platform filter rewrote it), copied into the cache (without following their `subject`), and
 * checked against the spec's `verify:` rules. Nothing is written to the bundle here: the caller
 * adds `blobs` to the bundle's members, and a failed rule throws (exit 3) before any bundle file
 * exists.
 */
export interface ImageExtras {
  /** lading.json `extras[]` (empty when the image's `extras:` is false). */
  extras: BundleExtra[];
  /** lading.json `signatures[]` (the rules that matched the image). */
  signatures: BundleSignature[];
  /** Nodes to store in the bundle: every extra's manifest, config and layers, and the carried upstream index. */
  blobs: Descriptor[];
  /** The upstream index, carried when the bundled index differs from it. */
  upstreamIndex?: Descriptor;
  /** Rules that covered the image (`verify[0]`), for summaries. */
  rules: string[];
}

export interface ExtrasOptions {
  spec: Pick<Spec, 'extras' | 'verify' | 'images'>;
  sources: SourceRegistries;
  cache: OciLayout;
  signal?: AbortSignal;
  onMessage?: (message: string) => void;
}

function ruleLabel(rule: SpecVerifyRule): string {
  return `verify[${rule.index}] (${rule.keys.map((k) => k.path).join(', ')})`;
}

/** Whether the image carries its extras: its own `extras:`, else the spec's. */
function extrasWanted(spec: ExtrasOptions['spec'], ref: string): boolean {
  const own = spec.images.find((i) => i.normalized === ref)?.extras;
  return own ?? spec.extras;
}

async function childrenOf(cache: OciLayout, root: Descriptor, signal?: AbortSignal): Promise<Descriptor[]> {
  if (!isIndexType(root.mediaType)) return [];
  const bytes = await fetchAll(cache, root, { ...(signal ? { signal } : {}), source: root.digest });
  const parsed = parseManifest(bytes, root.mediaType, root.digest);
  return parsed.kind === 'index'
    ? parsed.index.manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size }))
    : [];
}

/**
 * Several images without a valid signature for their `verify:` rules (exit 3): every one, each
 * with its rule and reasons. Still an UpstreamSignatureError (the first one's fields), so callers
 * that handle one handle this.
 */
export class UpstreamSignaturesError extends UpstreamSignatureError {
  readonly failures: UpstreamSignatureError[];
  constructor(failures: UpstreamSignatureError[]) {
    const first = failures[0] as UpstreamSignatureError;
    super(first.image, first.rule, first.reasons, first.hint);
    this.message = `${failures.length} images have no valid signature for their verify: rules:\n${failures.map((f) => `  ${f.message}`).join('\n')}`;
    this.failures = failures;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      failures: this.failures.map((f) => ({ image: f.image, rule: f.rule, reasons: f.reasons })),
    };
  }
}

/** What collectExtras gives the bundle. */
export interface CollectedExtras {
  /** Per image reference. */
  images: Map<string, ImageExtras>;
  /** Content held in memory (the upstream indexes of filtered images), by digest: the fetcher for checks and the bundle. */
  held: Map<string, Buffer>;
}

/**
 * Discover, carry and check every image's extras. Images without a valid signature are all
 * reported (UpstreamSignatureError, or UpstreamSignaturesError for several); any other failure
 * stops all (thrown once every image's work has settled).
 */
export async function collectExtras(
  images: readonly PulledImage[],
  opts: ExtrasOptions,
): Promise<CollectedExtras> {
  const held = new Map<string, Buffer>();
  // signatures are checked against the cache, plus the held upstream indexes
  const fetcher: Fetcher = {
    fetch: (d, o) => {
      const b = held.get(d.digest);
      return b ? Promise.resolve(bytesStream(b)) : opts.cache.fetch(d, o);
    },
  };
  const keyCache = new Map<string, Promise<ImageKey>>();
  const keysOf = (rule: SpecVerifyRule) =>
    Promise.all(
      rule.keys.map((k) => {
        let p = keyCache.get(k.source);
        if (!p) {
          p = loadImageKey(k.source);
          keyCache.set(k.source, p);
        }
        return p;
      }),
    );
  const out = new Map<string, ImageExtras>();
  // every image's rules are checked even when one fails: all the images without a valid
  // signature are reported at once (any other failure stops them all)
  const unsigned: UpstreamSignatureError[] = [];
  await fanOut(
    images,
    async (img, signal) => {
      const so = { signal };
      const rules = opts.spec.verify.filter((r) => r.images.some((g) => matchesImageGlob(g, img.ref)));
      const carry = extrasWanted(opts.spec, img.ref);
      const result: ImageExtras = { extras: [], signatures: [], blobs: [], rules: rules.map(ruleLabel) };
      out.set(img.ref, result);
      if (!carry && rules.length === 0) return;
      const { repository } = opts.sources.open(img.ref);
      const root = img.descriptor;
      const children = await childrenOf(opts.cache, root, signal);
      const filtered = img.digest !== img.upstreamDigest;
      const manifests = new Map<string, Descriptor>([
        [root.digest, root],
        ...children.map((c) => [c.digest, c] as const),
      ]);
      if (filtered) {
        // the upstream index: resolved again (by digest) and its bytes carried
        // the upstream index: fetched again by digest and held in memory (not put in the cache,
        // whose indexes always have their children), its bytes carried into the bundle
        const got = await repository.getManifest(img.upstreamDigest, so);
        const desc = got.descriptor;
        held.set(desc.digest, got.bytes);
        manifests.set(desc.digest, desc);
        result.upstreamIndex = desc;
        result.blobs.push(desc);
      }
      const subjects = [
        filtered ? (img.upstreamDigest as Digest) : root.digest,
        ...children.map((c) => c.digest),
      ];
      const found = await discoverExtras(repository, subjects, { ...so, source: img.ref });
      for (const e of found) {
        const nodes = await artifactNodes(repository, e.descriptor, {
          ...so,
          source: `${img.ref} ${e.tag ?? `referrer ${e.descriptor.digest}`}`,
          ...(e.kind === 'referrer' ? { subject: e.subject } : {}),
        });
        await copyArtifact(repository, opts.cache, nodes, { ...so, source: img.ref });
        if (!carry) continue;
        const entry: BundleExtra = {
          kind: e.kind,
          digest: e.descriptor.digest,
          mediaType: e.descriptor.mediaType,
          size: e.descriptor.size,
          subject: e.subject,
        };
        if (e.artifactType) entry.artifactType = e.artifactType;
        if (e.tag) entry.tag = e.tag;
        result.extras.push(entry);
        result.blobs.push(...nodes);
      }
      for (const rule of rules) {
        const alternatives: Digest[][] = [[subjects[0]!]];
        if (children.length > 0) alternatives.push(children.map((c) => c.digest));
        let ok: Awaited<ReturnType<typeof checkSignatures>>;
        try {
          ok = await checkSignatures(
            {
              image: img.ref,
              rule: ruleLabel(rule),
              fetcher,
              extras: found,
              manifests,
              keys: await keysOf(rule),
              alternatives,
            },
            so,
          );
        } catch (err) {
          if (!(err instanceof UpstreamSignatureError)) throw err;
          unsigned.push(err);
          continue;
        }
        for (const s of ok) result.signatures.push({ rule: rule.index, ...s });
        opts.onMessage?.(`signature ${img.ref}: ${ok.length} valid (${ruleLabel(rule)})`);
      }
    },
    opts.signal ? { signal: opts.signal } : {},
  );
  const order = new Map(images.map((img, i) => [img.ref, i]));
  unsigned.sort((a, b) => (order.get(a.image) ?? 0) - (order.get(b.image) ?? 0));
  if (unsigned.length === 1) throw unsigned[0];
  if (unsigned.length > 1) throw new UpstreamSignaturesError(unsigned);
  return { images: out, held };
}
