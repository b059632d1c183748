import { createHash } from 'node:crypto';
import {
  assertVerified,
  BundleTarget,
  type CopyEvent,
  type CopyStats,
  copy,
  DEFAULT_CONCURRENCY,
  type Digest,
  digestOf,
  fanOut,
  LadingError,
  Limiter,
  loadPublicKey,
  publicKeyFingerprint,
  Registry,
  type RegistryOptions,
  type RegistryRepository,
  throwIfAborted,
  VerificationError,
  type VerifyProgress,
  type VerifyReport,
  verifyBundle,
  verifySignature,
} from '@lading/core';
import { type BundleLocationOptions, openBundleLocation } from '../bundle-location.ts';
import { formatRegistryTarget, type RegistryTarget } from '../registry-target.ts';
import {
  BaseBundleMissingError,
  ExistingTagError,
  PushIncompleteError,
  UnverifiedPushError,
} from './errors.ts';
import { type ExtrasPushCounts, pushExtras } from './extras.ts';
import { BookedRepository, MountBook } from './mounts.ts';
import {
  type ItemGraph,
  type OnExistingTag,
  type PushItem,
  planPush,
  resolveTargetTags,
  type TagConflict,
  tagConflicts,
  walkGraph,
} from './plan.ts';
import { bundleFiles, hasVerifiedStamp, writeVerifiedStamp } from './verified-stamp.ts';

export type ItemStatus = 'pushed' | 'skipped' | 'failed' | 'planned';

/** One image or chart in the result (`--json`). */
export interface PushItemResult {
  kind: 'image' | 'chart';
  source: string;
  target: string;
  digest: string;
  status: ItemStatus;
  /** Bytes of blobs sent for this item. */
  bytes: number;
  /**
   * The target tag pointed at another digest before this push: `overwrite` moved it to the
   * bundled digest (or would, in a dry run), `skip` kept it (the item was not pushed).
   */
  existingTag?: { digest: string; action: 'overwrite' | 'skip' };
  error?: { code: string; message: string; hint?: string; exitCode: number };
}

export interface PushSummary {
  images: { total: number; pushed: number; skipped: number; failed: number };
  blobs: { pushed: number; mounted: number; skipped: number };
  manifests: { pushed: number; skipped: number };
  /** Supply-chain artifacts (lading.json extras[]): pushed, already there, referrers tag indexes written. */
  extras: ExtrasPushCounts;
  /** Blob bytes sent over the wire. */
  bytes: number;
  /** Whole run, verification included. */
  durationMs: number;
  /** Verification alone (0 with --skip-verify). */
  verifyMs: number;
  /**
   * Target tags that pointed at another digest before the push, always listed: moved to the
   * bundled digest (`overwrite`; in a dry run, would be) or kept (`skip`).
   */
  existingTags: Array<TagConflict & { action: 'overwrite' | 'skip' }>;
}

export interface PushResult {
  ok: boolean;
  /**
   * sumsDigest: sha256 of the SHA256SUMS that was verified and pushed (the bundle's identity; the
   * same as `lading-load verify --json`'s sumsDigest).
   */
  bundle: { path: string; name: string; version: string; sumsDigest: string };
  registry: string;
  verified: boolean;
  /**
   * full: every member hashed now; stamp: this unchanged local bundle passed the full
   * verification before (its signature and metadata checked now); skipped: --skip-verify.
   */
  verification: 'full' | 'stamp' | 'skipped';
  dryRun: boolean;
  items: PushItemResult[];
  summary: PushSummary;
}

export type PushEvent =
  | { type: 'verify'; progress: VerifyProgress }
  | { type: 'verified'; report: VerifyReport }
  | { type: 'planned'; items: PushItem[]; bytesTotal: number }
  | { type: 'progress'; bytesDone: number; bytesTotal: number; itemsDone: number; itemsTotal: number }
  | { type: 'item'; item: PushItemResult }
  | { type: 'warning'; message: string };

export interface PushOptions {
  /** The bundle: tar, first part of a split bundle, extracted directory, or `s3://bucket/key`. */
  bundle: string;
  /** s3:// bundles: `--endpoint`, `--region` (or a client, in tests). */
  location?: Omit<BundleLocationOptions, 'signal'>;
  registry: RegistryTarget;
  /** Release public key (PEM path or text). Required unless `skipVerify`. */
  publicKey?: string | undefined;
  /** Push without verifying (the caller warns loudly). */
  skipVerify?: boolean;
  /** TLS, credentials, keychain, plain HTTP… for the target registry. */
  registryOptions?: RegistryOptions;
  /** Push what can be pushed and report failures at the end (PushIncompleteError). */
  continueOnError?: boolean;
  /** Size of the one Limiter shared by every transfer (default 4). */
  concurrency?: number;
  /** Verify, plan and check the registry (read-only); write nothing. */
  dryRun?: boolean;
  /**
   * A target tag that already points at another digest: `overwrite` (default) moves it, `skip`
   * keeps it and leaves that item out, `fail` stops before anything is written (ExistingTagError).
   */
  onExistingTag?: OnExistingTag;
  /**
   * Run the full verification even when a stamp says this unchanged bundle passed it before
   * (see verified-stamp.ts).
   */
  reverify?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: PushEvent) => void;
}

function errorInfo(err: unknown): NonNullable<PushItemResult['error']> {
  if (err instanceof LadingError) {
    return {
      code: err.code,
      message: err.message,
      ...(err.hint ? { hint: err.hint } : {}),
      exitCode: err.exitCode,
    };
  }
  return { code: 'UNEXPECTED', message: (err as Error)?.message ?? String(err), exitCode: 1 };
}

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * The bundle opened for pushing is the one that verified: the signature over its SHA256SUMS
 * (as read now) holds, and index.json and lading.json (where the roots come from) match it.
 * Every blob and manifest is then checked against its digest while it streams to the registry.
 */
async function recheckOpened(target: BundleTarget, publicKey: string): Promise<void> {
  const b = target.bundle;
  const key = await loadPublicKey(publicKey);
  const problems: string[] = [];
  if (!verifySignature(b.sumsBytes, b.signature, key))
    problems.push('SHA256SUMS.sig does not verify any more');
  for (const name of ['index.json', 'lading.json']) {
    const want = b.sums.get(name);
    const got = sha256Hex(await b.readMember(name));
    if (want !== got) problems.push(`${name} changed since it was verified`);
  }
  if (problems.length > 0) {
    throw new (class extends VerificationError {
      override readonly code = 'BUNDLE_CHANGED';
    })(`${b.path}: the bundle changed between verification and push: ${problems.join('; ')}`, {
      hint: 'make sure nothing writes the bundle while it is pushed, then push again',
    });
  }
}

/**
 * Push a bundle into a registry (README.md, image paths at the target): verify first; plan every target path (stop on
 * collisions); check that blobs a differential bundle leaves out are in the registry; then copy
 * every image and chart straight from the tar: blobs before manifests, children before indexes,
 * the tag with the root manifest last. What the registry already has is skipped (an image whose
 * tag already points at the bundled digest with one HEAD); a blob already sent to another
 * repository in this run is mounted from there. One Limiter bounds every transfer.
 */
export async function pushBundle(opts: PushOptions): Promise<PushResult> {
  const started = Date.now();
  const { signal } = opts;
  const emit = (e: PushEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // a display must not break the push
    }
  };

  // 1. Verify (nothing is written before this passes).
  if (!opts.skipVerify && !opts.publicKey) throw new UnverifiedPushError(opts.bundle);
  const loc = await openBundleLocation(opts.bundle, {
    ...(opts.location ?? {}),
    ...(signal ? { signal } : {}),
  });
  let bundle: BundleTarget | undefined;
  let verified = false;
  let verification: PushResult['verification'] = 'skipped';
  let verifyMs = 0;
  try {
    // Stat identity first: a write during the verification then invalidates the stamp.
    const files =
      !opts.skipVerify && opts.publicKey && loc.kind === 'local' ? await bundleFiles(opts.bundle) : undefined;
    const fingerprint =
      !opts.skipVerify && opts.publicKey ? publicKeyFingerprint(await loadPublicKey(opts.publicKey)) : '';
    if (!opts.skipVerify && opts.publicKey && !opts.reverify) {
      // A bundle that does not even open goes to the full verification, which names what is wrong.
      const opened = files
        ? await BundleTarget.open(loc.input, signal ? { signal } : {}).catch(() => undefined)
        : undefined;
      if (
        opened &&
        files &&
        (await hasVerifiedStamp(files, fingerprint, digestOf(opened.bundle.sumsBytes)))
      ) {
        bundle = opened;
        verification = 'stamp';
      } else await opened?.close();
    }
    if (!opts.skipVerify && opts.publicKey && verification !== 'stamp') {
      const report = await verifyBundle(loc.input, {
        publicKey: opts.publicKey,
        ...(signal ? { signal } : {}),
        onProgress: (progress) => emit({ type: 'verify', progress }),
      });
      assertVerified(report);
      emit({ type: 'verified', report });
      verification = 'full';
      // What is pushed is what was verified: the same SHA256SUMS, read through one open file.
      bundle = await BundleTarget.open(loc.input, {
        ...(signal ? { signal } : {}),
        ...(report.sumsDigest ? { expectSumsDigest: report.sumsDigest } : {}),
      });
      if (files) {
        await writeVerifiedStamp({
          files,
          keyFingerprint: fingerprint,
          sumsDigest: digestOf(bundle.bundle.sumsBytes),
        });
      }
    }
    verified = verification !== 'skipped';
    verifyMs = verified ? Date.now() - started : 0;
    bundle ??= await BundleTarget.open(loc.input, signal ? { signal } : {});
  } catch (err) {
    await loc.close().catch(() => {});
    throw err;
  }
  // Blobs go up as one streamed PATCH each and a closing PUT (as docker push does): the chunked
  // upload holds each 16 MiB chunk in memory and copies it; a killed push resumes at blob
  // granularity anyway. Unlike one streamed PUT, a PATCH can be ended early on SIGINT, so the
  // session is cancelled instead of left open on the registry (core/registry/upload.ts).
  const registry = new Registry(opts.registry.host, { mode: 'streamed', ...opts.registryOptions });
  try {
    if (verified && opts.publicKey) await recheckOpened(bundle, opts.publicKey);
    const lading = bundle.bundle.ladingJson;

    // 2. Plan: target paths (collisions stop here), graphs and totals.
    const items = planPush(bundle, opts.registry);
    const graphs = new Map<PushItem, ItemGraph>();
    let bytesTotal = 0;
    for (const item of items) {
      const g = await walkGraph(bundle, item.descriptor, signal ? { signal } : {});
      graphs.set(item, g);
      bytesTotal += g.bytes;
    }
    emit({ type: 'planned', items, bytesTotal });

    const repos = new Map<string, RegistryRepository>();
    const repoOf = (name: string) => {
      let r = repos.get(name);
      if (!r) {
        r = registry.repository(name);
        repos.set(name, r);
      }
      return r;
    };
    const book = new MountBook();
    // One destination object per repository: the copy engine joins transfers in flight per object.
    const booked = new Map<string, BookedRepository>();
    const bookedOf = (name: string) => {
      let b = booked.get(name);
      if (!b) {
        b = new BookedRepository(repoOf(name), book);
        booked.set(name, b);
      }
      return b;
    };
    const limiter = new Limiter(opts.concurrency ?? DEFAULT_CONCURRENCY);
    const call = signal ? { signal } : {};

    // 3. Reachable, trusted, credentials accepted? (clear TLS/auth errors before any work)
    await registry.ping(call);

    // 4. Target tags that point elsewhere: all found before any byte is written.
    const onExisting = opts.onExistingTag ?? 'overwrite';
    const existing = await resolveTargetTags(items, repoOf, limiter, call);
    const conflictOf = tagConflicts(items, existing);
    const conflicts = [...conflictOf.values()];
    if (onExisting === 'fail') {
      // Every tag must be known before anything is written.
      for (const state of existing.values()) if ('error' in state) throw state.error;
    }
    if (onExisting === 'fail' && conflicts.length > 0) {
      throw new ExistingTagError(formatRegistryTarget(opts.registry), conflicts);
    }
    for (const c of conflicts) {
      emit({
        type: 'warning',
        message:
          onExisting === 'skip'
            ? `${c.target} points at ${c.existing}; keeping it (--on-existing-tag skip), ${c.source} is not pushed`
            : `${c.target} points at ${c.existing}; ${opts.dryRun ? 'it would be moved' : 'moving it'} to ${c.bundled}`,
      });
    }

    // 5. Differential bundle: every blob it leaves out must already be in the registry.
    await checkOmitted(opts, bundle, items, graphs, repoOf, book, limiter);

    // 6. Copy.
    const results = new Map<PushItem, PushItemResult>();
    const totals: CopyStats = {
      blobs: { copied: 0, skipped: 0, mounted: 0, bytes: 0 },
      manifests: { copied: 0, skipped: 0 },
    };
    let bytesDone = 0;
    let itemsDone = 0;
    const progress = () =>
      emit({ type: 'progress', bytesDone, bytesTotal, itemsDone, itemsTotal: items.length });
    const finish = (item: PushItem, r: PushItemResult) => {
      results.set(item, r);
      itemsDone++;
      emit({ type: 'item', item: r });
      progress();
    };
    const base = (item: PushItem): Omit<PushItemResult, 'status'> => ({
      kind: item.kind,
      source: item.source,
      target: item.target,
      digest: item.descriptor.digest,
      bytes: 0,
    });

    const pushOne = async (item: PushItem, s: AbortSignal): Promise<void> => {
      const repo = repoOf(item.repository);
      const graph = graphs.get(item) as ItemGraph;
      const conflict = conflictOf.get(item);
      if (conflict && onExisting === 'skip') {
        bytesDone += graph.bytes;
        finish(item, {
          ...base(item),
          status: 'skipped',
          existingTag: { digest: conflict.existing, action: 'skip' },
        });
        return;
      }
      const moved = conflict
        ? { existingTag: { digest: conflict.existing, action: 'overwrite' as const } }
        : {};
      // The whole image is there when its tag (resolved in the plan) or, untagged, its digest names it.
      const state = existing.get(item);
      if (state && 'error' in state) throw state.error;
      const present = state
        ? state.digest === item.descriptor.digest
        : await limiter.run(() => repo.exists(item.descriptor, { signal: s }), s);
      if (present) {
        for (const b of graph.blobs) book.note(b.digest, item.repository);
        bytesDone += graph.bytes;
        totals.manifests.skipped++;
        finish(item, { ...base(item), status: 'skipped' });
        return;
      }
      if (opts.dryRun) {
        finish(item, { ...base(item), ...moved, status: 'planned' });
        return;
      }
      const dst = bookedOf(item.repository);
      const sent = new Map<string, number>();
      let itemBytes = 0;
      const onProgress = (e: CopyEvent) => {
        if (e.type === 'blob-bytes') {
          const prev = sent.get(e.desc.digest) ?? 0;
          bytesDone += e.bytes - prev;
          itemBytes += e.bytes - prev;
          sent.set(e.desc.digest, e.bytes);
          progress();
        } else if (e.type === 'blob-skipped' || e.type === 'blob-mounted') {
          bytesDone += e.desc.size;
          progress();
        }
      };
      const r = await copy(bundle, item.source, dst, item.tag ?? item.descriptor.digest, {
        limiter,
        signal: s,
        label: item.source,
        onProgress,
        mountFrom: (d) => book.candidates(d.digest, item.repository),
      });
      if (r.digest !== item.descriptor.digest) {
        throw new Error(
          `internal: ${item.source} was copied as ${r.digest}, expected ${item.descriptor.digest}`,
        );
      }
      totals.blobs.copied += r.blobs.copied;
      totals.blobs.skipped += r.blobs.skipped;
      totals.blobs.mounted += r.blobs.mounted;
      totals.blobs.bytes += r.blobs.bytes;
      totals.manifests.copied += r.manifests.copied;
      totals.manifests.skipped += r.manifests.skipped;
      finish(item, { ...base(item), ...moved, status: 'pushed', bytes: itemBytes });
    };

    // Images run side by side (bounded); every transfer goes through the one limiter. The first
    // failure stops the others (fail-fast fan-out) unless --continue-on-error.
    try {
      await fanOut(
        items,
        async (item, s) => {
          try {
            await pushOne(item, s);
          } catch (err) {
            if (!opts.continueOnError || signal?.aborted) throw err;
            finish(item, { ...base(item), status: 'failed', error: errorInfo(err) });
          }
        },
        { concurrency: limiter.concurrency * 2, ...(signal ? { signal } : {}) },
      );
    } catch (err) {
      throwIfAborted(signal);
      throw err;
    }
    throwIfAborted(signal);

    // 7. Supply-chain artifacts, after the images they are about (their subjects are there now).
    const extrasCounts: ExtrasPushCounts = { pushed: 0, skipped: 0, indexes: 0, replaced: [] };
    if (!opts.dryRun) {
      for (const item of items) {
        const r = results.get(item);
        const extras = lading.images.find((i) => i.ref === item.source)?.extras;
        if (!extras?.length || !r || r.status === 'failed' || r.existingTag?.action === 'skip') continue;
        try {
          const c = await pushExtras(bundle, repoOf(item.repository), extras, {
            ...call,
            source: item.source,
          });
          extrasCounts.pushed += c.pushed;
          extrasCounts.skipped += c.skipped;
          extrasCounts.indexes += c.indexes;
          for (const x of c.replaced) {
            extrasCounts.replaced.push(x);
            emit({
              type: 'warning',
              message: `${x.target} named ${x.existing}; replaced by the bundled ${x.bundled}`,
            });
          }
        } catch (err) {
          if (!opts.continueOnError) throw err;
          r.status = 'failed';
          r.error = errorInfo(err);
        }
      }
    }

    const out = items.map((i) => results.get(i) as PushItemResult);
    const result: PushResult = {
      ok: out.every((r) => r.status !== 'failed'),
      bundle: {
        path: opts.bundle,
        name: lading.name,
        version: lading.version,
        sumsDigest: digestOf(bundle.bundle.sumsBytes),
      },
      registry: formatRegistryTarget(opts.registry),
      verified,
      verification,
      dryRun: Boolean(opts.dryRun),
      items: out,
      summary: {
        images: {
          total: out.length,
          pushed: out.filter((r) => r.status === 'pushed').length,
          skipped: out.filter((r) => r.status === 'skipped').length,
          failed: out.filter((r) => r.status === 'failed').length,
        },
        blobs: { pushed: totals.blobs.copied, mounted: totals.blobs.mounted, skipped: totals.blobs.skipped },
        manifests: { pushed: totals.manifests.copied, skipped: totals.manifests.skipped },
        extras: extrasCounts,
        bytes: totals.blobs.bytes,
        durationMs: Date.now() - started,
        verifyMs,
        existingTags: conflicts.map((c) => ({ ...c, action: onExisting === 'skip' ? 'skip' : 'overwrite' })),
      },
    };
    return result;
  } finally {
    await registry.close().catch(() => {});
    await bundle.close().catch(() => {});
    await loc.close().catch(() => {});
  }
}

/** Throw PushIncompleteError when a `--continue-on-error` push left failures. */
export function assertComplete(result: PushResult): void {
  const failed = result.items.filter((r) => r.status === 'failed');
  if (failed.length === 0) return;
  throw new PushIncompleteError(
    failed.map((f) => ({ source: f.source, target: f.target, error: f.error?.message ?? 'failed' })),
    result.items.length,
    failed.some((f) => f.error?.exitCode === 3),
  );
}

/**
 * A differential bundle leaves out blobs its base bundle carried. Before anything is written,
 * check (HEAD) that each is in the target repository that needs it, or in another repository of
 * this push (then it is mounted). Missing ones stop the push naming the base bundle.
 */
async function checkOmitted(
  opts: PushOptions,
  bundle: BundleTarget,
  items: PushItem[],
  graphs: Map<PushItem, ItemGraph>,
  repoOf: (name: string) => RegistryRepository,
  book: MountBook,
  limiter: Limiter,
): Promise<void> {
  const since = bundle.bundle.ladingJson.since;
  const need = new Map<string, { desc: import('@lading/core').Descriptor; repos: Set<string> }>();
  for (const item of items) {
    for (const d of graphs.get(item)?.omitted ?? []) {
      const e = need.get(d.digest) ?? { desc: d, repos: new Set<string>() };
      e.repos.add(item.repository);
      need.set(d.digest, e);
    }
  }
  if (need.size === 0 || !since) return;
  const allRepos = [...new Set(items.map((i) => i.repository))];
  const call = opts.signal ? { signal: opts.signal } : {};
  const missing: Array<{ digest: string; repositories: string[] }> = [];
  await Promise.all(
    [...need.values()].map(async ({ desc, repos }) => {
      const lacking: string[] = [];
      let found = false;
      for (const r of repos) {
        const ok = await limiter.run(() => repoOf(r).exists(desc, call), opts.signal);
        if (ok) {
          book.note(desc.digest, r);
          found = true;
        } else lacking.push(r);
      }
      // In one repository of this push: mounted from there into the others.
      if (lacking.length === 0 || found) return;
      // Elsewhere in the registry (another repository of this push): mounted from there.
      for (const r of allRepos) {
        if (repos.has(r)) continue;
        if (await limiter.run(() => repoOf(r).exists(desc, call), opts.signal)) {
          book.note(desc.digest, r);
          return;
        }
      }
      missing.push({ digest: desc.digest as Digest, repositories: lacking.sort() });
    }),
  );
  if (missing.length > 0) {
    missing.sort((a, b) => a.digest.localeCompare(b.digest));
    throw new BaseBundleMissingError(
      opts.bundle,
      formatRegistryTarget(opts.registry),
      { name: since.name, version: since.version, digest: since.digest },
      missing,
    );
  }
}
