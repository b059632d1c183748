import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import type { CallOptions, TagLister, Target } from '../content/index.ts';
import {
  createDigester,
  type Digest,
  DigestMismatchError,
  digestAlgorithm,
  isDigest,
  parseDigest,
  SizeMismatchError,
} from '../digest/index.ts';
import { AbortedError, abortable, throwIfAborted } from '../errors/index.ts';
import {
  Annotation,
  type Descriptor,
  type ImageIndex,
  InvalidManifestError,
  MAX_MANIFEST_BYTES,
  MediaType,
  manifestChildren,
  parseManifest,
  walkDescriptors,
} from '../model/index.ts';
import { syncDir, writeFileAtomic } from '../util/atomic-file.ts';
import { WriteGatherer } from '../util/index.ts';
import { InvalidLayoutError, LayoutNotFoundError } from './errors.ts';
import { isErrno, Mutex, tempName } from './fs.ts';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const INDEX_FILE = 'index.json';
export const INGEST_DIR = 'ingest';
export const LAYOUT_VERSION = '1.0.0';

export interface OpenLayoutOptions {
  /** Create the directory, `oci-layout`, an empty `index.json` and `blobs/` when missing. */
  create?: boolean;
}

export interface GcResult {
  /** Blobs removed because no index entry reaches them. */
  removed: Digest[];
  bytes: number;
}

/*
 * Process-wide state shared by every OciLayout instance on the same directory: index.json
 * updates run one after another, a blob being ingested is ingested once, and the gc knows which
 * temporary files are live. Between processes, unique temporary names and atomic renames keep
 * the store consistent (the last rename of identical bytes wins).
 */
const indexLocks = new Map<string, Mutex>();
const inflightPushes = new Map<string, Promise<void>>();
const liveTemps = new Set<string>();

function indexLock(dir: string): Mutex {
  let m = indexLocks.get(dir);
  if (!m) {
    m = new Mutex();
    indexLocks.set(dir, m);
  }
  return m;
}

function compareEntries(a: Descriptor, b: Descriptor): number {
  const ra = a.annotations?.[Annotation.refName] ?? '';
  const rb = b.annotations?.[Annotation.refName] ?? '';
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k] as string;
  return out;
}

/** The index.json entry for a tagged node, with a stable key order. */
function indexEntry(desc: Descriptor, ref: string): Descriptor {
  const e: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.platform) e.platform = desc.platform;
  if (desc.artifactType) e.artifactType = desc.artifactType;
  e.annotations = sortedRecord({ ...desc.annotations, [Annotation.refName]: ref });
  return e;
}

function refDigest(ref: string): Digest | undefined {
  if (isDigest(ref)) return ref;
  const at = ref.lastIndexOf('@');
  if (at >= 0) {
    const d = ref.slice(at + 1);
    if (isDigest(d)) return d;
  }
  return undefined;
}

/**
 * An OCI image layout on disk (image-layout.md) as a Target. Blobs are streamed to a temporary
 * file under `ingest/`, verified while they flow, flushed and only then renamed into
 * `blobs/<alg>/<hex>`; a failed or aborted push leaves nothing behind. `index.json` is
 * rewritten atomically, its entries sorted by reference name so output is reproducible.
 */
export class OciLayout implements Target, TagLister {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Open an existing layout, or create one with `{ create: true }`. */
  static async open(dir: string, opts: OpenLayoutOptions = {}): Promise<OciLayout> {
    const abs = path.resolve(dir);
    const layoutFile = path.join(abs, OCI_LAYOUT_FILE);
    let text: string | undefined;
    try {
      text = await readFile(layoutFile, 'utf8');
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
      if (!opts.create) throw new InvalidLayoutError(abs, `${OCI_LAYOUT_FILE} is missing`);
    }
    if (text === undefined) {
      await mkdir(path.join(abs, 'blobs', 'sha256'), { recursive: true });
      await writeFileAtomic(layoutFile, JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    } else {
      let version: unknown;
      try {
        version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch {
        throw new InvalidLayoutError(abs, `${OCI_LAYOUT_FILE} is not JSON`);
      }
      if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
        throw new InvalidLayoutError(abs, `unsupported imageLayoutVersion ${JSON.stringify(version)}`);
      }
    }
    const layout = new OciLayout(abs);
    try {
      await stat(path.join(abs, INDEX_FILE));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      if (!opts.create) throw new InvalidLayoutError(abs, `${INDEX_FILE} is missing`);
      await indexLock(abs).run(async () => {
        try {
          await stat(path.join(abs, INDEX_FILE));
        } catch {
          await layout.writeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
        }
      });
    }
    return layout;
  }

  /** Where a blob lives: `<dir>/blobs/<alg>/<hex>`. */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.dir, 'blobs', algorithm, hex);
  }

  async exists(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    return this.hasBlob(this.blobPath(desc.digest), desc.size);
  }

  async fetch(desc: Descriptor, opts: CallOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const file = this.blobPath(desc.digest);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new LayoutNotFoundError(this.dir, `blob ${desc.digest}`);
      throw err;
    }
    const stream = fh.createReadStream();
    return opts.signal ? addAbortSignal(opts.signal, stream) : stream;
  }

  /**
   * Ingest a blob through `writer`: verified while it streams to a temporary file, flushed, then
   * renamed into place. Pushing content that is already present is a no-op; a push of a digest
   * already being ingested in this process waits for that one instead of writing it twice.
   */
  async push(desc: Descriptor, content: Readable, opts: CallOptions = {}): Promise<void> {
    try {
      const w = await this.writer(desc, opts);
      if (!w) return;
      try {
        const body = opts.signal ? addAbortSignal(opts.signal, content) : content;
        for await (const chunk of body as AsyncIterable<Buffer>) await w.write(chunk);
        await w.commit();
      } catch (err) {
        await w.abort();
        if (opts.signal?.aborted && !(err instanceof AbortedError)) {
          throw new AbortedError(`push of ${desc.digest} to ${this.dir} aborted`, {
            cause: opts.signal.reason,
          });
        }
        throw err;
      }
    } finally {
      content.destroy();
    }
  }

  /**
   * A blob writer for callers that move the bytes themselves (e.g. into a bundle at the same
   * time): `write` hashes and stores each chunk (refusing more bytes than the descriptor's size),
   * `commit` checks size and digest, flushes and renames into place, `abort` removes the
   * temporary. Undefined when the blob is already present. While it is open, a `push` of the same
   * blob in this process waits for it.
   */
  async writer(desc: Descriptor, opts: CallOptions = {}): Promise<LayoutBlobWriter | undefined> {
    throwIfAborted(opts.signal);
    const target = this.blobPath(desc.digest);
    for (;;) {
      const inflight = inflightPushes.get(target);
      if (inflight) {
        await abortable(inflight, opts.signal).catch((err: unknown) => {
          if (err instanceof AbortedError && opts.signal?.aborted) throw err;
        });
        continue;
      }
      if (await this.hasBlob(target, desc.size)) return undefined;
      if (!inflightPushes.has(target)) break;
    }
    const { hex } = parseDigest(desc.digest);
    const ingestDir = path.join(this.dir, INGEST_DIR);
    await mkdir(ingestDir, { recursive: true });
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = tempName(ingestDir, hex);
    let settle!: () => void;
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    inflightPushes.set(target, done);
    liveTemps.add(tmp);
    const release = () => {
      liveTemps.delete(tmp);
      if (inflightPushes.get(target) === done) inflightPushes.delete(target);
      settle();
    };
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx', 0o644);
    } catch (err) {
      release();
      throw err;
    }
    return new LayoutBlobWriter(desc, `${desc.digest} pushed to ${this.dir}`, fh, tmp, target, release);
  }

  private async hasBlob(file: string, size: number): Promise<boolean> {
    try {
      const st = await stat(file);
      return st.isFile() && st.size === size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /**
   * Resolve a reference name (`org.opencontainers.image.ref.name` in index.json), a digest, or
   * `name@digest`, to the descriptor of the node.
   */
  async resolve(reference: string, opts: CallOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal);
    const index = await this.readIndex();
    const named = index.manifests.find((m) => m.annotations?.[Annotation.refName] === reference);
    if (named) return structuredClone(named);
    const digest = refDigest(reference);
    if (digest) {
      const listed = index.manifests.find((m) => m.digest === digest);
      if (listed) return structuredClone(listed);
      // not in index.json, but perhaps a blob of the store (a child manifest)
      const file = this.blobPath(digest);
      let size: number | undefined;
      try {
        size = (await stat(file)).size;
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      if (size !== undefined && size <= MAX_MANIFEST_BYTES) {
        const bytes = await readFile(file);
        const parsed = parseManifest(bytes, undefined, `${digest} in ${this.dir}`);
        return { mediaType: parsed.mediaType, digest, size };
      }
    }
    throw new LayoutNotFoundError(this.dir, `reference ${JSON.stringify(reference)}`);
  }

  /**
   * Name a node: replaces any entry of index.json with the same reference name. The node must
   * be in the store. `desc.annotations` are kept on the entry (e.g. `io.containerd.image.name`).
   */
  async tag(desc: Descriptor, reference: string, opts: CallOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    if (reference.length === 0) {
      throw new InvalidLayoutError(this.dir, 'cannot tag with an empty reference', 'give a reference name');
    }
    if (!(await this.exists(desc))) {
      throw new LayoutNotFoundError(this.dir, `${desc.digest}`, 'push the manifest before tagging it');
    }
    if (isDigest(reference)) return; // a digest names itself
    await this.updateIndex((manifests) => {
      const kept = manifests.filter((m) => {
        const name = m.annotations?.[Annotation.refName];
        if (name === reference) return false;
        // an untagged entry for the same node is replaced by the tagged one
        return !(name === undefined && m.digest === desc.digest);
      });
      kept.push(indexEntry(desc, reference));
      return kept;
    });
  }

  /** Remove a reference name from index.json; returns whether it was there. */
  async untag(reference: string, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    let found = false;
    await this.updateIndex((manifests) =>
      manifests.filter((m) => {
        const hit = m.annotations?.[Annotation.refName] === reference;
        if (hit) found = true;
        return !hit;
      }),
    );
    return found;
  }

  /** The reference names in index.json, sorted. */
  async *tags(opts: CallOptions = {}): AsyncIterable<string> {
    throwIfAborted(opts.signal);
    const names = (await this.readIndex()).manifests
      .map((m) => m.annotations?.[Annotation.refName])
      .filter((n): n is string => n !== undefined)
      .sort();
    for (const n of names) yield n;
  }

  /** The descriptors of index.json (with their annotations), in file order. */
  async entries(opts: CallOptions = {}): Promise<Descriptor[]> {
    throwIfAborted(opts.signal);
    return structuredClone((await this.readIndex()).manifests);
  }

  /** Remove a blob from the store (index.json is not touched); returns whether it was there. */
  async delete(desc: Descriptor, opts: CallOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    const file = this.blobPath(desc.digest);
    try {
      await rm(file);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /**
   * Remove blobs no index.json entry reaches, and stale temporary files. Do not run while
   * another process writes to the layout (its pushed but not yet tagged blobs look unreachable).
   */
  async gc(opts: CallOptions = {}): Promise<GcResult> {
    const signal = opts.signal;
    const reachable = new Set<string>();
    const read = async (d: Descriptor): Promise<Buffer | undefined> => {
      try {
        return await readFile(this.blobPath(d.digest));
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return undefined;
        throw err;
      }
    };
    await walkDescriptors(
      (await this.readIndex()).manifests,
      manifestChildren(read, { source: (d) => `${d.digest} in ${this.dir}` }),
      {
        enter: (d) => {
          reachable.add(d.digest);
          return true;
        },
        ...(signal ? { signal } : {}),
      },
    );
    const removed: Digest[] = [];
    let bytes = 0;
    const blobsDir = path.join(this.dir, 'blobs');
    for (const alg of await readdir(blobsDir).catch(() => [] as string[])) {
      for (const hex of await readdir(path.join(blobsDir, alg)).catch(() => [] as string[])) {
        throwIfAborted(signal);
        const digest = `${alg}:${hex}`;
        if (reachable.has(digest)) continue;
        const file = path.join(blobsDir, alg, hex);
        const st = await stat(file);
        if (!st.isFile()) continue;
        await rm(file, { force: true });
        removed.push(digest as Digest);
        bytes += st.size;
      }
    }
    const ingestDir = path.join(this.dir, INGEST_DIR);
    for (const name of await readdir(ingestDir).catch(() => [] as string[])) {
      const file = path.join(ingestDir, name);
      if (!liveTemps.has(file)) await rm(file, { force: true, recursive: true });
    }
    return { removed: removed.sort(), bytes };
  }

  /** Read and validate index.json. */
  async readIndex(): Promise<ImageIndex> {
    const file = path.join(this.dir, INDEX_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new InvalidLayoutError(this.dir, `${INDEX_FILE} is missing`);
      throw err;
    }
    try {
      const parsed = parseManifest(bytes, MediaType.ociIndex, file);
      if (parsed.kind !== 'index') throw new InvalidLayoutError(this.dir, `${INDEX_FILE} is not an index`);
      return parsed.index;
    } catch (err) {
      if (err instanceof InvalidManifestError) {
        throw new InvalidLayoutError(this.dir, `${INDEX_FILE}: ${err.message}`, undefined);
      }
      throw err;
    }
  }

  /** Read-modify-write index.json, serialised with every other update in this process. */
  private updateIndex(fn: (manifests: Descriptor[]) => Descriptor[]): Promise<void> {
    return indexLock(this.dir).run(async () => {
      const index = await this.readIndex();
      index.manifests = fn(index.manifests).sort(compareEntries);
      await this.writeIndex(index);
    });
  }

  private async writeIndex(index: ImageIndex): Promise<void> {
    const { schemaVersion, mediaType, manifests, ...rest } = index;
    const doc = { schemaVersion, mediaType: mediaType ?? MediaType.ociIndex, ...rest, manifests };
    await writeFileAtomic(path.join(this.dir, INDEX_FILE), JSON.stringify(doc));
  }
}

/** See `OciLayout.writer`. */
export class LayoutBlobWriter {
  private readonly desc: Descriptor;
  private readonly source: string;
  private readonly fh: FileHandle;
  private readonly tmp: string;
  private readonly target: string;
  private readonly release: () => void;
  private readonly digester;
  private readonly gather: WriteGatherer;
  private seen = 0;
  private written = 0;
  private closed = false;

  constructor(
    desc: Descriptor,
    source: string,
    fh: FileHandle,
    tmp: string,
    target: string,
    release: () => void,
  ) {
    this.desc = desc;
    this.source = source;
    this.fh = fh;
    this.tmp = tmp;
    this.target = target;
    this.release = release;
    this.digester = createDigester(digestAlgorithm(desc.digest));
    this.gather = new WriteGatherer(async (data) => {
      let w = 0;
      while (w < data.length) {
        w += (await fh.write(data, w, data.length - w, this.written + w)).bytesWritten;
      }
      this.written += data.length;
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.closed) throw new Error(`writer of ${this.desc.digest} is closed`);
    this.seen += chunk.length;
    if (this.seen > this.desc.size) {
      throw new SizeMismatchError(this.desc.digest, this.desc.size, this.seen, this.source, true);
    }
    this.digester.hash.update(chunk);
    await this.gather.add(chunk);
  }

  /** Verify, flush and rename into place; on a mismatch the temporary is removed and it throws. */
  async commit(): Promise<void> {
    if (this.closed) throw new Error(`writer of ${this.desc.digest} is closed`);
    try {
      if (this.seen !== this.desc.size) {
        throw new SizeMismatchError(this.desc.digest, this.desc.size, this.seen, this.source, false);
      }
      const actual = this.digester.digest();
      if (actual !== this.desc.digest) throw new DigestMismatchError(this.desc.digest, actual, this.source);
      await this.gather.flush();
      await this.fh.sync();
      await this.fh.close();
      this.closed = true;
      await rename(this.tmp, this.target);
      await syncDir(path.dirname(this.target));
    } catch (err) {
      await this.abort();
      throw err;
    } finally {
      this.release();
    }
  }

  /** Drop the temporary (safe to call more than once). */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await rm(this.tmp, { force: true });
    this.release();
  }
}
