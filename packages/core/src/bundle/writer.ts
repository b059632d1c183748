import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Fetcher, ReadOnlyStorage } from '../content/index.ts';
import { copyGraphs } from '../copy/graph.ts';
import { type Digest, digestOf, digestStream } from '../digest/index.ts';
import { AbortedError, InvalidInputError, LadingError, throwIfAborted } from '../errors/index.ts';
import { type Descriptor, type ImageIndex, isManifestOrIndexType } from '../model/index.ts';
import { Limiter } from '../util/index.ts';
import { FILES_DIR } from './format.ts';
import type { LadingJson } from './lading-json.ts';
import { PlacedBundle } from './placed-bundle.ts';
import { PlacedOutput } from './placed-output.ts';
import { checkFileName, type PlanFile, planBundle, resolveEpoch } from './plan.ts';
import type { CycloneDxBom } from './sbom.ts';
import type { OutputOptions } from './split.ts';

/**
 * Writes a bundle (docs/bundle-format.md): members in the contract order (oci-layout, lading.json,
 * SHA256SUMS, SHA256SUMS.sig, index.json, sbom.cdx.json, files/…, blobs/sha256/…), byte-identical
 * for the same inputs and epoch. `planBundle` fixes every member and offset before the first
 * byte; metadata and files are written first, then the copy engine (the one `push` uses: its
 * retries, in-flight sharing, cancellation and progress) moves the blobs into the bundle, a
 * `PlacedBundle` that writes each at its place, verified. The output is atomic (temp + rename,
 * optionally split into parts) and is hashed behind the writes on a worker thread.
 */

/** An extra file: `name` is its path under `files/` (and in lading.json), `path` the local file. */
export interface BundleInputFile {
  name: string;
  path: string;
}

/** Where blobs come from (an OciLayout, a registry, …) and which ones go in. */
export interface BundleBlobs {
  /**
   * Where the bytes come from: a store, a registry repository, or a fetcher that tries several
   * (create: held documents, the cache, the registry). Blobs are verified by the bundle.
   */
  fetcher: Fetcher;
  /**
   * Every blob (manifests, indexes, configs, layers); duplicates are stored once. sha256 only.
   * A manifest's children that are not listed are left out (a differential bundle).
   */
  descriptors: readonly Descriptor[];
}

export interface BundleOutputSpec extends OutputOptions {
  path: string;
}

export interface BundleProgress {
  /**
   * `hashing` extra files; `planned` once, before the first byte is written, with the exact
   * `bytesTotal` (e.g. to check free space and abort through the signal); `writing`; `done`.
   */
  phase: 'hashing' | 'planned' | 'writing' | 'done';
  /** The member being hashed or written. */
  member?: string;
  membersDone: number;
  membersTotal: number;
  /** Bytes of the tar written so far / in all (known exactly before writing starts). */
  bytesDone: number;
  bytesTotal: number;
}

export interface WriteBundleOptions {
  /** The bundle file path, or the path plus split / overwrite options. */
  output: string | BundleOutputSpec;
  /** The bundle manifest. Its `files` list is filled in by the writer from `files`. */
  ladingJson: LadingJson;
  /** index.json: an OCI index (serialised compactly) or its exact bytes. */
  index: ImageIndex | Uint8Array;
  /** sbom.cdx.json; default: `buildSbom(ladingJson, { epoch })`. */
  sbom?: CycloneDxBom | object | Uint8Array;
  files?: readonly BundleInputFile[];
  blobs: BundleBlobs;
  /** Private key to sign SHA256SUMS with; without it the bundle is unsigned (no SHA256SUMS.sig). */
  key?: KeyObject;
  /** Timestamp of every tar entry and of the SBOM: seconds or a Date. Default: see `resolveEpoch`. */
  epoch?: number | Date;
  signal?: AbortSignal;
  onProgress?: (p: BundleProgress) => void;
  /** Bounds the blob transfers (shared with the caller's other work); default: 4 at a time. */
  limiter?: Limiter;
}

const DEFAULT_CONCURRENCY = 4;
/**
 * Attempts after the first for a blob whose transfer fails transiently (reset, 5xx, stall), with
 * the copy engine's backoff. One build moves hundreds of blobs: at a 20 % fault rate, 3 retries
 * still lost a blob in about one build in six.
 */
export const BUNDLE_BLOB_RETRIES = 5;

export interface WriteBundleResult {
  /** The bundle path (for split output, the name the parts are derived from). */
  path: string;
  /** Files now in place: the bundle, or its parts in order. */
  files: string[];
  /** `NAME.sha256` of a split bundle. */
  checksumFile?: string;
  size: number;
  /** sha256 of the whole tar (the concatenation of the parts). */
  digest: Digest;
  /** sha256 of the SHA256SUMS member (what a differential bundle's `since.digest` names). */
  sumsDigest: Digest;
  signed: boolean;
  /** Member paths in the order written. */
  members: string[];
  blobs: number;
  blobBytes: number;
  /** lading.json as written. */
  ladingJson: LadingJson;
  epoch: number;
}

/** A fetcher as the source of a copy (the engine asks the destination, never the source, what exists). */
function asSource(fetcher: Fetcher): ReadOnlyStorage {
  const f = fetcher as Partial<ReadOnlyStorage>;
  if (typeof f.exists === 'function') return fetcher as ReadOnlyStorage;
  return { fetch: (d, o) => fetcher.fetch(d, o), exists: async () => true };
}

/** Write a bundle. See the module comment for the guarantees. */
export async function writeBundle(opts: WriteBundleOptions): Promise<WriteBundleResult> {
  const { signal, onProgress } = opts;
  const outSpec: BundleOutputSpec = typeof opts.output === 'string' ? { path: opts.output } : opts.output;
  const epoch = resolveEpoch(opts.epoch, opts.ladingJson.created);
  throwIfAborted(signal);

  // 1. Extra files: hash them first (streaming), SHA256SUMS and lading.json need their digests.
  const inputFiles = (opts.files ?? []).map((f) => ({ name: checkFileName(f.name), path: f.path }));
  inputFiles.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < inputFiles.length; i++) {
    if (inputFiles[i]!.name === inputFiles[i - 1]!.name) {
      throw new InvalidInputError(`file ${inputFiles[i]!.name} is named twice`, {
        hint: 'each file goes into files/ once; rename one of them',
      });
    }
  }
  const files: PlanFile[] = [];
  for (const [i, f] of inputFiles.entries()) {
    throwIfAborted(signal);
    onProgress?.({
      phase: 'hashing',
      member: FILES_DIR + f.name,
      membersDone: i,
      membersTotal: inputFiles.length,
      bytesDone: 0,
      bytesTotal: 0,
    });
    let hashed: { digest: Digest; size: number };
    try {
      hashed = await digestStream(
        createReadStream(f.path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) }),
      );
    } catch (err) {
      throwIfAborted(signal);
      throw new InvalidInputError(
        `cannot read file ${f.path} (for files/${f.name}): ${(err as Error).message}`,
        {
          hint: 'check the path in the spec; relative paths resolve against the spec folder',
          cause: err,
        },
      );
    }
    files.push({ name: f.name, local: f.path, digest: hashed.digest, size: hashed.size });
  }

  // 2. The plan: every member, header and offset, SHA256SUMS and its signature.
  const plan = planBundle({
    ladingJson: opts.ladingJson,
    index: opts.index,
    ...(opts.sbom !== undefined ? { sbom: opts.sbom } : {}),
    files,
    blobs: opts.blobs.descriptors,
    ...(opts.key ? { key: opts.key } : {}),
    epoch,
  });

  // 3. Write: headers and metadata, then extra files, then the blobs through the copy engine.
  const output = new PlacedOutput(outSpec.path, plan.size, {
    ...outSpec,
    ...(opts.key ? { key: opts.key } : {}),
  });
  let member: string | undefined;
  const progress = { bytesDone: 0, membersDone: 0 };
  const report = (phase: BundleProgress['phase']) =>
    onProgress?.({
      phase,
      ...(member !== undefined ? { member } : {}),
      membersDone: progress.membersDone,
      membersTotal: plan.members.length,
      bytesDone: progress.bytesDone,
      bytesTotal: plan.size,
    });
  const bundle = new PlacedBundle(plan, output, {
    onProgress: (p) => {
      member = p.member;
      progress.bytesDone = p.bytesDone;
      progress.membersDone = p.membersDone;
      report('writing');
    },
  });
  const so = signal ? { signal } : {};
  try {
    await output.prepare();
    report('planned');
    throwIfAborted(signal);
    await bundle.writeHeaders();
    for (const m of plan.members) {
      if (m.data.kind === 'bytes') {
        await bundle.fill(m, [m.data.bytes], { digest: digestOf(m.data.bytes), size: m.size }, so);
      } else if (m.data.kind === 'file') {
        const stream = createReadStream(m.data.local, { highWaterMark: 1024 * 1024, ...so });
        try {
          await bundle.fill(m, stream, { digest: m.data.digest, size: m.size }, so);
        } finally {
          stream.destroy();
        }
      }
    }
    const copyOpts = {
      limiter: opts.limiter ?? new Limiter(DEFAULT_CONCURRENCY),
      retries: BUNDLE_BLOB_RETRIES,
      ...so,
    };
    const source = asSource(opts.blobs.fetcher);
    // Manifests and indexes first, their blobs left out. The copy engine puts a manifest after
    // everything below it (what a registry needs); in a bundle, which commits all at once, that
    // would hold the output hasher's frontier (see PlacedBundle) at the first manifest member
    // until the end of the copy, and leave the whole hash and flush for after the last write.
    await copyGraphs(
      source,
      bundle,
      plan.blobs.filter((d) => isManifestOrIndexType(d.mediaType)),
      { ...copyOpts, leaveOut: (d) => !isManifestOrIndexType(d.mediaType) },
    );
    // Then every blob, in member order (the plan sorts both by digest), so the frontier follows.
    await copyGraphs(source, bundle, plan.blobs, copyOpts);
    throwIfAborted(signal);
    if (!bundle.done) throw new Error(`${outSpec.path}: the copy ended with members not written`);
    const done = await output.commit();
    member = undefined;
    report('done');
    const result: WriteBundleResult = {
      path: output.path,
      files: done.files,
      size: done.size,
      digest: done.digest,
      sumsDigest: digestOf(plan.sums),
      signed: plan.signature !== undefined,
      members: plan.members.map((m) => m.path),
      blobs: plan.blobs.length,
      blobBytes: plan.blobs.reduce((n, b) => n + b.size, 0),
      ladingJson: plan.ladingJson,
      epoch,
    };
    if (done.checksumFile) result.checksumFile = done.checksumFile;
    return result;
  } catch (err) {
    await output.discard();
    if (signal?.aborted && !(err instanceof LadingError && !(err instanceof AbortedError))) {
      throw new AbortedError(`writing ${basename(outSpec.path)} aborted`, { cause: signal.reason });
    }
    throw err;
  }
}
