import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import type { Fetcher } from '../content/index.ts';
import { type Digest, digestOf, digestStream, parseDigest, VerifyingStream } from '../digest/index.ts';
import { AbortedError, InvalidInputError, LadingError, throwIfAborted } from '../errors/index.ts';
import type { Descriptor, ImageIndex } from '../model/index.ts';
import { Limiter, retryTransient, WriteGatherer } from '../util/index.ts';
import { BLOBS_DIR, FILES_DIR, Member, OCI_LAYOUT_CONTENT } from './format.ts';
import { type BundleFile, type LadingJson, ladingJsonSchema } from './lading-json.ts';
import { PlacedOutput } from './placed-output.ts';
import { buildSbom, type CycloneDxBom, serializeSbom } from './sbom.ts';
import { sign } from './signing.ts';
import type { OutputOptions } from './split.ts';
import { formatSums } from './sums.ts';
import {
  BLOCK,
  checkMemberPath,
  entryHeader,
  TAR_END_SIZE,
  TarEntrySizeError,
  tarEntrySize,
} from './tar-writer.ts';

/**
 * Writes a bundle (docs/bundle-format.md): members in the contract order (oci-layout, lading.json,
 * SHA256SUMS, SHA256SUMS.sig, index.json, sbom.cdx.json, files/…, blobs/sha256/…), byte-identical
 * for the same inputs and epoch. Every size is known before the first byte, so every member has
 * its offset: metadata is written first, then the blobs stream in several at once (one shared
 * limiter), each verified while it streams and written at its place. The output is atomic (temp
 * + rename, optionally split into parts) and is hashed behind the writes on a worker thread.
 */

/** An extra file: `name` is its path under `files/` (and in lading.json), `path` the local file. */
export interface BundleInputFile {
  name: string;
  path: string;
}

/**
 * Streams one blob's bytes into `write(chunk, at)` (`at`: offset in the blob) and resolves only
 * once every byte was written and verified against `desc` (size and digest); rejects otherwise
 * (the writer then discards the bundle). It may start over from offset 0 (another source); it is
 * called again when it fails with a transient error.
 */
export type BlobWrite = (chunk: Uint8Array, at: number) => Promise<void>;
export type BlobCopier = (
  desc: Descriptor,
  write: BlobWrite,
  opts: { signal?: AbortSignal },
) => Promise<void>;

/** Where blobs come from (an OciLayout, a registry, …) and which ones go in. */
export interface BundleBlobs {
  fetcher: Fetcher;
  /** Every blob (manifests, indexes, configs, layers); duplicates are stored once. sha256 only. */
  descriptors: readonly Descriptor[];
  /** How a blob's bytes get to the bundle; default: `copyVerified` from `fetcher`. */
  copy?: BlobCopier;
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
 * Attempts after the first for a member whose transfer fails transiently (reset, 5xx, stall),
 * with backoff (0.25 s doubling, at most 4 s). One build moves hundreds of blobs: at a 20 % fault
 * rate, 3 retries still lost a blob in about one build in six.
 */
const BLOB_RETRIES = 5;

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

export class UnsupportedBlobError extends InvalidInputError {
  override readonly code = 'UNSUPPORTED_BLOB';
  readonly digest: string;
  constructor(digest: string, reason: string) {
    super(`blob ${digest}: ${reason}`, {
      hint: 'bundles store sha256 blobs only (blobs/sha256/<hex>); re-pull the image with sha256 digests',
    });
    this.digest = digest;
  }
}

/**
 * The timestamp of a bundle, in seconds: `epoch` when given, else `SOURCE_DATE_EPOCH`, else
 * `fallback` (e.g. lading.json `created`), else now. A malformed SOURCE_DATE_EPOCH is an error.
 */
export function resolveEpoch(
  epoch?: number | Date,
  fallback?: string | Date,
  env: NodeJS.ProcessEnv = process.env,
): number {
  if (epoch !== undefined) {
    const s = epoch instanceof Date ? Math.floor(epoch.getTime() / 1000) : epoch;
    if (!Number.isSafeInteger(s) || s < 0) throw new InvalidInputError(`invalid epoch ${String(epoch)}`);
    return s;
  }
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) {
      throw new InvalidInputError(`SOURCE_DATE_EPOCH="${sde}" is not a whole number of seconds`, {
        hint: 'set SOURCE_DATE_EPOCH to seconds since 1970, e.g. $(git log -1 --format=%ct)',
      });
    }
    return Number(sde);
  }
  if (fallback !== undefined) {
    const t = fallback instanceof Date ? fallback.getTime() : Date.parse(fallback);
    if (Number.isFinite(t) && t >= 0) return Math.floor(t / 1000);
  }
  return Math.floor(Date.now() / 1000);
}

function jsonBytes(value: unknown, pretty: boolean): Buffer {
  return Buffer.from(pretty ? `${JSON.stringify(value, null, 2)}\n` : JSON.stringify(value));
}

function sha256Hex(data: Uint8Array): string {
  return digestOf(data).slice('sha256:'.length);
}

function checkFileName(name: string): string {
  const n = name.replace(/^\.\//, '');
  try {
    checkMemberPath(`${FILES_DIR}${n}`);
  } catch {
    throw new InvalidInputError(`file name ${JSON.stringify(name)} cannot go into the bundle`, {
      hint: 'files are named by relative paths without "." or ".." components',
    });
  }
  if (n.endsWith('/')) throw new InvalidInputError(`file name ${JSON.stringify(name)} names a folder`);
  return n;
}

/**
 * Stream one blob from `fetcher` into `write`, verified (size and digest) while it streams; resolves
 * only once every byte arrived and matched. The default `BundleBlobs.copy`.
 */
export async function copyVerified(
  fetcher: Fetcher,
  desc: Descriptor,
  write: BlobWrite,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  const raw: Readable = await fetcher.fetch(desc, opts.signal ? { signal: opts.signal } : {});
  const verify = new VerifyingStream({ digest: desc.digest, size: desc.size }, `blob ${desc.digest}`);
  raw.on('error', (err) => verify.destroy(err));
  raw.pipe(verify);
  let at = 0;
  try {
    for await (const chunk of verify as AsyncIterable<Buffer>) {
      await write(chunk, at);
      at += chunk.length;
    }
  } finally {
    raw.destroy();
    verify.destroy();
  }
}

function verifiedFile(
  path: string,
  digest: Digest,
  size: number,
  signal?: AbortSignal,
): () => AsyncIterable<Buffer> {
  return async function* () {
    const raw = createReadStream(path, { highWaterMark: 1024 * 1024, ...(signal ? { signal } : {}) });
    const verify = new VerifyingStream({ digest, size }, `file ${path}`);
    raw.on('error', (err) => verify.destroy(err));
    raw.pipe(verify);
    try {
      for await (const chunk of verify as AsyncIterable<Buffer>) yield chunk;
    } finally {
      raw.destroy();
      verify.destroy();
    }
  };
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
  const files: Array<BundleFile & { local: string }> = [];
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
    files.push({ path: f.name, digest: hashed.digest, size: hashed.size, local: f.path });
  }

  // 2. Blobs: each once, sorted by digest, sha256 only, consistent sizes.
  const blobMap = new Map<string, Descriptor>();
  for (const d of opts.blobs.descriptors) {
    const parsed = (() => {
      try {
        return parseDigest(d.digest);
      } catch (err) {
        throw new UnsupportedBlobError(String(d.digest), (err as Error).message);
      }
    })();
    if (parsed.algorithm !== 'sha256') {
      throw new UnsupportedBlobError(d.digest, `${parsed.algorithm} digests are not supported in bundles`);
    }
    if (!Number.isSafeInteger(d.size) || d.size < 0)
      throw new UnsupportedBlobError(d.digest, `invalid size ${d.size}`);
    const seen = blobMap.get(d.digest);
    if (seen && seen.size !== d.size) {
      throw new UnsupportedBlobError(
        d.digest,
        `two descriptors disagree on its size (${seen.size} and ${d.size})`,
      );
    }
    if (!seen) blobMap.set(d.digest, d);
  }
  const blobs = [...blobMap.values()].sort((a, b) =>
    a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0,
  );

  // 3. Metadata.
  const ladingJson: LadingJson = {
    ...opts.ladingJson,
    files: files.map(({ path, digest, size }) => ({ path, digest, size })),
  };
  const checked = ladingJsonSchema.safeParse(ladingJson);
  if (!checked.success) {
    throw new InvalidInputError(
      `lading.json is invalid: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      {
        hint: 'this is a bug in the caller that assembled lading.json',
      },
    );
  }
  const ociLayout = Buffer.from(OCI_LAYOUT_CONTENT);
  const ladingBytes = jsonBytes(ladingJson, true);
  const indexBytes =
    opts.index instanceof Uint8Array ? Buffer.from(opts.index) : jsonBytes(opts.index, false);
  const sbomBytes =
    opts.sbom instanceof Uint8Array
      ? Buffer.from(opts.sbom)
      : serializeSbom(opts.sbom ?? buildSbom(ladingJson, { epoch }));

  const summed: Array<{ path: string; hex: string }> = [
    { path: Member.ociLayout, hex: sha256Hex(ociLayout) },
    { path: Member.manifest, hex: sha256Hex(ladingBytes) },
    { path: Member.index, hex: sha256Hex(indexBytes) },
    { path: Member.sbom, hex: sha256Hex(sbomBytes) },
    ...files.map((f) => ({ path: FILES_DIR + f.path, hex: parseDigest(f.digest).hex })),
    ...blobs.map((b) => ({
      path: `${BLOBS_DIR}sha256/${parseDigest(b.digest).hex}`,
      hex: parseDigest(b.digest).hex,
    })),
  ];
  const sumsBytes = Buffer.from(formatSums(summed));
  const sigBytes = opts.key ? sign(sumsBytes, opts.key) : undefined;

  // 4. Entries, in the contract order, each at its place in the tar.
  type Data =
    | { kind: 'bytes'; bytes: Buffer }
    | { kind: 'file'; local: string; digest: Digest }
    | { kind: 'blob'; desc: Descriptor };
  const planned: Array<{ path: string; size: number; data: Data }> = [
    { path: Member.ociLayout, size: ociLayout.length, data: { kind: 'bytes', bytes: ociLayout } },
    { path: Member.manifest, size: ladingBytes.length, data: { kind: 'bytes', bytes: ladingBytes } },
    { path: Member.sums, size: sumsBytes.length, data: { kind: 'bytes', bytes: sumsBytes } },
    ...(sigBytes
      ? [{ path: Member.signature, size: sigBytes.length, data: { kind: 'bytes', bytes: sigBytes } as Data }]
      : []),
    { path: Member.index, size: indexBytes.length, data: { kind: 'bytes', bytes: indexBytes } },
    { path: Member.sbom, size: sbomBytes.length, data: { kind: 'bytes', bytes: sbomBytes } },
    ...files.map((f) => ({
      path: FILES_DIR + f.path,
      size: f.size,
      data: { kind: 'file', local: f.local, digest: f.digest } as Data,
    })),
    ...blobs.map((b) => ({
      path: `${BLOBS_DIR}sha256/${parseDigest(b.digest).hex}`,
      size: b.size,
      data: { kind: 'blob', desc: b } as Data,
    })),
  ];
  let offset = 0;
  const entries = planned.map((e, index) => {
    const header = entryHeader(e.path, e.size, epoch);
    const placed = { ...e, index, header, headerOffset: offset, dataOffset: offset + header.length };
    offset += tarEntrySize(e.path, e.size);
    return placed;
  });
  const bytesTotal = offset + TAR_END_SIZE;
  const members = entries.map((e) => e.path);

  // 5. Write: headers and metadata, then extra files, then the blobs — many at once, each at its
  //    offset, verified as it streams; the output hashes the tar behind the writes.
  const output = new PlacedOutput(outSpec.path, bytesTotal, outSpec);
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const limiter = opts.limiter ?? new Limiter(DEFAULT_CONCURRENCY);
  const copyBlob = opts.blobs.copy ?? ((desc, write, o) => copyVerified(opts.blobs.fetcher, desc, write, o));
  let bytesDone = 0;
  let membersDone = 0;
  let member: string | undefined;
  const report = (phase: BundleProgress['phase']) =>
    onProgress?.({
      phase,
      ...(member !== undefined ? { member } : {}),
      membersDone,
      membersTotal: entries.length,
      bytesDone,
      bytesTotal,
    });
  const zeros = (n: number) => Buffer.alloc(n);
  // Members complete, and the first one that is not: the output may hash everything before it.
  const complete = entries.map(() => false);
  let next = 0;
  const padAfter = (e: (typeof entries)[number]) => {
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
    return pad > 0 ? output.writeAt(e.dataOffset + e.size, zeros(pad)) : Promise.resolve();
  };
  /**
   * Write one member's data: `fill` calls `write(chunk, at)` with offsets into the member and may
   * start over (a retried transfer, a copier changing its source) — what counts is that it ends
   * with every byte written and verified.
   */
  const writeMember = async (
    e: (typeof entries)[number],
    fill: (write: (chunk: Uint8Array, at: number) => Promise<void>) => Promise<void>,
  ) => {
    let counted = 0;
    let end = 0;
    await retryTransient(
      async () => {
        end = 0;
        // Chunks from the network are small; the file gets them in WRITE_CHUNK writes.
        let pendingAt = 0;
        const pending = new WriteGatherer(async (b) => {
          await output.writeAt(e.dataOffset + pendingAt, b);
          pendingAt += b.length;
        });
        await fill(async (chunk, at) => {
          throwIfAborted(inner.signal);
          if (at + chunk.length > e.size)
            throw new TarEntrySizeError(e.path, e.size, at + chunk.length, true);
          if (at !== pendingAt + pending.buffered) {
            await pending.flush();
            pendingAt = at;
          }
          await pending.add(chunk);
          end = Math.max(end, at + chunk.length);
          if (end > counted) {
            bytesDone += end - counted;
            counted = end;
          }
          member = e.path;
          report('writing');
        });
        await pending.flush();
        if (end !== e.size) throw new TarEntrySizeError(e.path, e.size, end, false);
      },
      { signal: inner.signal, retries: BLOB_RETRIES },
    );
    await padAfter(e);
    bytesDone += e.header.length + ((BLOCK - (e.size % BLOCK)) % BLOCK);
    membersDone++;
    complete[e.index] = true;
    while (next < entries.length && complete[next]) next++;
    output.settle(next < entries.length ? entries[next]!.headerOffset : bytesTotal);
    report('writing');
  };
  try {
    await output.prepare();
    report('planned');
    throwIfAborted(signal);
    for (const e of entries) await output.writeAt(e.headerOffset, e.header);
    await output.writeAt(bytesTotal - TAR_END_SIZE, zeros(TAR_END_SIZE));
    bytesDone += TAR_END_SIZE;
    for (const e of entries) {
      if (e.data.kind === 'bytes') {
        const bytes = e.data.bytes;
        await writeMember(e, (write) => write(bytes, 0));
      } else if (e.data.kind === 'file') {
        const { local, digest } = e.data;
        await writeMember(e, async (write) => {
          let at = 0;
          for await (const c of verifiedFile(local, digest, e.size, inner.signal)()) {
            await write(c, at);
            at += c.length;
          }
        });
      }
    }
    let first: unknown;
    await Promise.allSettled(
      entries.map(async (e) => {
        if (e.data.kind !== 'blob') return;
        const desc = e.data.desc;
        try {
          await limiter.run(
            () => writeMember(e, (write) => copyBlob(desc, write, { signal: inner.signal })),
            inner.signal,
          );
        } catch (err) {
          if (first === undefined) {
            first = err;
            inner.abort(err);
          }
        }
      }),
    );
    if (first !== undefined) throw first;
    throwIfAborted(signal);
    const done = await output.commit();
    member = undefined;
    report('done');
    const result: WriteBundleResult = {
      path: output.path,
      files: done.files,
      size: done.size,
      digest: done.digest,
      sumsDigest: digestOf(sumsBytes),
      signed: sigBytes !== undefined,
      members,
      blobs: blobs.length,
      blobBytes: blobs.reduce((n, b) => n + b.size, 0),
      ladingJson,
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
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
