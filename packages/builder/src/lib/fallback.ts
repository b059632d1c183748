import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  BundleTarget,
  bytesStream,
  type CallOptions,
  type Descriptor,
  type Fetcher,
  isManifestOrIndexType,
  MediaType,
  type OciLayout,
  type ReadOnlyStorage,
  type Rejecter,
  writeFileAtomic,
} from '@lading/core';

/**
 * Where create's bundle takes its blobs from, in order: documents held in memory (an upstream
 * index kept beside a filtered one), the content cache (manifests, indexes, configs), the
 * blobs an interrupted build finished (`findUnfinished`), the bundles this cache built before,
 * and last the registry that serves the image. The image copy (registry → cache) brings
 * everything but the layers (`leavesOut`); a layer goes from wherever it is straight into the
 * bundle, written once. The bundle verifies every blob it takes; one that fails is taken from
 * the next place (`reject`).
 */
export class FallbackFetcher implements ReadOnlyStorage, Rejecter {
  private readonly cache: OciLayout;
  private readonly places: Array<{ name: string; store: ReadOnlyStorage }> = [];
  private readonly sources = new Map<string, Fetcher>();
  private readonly held = new Map<string, Buffer>();
  private readonly servedBy = new Map<string, string>();
  private readonly rejected = new Map<string, Set<string>>();
  /** Bytes asked of registries (a blob fetched again counts again). */
  downloaded = 0;
  /** Bytes taken from an interrupted build or an earlier bundle. */
  reused = 0;

  constructor(cache: OciLayout) {
    this.cache = cache;
    this.places.push({ name: 'cache', store: cache });
  }

  /** Does the image copy leave this blob to the bundle? Layers and other blobs that are not configs. */
  static leavesOut(desc: Descriptor): boolean {
    return (
      !isManifestOrIndexType(desc.mediaType) &&
      desc.mediaType !== MediaType.dockerConfig &&
      !/config/i.test(desc.mediaType)
    );
  }

  /** Where to pull these blobs from when no local place has them (the first source named wins). */
  remember(descs: readonly Descriptor[], fetcher: Fetcher): void {
    for (const d of descs) if (!this.sources.has(d.digest)) this.sources.set(d.digest, fetcher);
  }

  /** Serve these documents from memory. */
  hold(documents: ReadonlyMap<string, Buffer>): void {
    for (const [digest, bytes] of documents) this.held.set(digest, bytes);
  }

  /** Another local place, tried after the cache and the places added before it. */
  add(name: string, store: ReadOnlyStorage): void {
    this.places.push({ name, store });
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.held.has(desc.digest) || this.sources.has(desc.digest) || this.cache.exists(desc);
  }

  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    const held = this.held.get(desc.digest);
    if (held) return bytesStream(held);
    const no = this.rejected.get(desc.digest);
    for (const p of this.places) {
      if (no?.has(p.name)) continue;
      if (await p.store.exists(desc, opts).catch(() => false)) {
        this.servedBy.set(desc.digest, p.name);
        if (p.name !== 'cache') this.reused += desc.size;
        return p.store.fetch(desc, opts);
      }
    }
    const source = this.sources.get(desc.digest);
    if (!source || no?.has('registry')) return this.cache.fetch(desc, opts); // names what is missing
    this.servedBy.set(desc.digest, 'registry');
    this.downloaded += desc.size;
    return source.fetch(desc, opts);
  }

  /** Close the local places that hold files open (the earlier bundles opened on first use). */
  async close(): Promise<void> {
    for (const p of this.places) {
      const closable = p.store as Partial<{ close: () => Promise<void> }>;
      if (p.name !== 'cache' && typeof closable.close === 'function') await closable.close().catch(() => {});
    }
  }

  reject(desc: Descriptor): boolean {
    const by = this.servedBy.get(desc.digest);
    if (!by || by === 'registry') return false;
    let no = this.rejected.get(desc.digest);
    if (!no) {
      no = new Set();
      this.rejected.set(desc.digest, no);
    }
    no.add(by);
    return true;
  }
}

/** The bundles a cache built, newest first (`<cache>/lading-bundles.json`). */
const BUNDLES_FILE = 'lading-bundles.json';
const KEEP_BUNDLES = 4;

interface BuiltBundle {
  path: string;
  files: Array<{ path: string; size: number; mtimeMs: number }>;
}

async function builtBundles(cacheDir: string): Promise<BuiltBundle[]> {
  try {
    const doc = JSON.parse(await readFile(join(cacheDir, BUNDLES_FILE), 'utf8')) as {
      bundles?: BuiltBundle[];
    };
    return Array.isArray(doc.bundles) ? doc.bundles : [];
  } catch {
    return [];
  }
}

/** Remember a bundle this cache built, so the next build can take unchanged layers from it. */
export async function recordBundle(cacheDir: string, path: string, files: readonly string[]): Promise<void> {
  const entry: BuiltBundle = { path, files: [] };
  for (const f of files) {
    const st = await stat(f);
    entry.files.push({ path: f, size: st.size, mtimeMs: st.mtimeMs });
  }
  const rest = (await builtBundles(cacheDir)).filter((b) => b.path !== path);
  const bundles = [entry, ...rest].slice(0, KEEP_BUNDLES);
  await writeFileAtomic(join(cacheDir, BUNDLES_FILE), `${JSON.stringify({ bundles }, null, 2)}\n`);
}

/**
 * A bundle built before, as a place for blobs: opened (its headers read) on first use, and only
 * while its files are unchanged since it was built; otherwise it holds nothing.
 */
class EarlierBundle implements ReadOnlyStorage {
  private readonly built: BuiltBundle;
  private opened: Promise<BundleTarget | undefined> | undefined;

  constructor(built: BuiltBundle) {
    this.built = built;
  }

  private target(): Promise<BundleTarget | undefined> {
    this.opened ??= (async () => {
      for (const f of this.built.files) {
        const st = await stat(f.path).catch(() => undefined);
        if (!st || st.size !== f.size || st.mtimeMs !== f.mtimeMs) return undefined;
      }
      return BundleTarget.open(this.built.path).catch(() => undefined);
    })();
    return this.opened;
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    const t = await this.target();
    return t ? t.exists(desc, opts) : false;
  }

  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    const t = await this.target();
    if (!t) throw new Error(`${this.built.path} changed since it was built`);
    return t.fetch(desc, opts);
  }

  /** Close the bundle if it was opened (its file handles). */
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await (await opened)?.close();
  }
}

/** The bundles built with this cache before (unchanged ones serve blobs), newest first. */
export async function earlierBundles(
  cacheDir: string,
): Promise<Array<{ name: string; store: ReadOnlyStorage }>> {
  return (await builtBundles(cacheDir)).map((b) => ({
    name: `bundle ${b.path}`,
    store: new EarlierBundle(b),
  }));
}
