import type { KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import {
  type BundleProgress,
  type BundleSignature,
  type CopyEvent,
  copyStandaloneLoader,
  type Descriptor,
  findStandaloneLoader,
  findUnfinished,
  formatBytes,
  InvalidInputError,
  isManifestOrIndexType,
  KEY_PASSPHRASE_ENV,
  type Keychain,
  Limiter,
  loadPrivateKey,
  OciLayout,
  parseSize,
  resolveEpoch,
  TAR_END_SIZE,
  tarEntrySize,
  throwIfAborted,
  writeBundle,
} from '@lading/core';
import { baseWarnings } from './base-warnings.ts';
import { type FetchedChart, fetchChart } from './charts.ts';
import { collectExtras } from './extras.ts';
import { earlierBundles, FallbackFetcher, recordBundle } from './fallback.ts';
import { collectImages, type PulledImage, pullImages } from './images.ts';
import { buildIndex, buildLadingJson, specFiles } from './manifest.ts';
import { defaultCacheDir, refuseExisting, resolveOutputPath } from './output.ts';
import {
  isMissingReference,
  ReferencesNotFoundError,
  resolveImages,
  type Unresolved,
  unresolved,
} from './resolve.ts';
import { type BaseBundle, loadBaseBundle } from './since.ts';
import { SourceRegistries } from './sources.ts';
import { checkFreeSpace, freeBytes } from './space.ts';
import { parseSpec, type Spec } from './spec/index.ts';

/** `lading-build create`: spec → charts → images → cache → signed bundle. */

export interface CreateOptions {
  spec: string;
  output: string;
  /** Private key file; required unless `unsigned`. */
  key?: string;
  unsigned?: boolean;
  /** Passphrase of an encrypted key (default: $LADING_KEY_PASSPHRASE). */
  passphrase?: string;
  splitSize?: string | number;
  since?: string;
  force?: boolean;
  cache?: string;
  concurrency?: number;
  caFiles?: string[];
  plainHttp?: string[];
  insecure?: boolean;
  keychain?: Keychain;
  signal?: AbortSignal;
  onProgress?: (e: CreateProgress) => void;
  /** Free bytes at a path (tests replace it). */
  freeSpace?: (path: string) => Promise<number>;
  /**
   * Put the standalone `lading-load` beside the bundle (`--with-loader`), its sha256 in
   * `NAME.tar.sha256`. `binary` names it; otherwise $LADING_LOADER_BINARY or the build output of
   * scripts/build-loader. Found before anything is downloaded.
   */
  withLoader?: { binary?: string };
}

export type CreateProgress =
  | { phase: 'message'; message: string }
  | { phase: 'pull'; bytesDone: number; bytesTotal: number; imagesDone: number; imagesTotal: number }
  | { phase: 'write'; bytesDone: number; bytesTotal: number; membersDone: number; membersTotal: number };

export interface CreateSummary {
  name: string;
  version: string;
  /** The bundle path (for a split bundle, the name the parts derive from). */
  path: string;
  /** Files written: the bundle, or its parts in order. */
  files: string[];
  checksumFile?: string;
  /** sha256 of the bundle (the whole tar). */
  digest: string;
  /** sha256 of its SHA256SUMS (what `--since` and `publish` name the bundle by). */
  sumsDigest: string;
  signed: boolean;
  images: number;
  charts: number;
  /** Distinct blobs stored in the bundle. */
  blobs: number;
  /** Bytes of the bundle file(s). */
  bytes: number;
  /** Bytes of the blobs stored. */
  blobBytes: number;
  /** Sum of every image's and chart's blob sizes minus the bytes of distinct blobs (shared layers stored once). */
  dedupSavedBytes: number;
  /** Bytes downloaded from registries in this run (the rest came from the cache). */
  downloadedBytes: number;
  /** Differential bundle: blobs left out because the base has them. */
  omittedBlobs: number;
  omittedBytes: number;
  since?: { name: string; version: string; digest: string };
  /** The standalone loader put beside the bundle (`--with-loader`). */
  loader?: { path: string; sha256: string; size: number };
  platforms: string[];
  imageList: Array<{
    ref: string;
    digest: string;
    upstreamDigest: string;
    platforms: string[];
    size: number;
    from?: string[];
    /** Supply-chain artifacts carried with it. */
    extras: number;
    /** Upstream signatures checked by `verify:` rules. */
    signatures: BundleSignature[];
    /** The `verify:` rules that covered it. */
    rules: string[];
  }>;
  chartList: Array<{ name: string; version: string; source: string; digest: string; images: string[] }>;
  cache: string;
  seconds: number;
  /** What the build went on despite (also printed as `warning:` lines): a base that does not check out. */
  warnings?: string[];
}

const OCTET = 'application/octet-stream';

/** Load the signing key first: a wrong passphrase must fail before any download. */
async function loadKey(opts: CreateOptions): Promise<KeyObject | undefined> {
  if (opts.key && opts.unsigned) {
    throw new InvalidInputError('--key and --unsigned contradict each other', { hint: 'give one of them' });
  }
  if (!opts.key) {
    if (opts.unsigned) return undefined;
    throw new InvalidInputError('no signing key: bundles are signed unless you ask otherwise', {
      hint: 'pass --key release.key (lading-build keys generate makes one) or --unsigned',
    });
  }
  const pass = opts.passphrase ?? process.env[KEY_PASSPHRASE_ENV];
  return loadPrivateKey(opts.key, pass);
}

export async function createBundle(opts: CreateOptions): Promise<CreateSummary> {
  const started = Date.now();
  const { signal } = opts;
  const so = signal ? { signal } : {};
  const say = (message: string) => opts.onProgress?.({ phase: 'message', message });
  const free = opts.freeSpace ?? freeBytes;

  const spec: Spec = await parseSpec(opts.spec);
  const loaderBinary = opts.withLoader
    ? await findStandaloneLoader(opts.withLoader.binary ? { source: opts.withLoader.binary } : {})
    : undefined;
  const splitSize = opts.splitSize !== undefined ? parseSize(opts.splitSize) : undefined;
  const key = await loadKey(opts);
  const output = await resolveOutputPath(opts.output, spec.name, spec.version);
  await refuseExisting(output, splitSize, opts.force ?? false);
  const epoch = resolveEpoch();
  const concurrency = opts.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidInputError(`--concurrency ${concurrency} must be a whole number >= 1`);
  }

  const cacheDir = opts.cache ?? defaultCacheDir();
  const cache = await OciLayout.open(cacheDir, { create: true });
  const sources = new SourceRegistries({
    ...(opts.caFiles ? { caFiles: opts.caFiles } : {}),
    ...(opts.insecure ? { insecure: true } : {}),
    ...(opts.plainHttp ? { plainHttp: opts.plainHttp } : {}),
    ...(opts.keychain ? { keychain: opts.keychain } : {}),
  });
  const limiter = new Limiter(concurrency);
  const warnings: string[] = [];
  // Where the bundle's layers come from; it holds the earlier bundles open until the end.
  const blobSource = new FallbackFetcher(cache);
  try {
    let base: BaseBundle | undefined;
    if (opts.since) {
      base = await loadBaseBundle(opts.since, cache, signal, key);
      say(`base bundle: ${base.name} ${base.version} (${base.blobs.size} blobs the site already has)`);
      for (const w of baseWarnings(opts.since, base, spec)) {
        warnings.push(w);
        say(`warning: ${w}`);
      }
    }

    // 1. Charts (they may add images). A chart version that does not exist is noted and the next
    //    chart fetched: every missing reference is reported at once, after the images resolved.
    const charts: FetchedChart[] = [];
    const missing: Unresolved[] = [];
    for (const c of spec.charts) {
      throwIfAborted(signal);
      let fetched: FetchedChart;
      try {
        fetched = await fetchChart(c, {
          cache,
          sources,
          limiter,
          ...(opts.keychain ? { keychain: opts.keychain } : {}),
          ...(opts.caFiles ? { caFiles: opts.caFiles } : {}),
          ...(opts.insecure ? { insecure: true } : {}),
          ...so,
        });
      } catch (err) {
        if (!isMissingReference(err)) throw err;
        missing.push(unresolved(`chart ${c.name}${c.version ? ` ${c.version}` : ''}`, [c.place], err));
        continue;
      }
      charts.push(fetched);
      say(
        `chart ${fetched.name} ${fetched.version} from ${fetched.source}` +
          (fetched.images.length > 0 ? `: ${fetched.images.length} image(s)` : ''),
      );
    }

    // 2. Images: one copy per image into the cache (manifests, indexes and configs: the cache
    //    takes no layers), one shared limiter; each copy lists every node of its image. Each layer
    //    then goes into the bundle once, from what an interrupted build of this output finished,
    //    from a bundle built before, or from its registry.
    // Every image tag and digest resolved before any image is pulled; all that do not exist,
    // and the charts that do not, reported in one error.
    const resolved = await resolveImages(collectImages(spec, charts), { sources, limiter, ...so });
    missing.push(...resolved.missing);
    if (missing.length > 0) throw new ReferencesNotFoundError(missing);
    const requests = resolved.resolved;
    const park = join(cache.dir, 'unfinished');
    const unfinished = await findUnfinished(output, park);
    if (unfinished) {
      blobSource.add('unfinished', unfinished);
      say(`an interrupted build left ${unfinished.count} blob(s) finished: taking them from there`);
    }
    for (const b of await earlierBundles(cache.dir)) blobSource.add(b.name, b.store);
    // progress of the copies: the bytes of the nodes they move or find (layers are left out)
    const sizes = new Map<string, number>();
    const moved = new Map<string, number>();
    let bytesDone = 0;
    let bytesTotal = 0;
    let imagesDone = 0;
    const report = () =>
      opts.onProgress?.({ phase: 'pull', bytesDone, bytesTotal, imagesDone, imagesTotal: requests.length });
    const onEvent = (e: CopyEvent) => {
      if (e.reason === 'left-out') return;
      if (!sizes.has(e.desc.digest)) {
        sizes.set(e.desc.digest, e.desc.size);
        bytesTotal += e.desc.size;
      }
      const done = e.type === 'blob-bytes' ? e.bytes : e.type === 'blob-start' ? 0 : e.desc.size;
      const prev = moved.get(e.desc.digest) ?? 0;
      if (done > prev) {
        bytesDone += done - prev;
        moved.set(e.desc.digest, done);
      }
      report();
    };
    const images: PulledImage[] = await pullImages(requests, {
      sources,
      cache,
      limiter,
      blobSource,
      onEvent,
      onImage: (img) => {
        imagesDone++;
        report();
        say(
          `image ${img.ref} ${img.digest}${img.digest !== img.upstreamDigest ? ` (upstream ${img.upstreamDigest})` : ''}`,
        );
      },
      ...so,
    });

    // Supply-chain artifacts (signatures, SBOMs, referrers) into the cache, and the spec's
    // `verify:` rules checked: a missing or bad signature stops here, before any bundle file.
    const collected = await collectExtras(images, { spec, sources, cache, ...so, onMessage: say });
    const extras = collected.images;
    blobSource.hold(collected.held);

    // 3. What goes in: every node of every image and chart once, minus what the base has
    //    (manifests and indexes always stay: small, and they let the loader tag without the base).
    const all = new Map<string, Descriptor>();
    let summed = 0;
    for (const img of images) {
      summed += img.size;
      for (const b of img.blobs) all.set(b.digest, b);
      for (const b of extras.get(img.ref)?.blobs ?? []) {
        summed += b.size;
        all.set(b.digest, b);
      }
    }
    for (const c of charts) {
      for (const b of c.blobs) {
        summed += b.size;
        all.set(b.digest, b);
      }
    }
    const omitted: Descriptor[] = [];
    const blobs: Descriptor[] = [];
    for (const d of all.values()) {
      if (base?.blobs.has(d.digest) && !isManifestOrIndexType(d.mediaType)) omitted.push(d);
      else blobs.push({ mediaType: d.mediaType || OCTET, digest: d.digest, size: d.size });
    }
    omitted.sort((a, b) => (a.digest < b.digest ? -1 : 1));
    const uniqueBytes = [...all.values()].reduce((n, d) => n + d.size, 0);
    say(
      `${images.length} image(s) and ${charts.length} chart(s): ${all.size} blobs, ${formatBytes(uniqueBytes)}`,
    );

    // 4. Metadata.
    const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
    const ladingJson = buildLadingJson({
      spec,
      images,
      extras,
      charts,
      created,
      since: base
        ? {
            name: base.name,
            version: base.version,
            digest: base.sumsDigest,
            omittedBlobs: omitted.map((d) => d.digest),
          }
        : undefined,
    });
    const index = buildIndex(images, charts);
    const files = specFiles(spec);

    // 5. Free space at the output: the blobs plus headers and metadata (a generous estimate).
    const blobBytes = blobs.reduce((n, b) => n + b.size, 0);
    const estimate =
      blobs.reduce((n, b) => n + tarEntrySize(`blobs/sha256/${b.digest.slice(7)}`, b.size), TAR_END_SIZE) +
      4 * 1024 * 1024;
    await checkFreeSpace('bundle', dirname(output), estimate, free);

    // 6. The bundle.
    const written = await writeBundle({
      output: {
        path: output,
        ...(splitSize !== undefined ? { splitSize } : {}),
        overwrite: opts.force ?? false,
        journal: true,
        park,
        ...(unfinished ? { adopt: unfinished.files } : {}),
      },
      ladingJson,
      index,
      files,
      blobs: { fetcher: blobSource, descriptors: blobs },
      limiter,
      ...(key ? { key } : {}),
      epoch,
      ...so,
      onProgress: (p: BundleProgress) => {
        if (p.phase === 'writing' || p.phase === 'planned' || p.phase === 'done') {
          opts.onProgress?.({
            phase: 'write',
            bytesDone: p.bytesDone,
            bytesTotal: p.bytesTotal,
            membersDone: p.membersDone,
            membersTotal: p.membersTotal,
          });
        }
      },
    });

    await recordBundle(cache.dir, written.path, written.files);

    const summary: CreateSummary = {
      name: spec.name,
      version: spec.version,
      path: written.path,
      files: written.files,
      digest: written.digest,
      sumsDigest: written.sumsDigest,
      signed: written.signed,
      images: images.length,
      charts: charts.length,
      blobs: written.blobs,
      bytes: written.size,
      blobBytes,
      dedupSavedBytes: summed - uniqueBytes,
      downloadedBytes: images.reduce((n, i) => n + i.downloaded, 0) + blobSource.downloaded,
      omittedBlobs: omitted.length,
      omittedBytes: omitted.reduce((n, d) => n + d.size, 0),
      platforms: spec.platforms ?? [],
      imageList: written.ladingJson.images.map((i) => ({
        ref: i.ref,
        digest: i.digest,
        upstreamDigest: i.upstreamDigest,
        platforms: i.platforms,
        size: i.size,
        ...(i.from ? { from: i.from } : {}),
        extras: i.extras?.length ?? 0,
        signatures: i.signatures ?? [],
        rules: extras.get(i.ref)?.rules ?? [],
      })),
      chartList: written.ladingJson.charts.map((c) => ({
        name: c.name,
        version: c.version,
        source: c.source,
        digest: c.digest,
        images: c.images,
      })),
      cache: cache.dir,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    if (written.checksumFile) summary.checksumFile = written.checksumFile;
    if (loaderBinary) {
      const loader = await copyStandaloneLoader(written, {
        source: loaderBinary,
        ...so,
        ...(key ? { key } : {}),
      });
      summary.loader = { path: loader.path, sha256: loader.sha256, size: loader.size };
      summary.checksumFile = loader.checksumFile;
    }
    if (base) summary.since = { name: base.name, version: base.version, digest: base.sumsDigest };
    summary.warnings = warnings;
    return summary;
  } finally {
    await blobSource.close();
    await sources.close();
  }
}
