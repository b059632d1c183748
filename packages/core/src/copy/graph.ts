import { pipeline as pipelineCb, type Readable, Transform, type TransformCallback } from 'node:stream';
import {
  bytesStream,
  type CallOptions,
  fetchAll,
  isMounter,
  isReferencePusher,
  isRejecter,
  type ReadOnlyStorage,
  type Storage,
} from '../content/index.ts';
import { AbortedError, abortable, throwIfAborted, VerificationError } from '../errors/index.ts';
import { type Descriptor, isManifestOrIndexType, parseManifest, successors } from '../model/index.ts';
import { Limiter, retryTransient, Singleflight } from '../util/index.ts';
import {
  type CopyEvent,
  type CopyEventType,
  type CopyStats,
  emptyStats,
  type ProgressListener,
  snapshot,
} from './events.ts';

export const DEFAULT_CONCURRENCY = 4;

export interface CopyGraphOptions extends CallOptions {
  /**
   * The one limiter shared by every copy of the operation. Each blob transfer, and each
   * manifest fetch or push, holds one slot; a parent never holds a slot while its children copy.
   */
  limiter?: Limiter;
  /** Size of the limiter created when none is given (default 4). */
  concurrency?: number;
  /** Progress events: blob start/bytes/done/skipped/mounted, manifest done/skipped. */
  onProgress?: ProgressListener;
  /** Carried on every event (per-image grouping), e.g. the source reference. */
  label?: string;
  /**
   * Candidate repositories to mount a blob from, tried in order when the destination is a
   * Mounter (same registry). An empty list or a declined mount falls back to a normal copy.
   */
  mountFrom?: (desc: Descriptor) => readonly string[];
  /**
   * Blobs (never manifests) to leave out: not fetched, not pushed, reported as `blob-skipped`
   * with reason `left-out`. For a caller that moves them another way (create pulls layers
   * straight into the bundle).
   */
  leaveOut?: (desc: Descriptor) => boolean;
  /**
   * Further attempts at a blob transfer or a manifest fetch/push that failed transiently (5xx
   * after the client's own retries, a dropped connection, a stall): each starts over with a new
   * fetch and a new upload (default 3). Verification failures are never retried.
   */
  retries?: number;
  /**
   * A manifest already at the destination is read from there and its children are still visited
   * (each copied when missing, e.g. a cache that lost a config), so the result lists every node
   * of the graph (`GraphRun.nodes`). For destinations that are cheap to read (a layout, a bundle);
   * without it an existing manifest is skipped with its subgraph.
   */
  walkExisting?: boolean;
}

type Outcome = 'copied' | 'skipped' | 'mounted';

/**
 * Copies in flight per destination, shared by every concurrent copy into the same Storage
 * object in this process: a blob is never fetched twice at once, even by two images' copies.
 */
const flightsByDst = new WeakMap<object, Singleflight<Outcome>>();

function flightsFor(dst: object): Singleflight<Outcome> {
  let f = flightsByDst.get(dst);
  if (!f) {
    f = new Singleflight<Outcome>();
    flightsByDst.set(dst, f);
  }
  return f;
}

function isPrematureClose(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Internal knobs used by `copy` (not part of the public options). */
export interface GraphHooks {
  /** Push the root manifest under this reference when the destination can (`pushReference`). */
  rootReference?: string;
  /** Manifests (and configs) the caller already read, by digest: used instead of fetching them. */
  documents?: ReadonlyMap<string, Buffer>;
}

export interface GraphRun {
  stats: CopyStats;
  /**
   * Every node this walk visited, each once, roots first then children depth-first: indexes,
   * manifests, configs, layers (left-out and skipped ones too). Below a manifest that was already
   * at the destination only with `walkExisting`.
   */
  nodes: Descriptor[];
  /** Whether the root was pushed with its reference already (no separate tag needed). */
  rootTagged: boolean;
}

class GraphCopier {
  readonly stats = emptyStats();
  readonly memo = new Map<string, Promise<void>>();
  readonly nodes: Descriptor[] = [];
  /** The work this walk started itself (not joined), awaited on failure before returning. */
  readonly work = new Set<Promise<unknown>>();
  rootTagged = false;
  private readonly src: ReadOnlyStorage;
  private readonly dst: Storage;
  private readonly opts: CopyGraphOptions;
  private readonly hooks: GraphHooks;
  private readonly signal: AbortSignal;
  private readonly limiter: Limiter;
  private readonly flights: Singleflight<Outcome>;

  constructor(
    src: ReadOnlyStorage,
    dst: Storage,
    opts: CopyGraphOptions,
    hooks: GraphHooks,
    signal: AbortSignal,
  ) {
    this.src = src;
    this.dst = dst;
    this.opts = opts;
    this.hooks = hooks;
    this.signal = signal;
    this.limiter = opts.limiter ?? new Limiter(opts.concurrency ?? DEFAULT_CONCURRENCY);
    this.flights = flightsFor(dst);
  }

  /** Copy a node once per graph walk. */
  node(desc: Descriptor, isRoot: boolean): Promise<void> {
    let p = this.memo.get(desc.digest);
    if (!p) {
      this.nodes.push({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size });
      p = this.copyNode(desc, isRoot);
      this.memo.set(desc.digest, p);
    }
    return p;
  }

  private emit(
    type: CopyEventType,
    desc: Descriptor,
    bytes: number,
    extra: Pick<CopyEvent, 'from' | 'reason'> = {},
  ): void {
    const listener = this.opts.onProgress;
    if (!listener) return;
    try {
      listener({ type, desc, bytes, label: this.opts.label, ...extra, totals: snapshot(this.stats) });
    } catch {
      // a progress display must not break a copy
    }
  }

  private async copyNode(desc: Descriptor, isRoot: boolean): Promise<void> {
    const manifest = isManifestOrIndexType(desc.mediaType);
    for (;;) {
      throwIfAborted(this.signal);
      let ran = false;
      const flight = this.flights.do(desc.digest, () => {
        ran = true;
        return manifest ? this.copyManifest(desc, isRoot) : this.copyBlob(desc);
      });
      if (ran) this.work.add(flight);
      try {
        await abortable(flight, this.signal);
      } catch (err) {
        // another copy's flight was aborted by its own caller: do the work ourselves
        if (!ran && err instanceof AbortedError && !this.signal.aborted) continue;
        throw err;
      }
      if (!ran) {
        if (manifest) this.stats.manifests.skipped++;
        else this.stats.blobs.skipped++;
        this.emit(manifest ? 'manifest-skipped' : 'blob-skipped', desc, desc.size, { reason: 'in-flight' });
        // another walk copied it: this walk still lists (and checks) what lies below
        if (manifest && this.opts.walkExisting) await this.children(desc);
      }
      return;
    }
  }

  private async copyManifest(desc: Descriptor, isRoot: boolean): Promise<Outcome> {
    const { signal } = this;
    const walkExisting = this.opts.walkExisting === true;
    const found = await this.limiter.run(async () => {
      if (await this.dst.exists(desc, { signal })) {
        if (!walkExisting) return { exists: true, bytes: undefined };
        const local =
          this.hooks.documents?.get(desc.digest) ??
          (await fetchAll(this.dst, desc, { signal, source: this.sourceName(desc) }));
        return { exists: true, bytes: local };
      }
      const fetched =
        this.hooks.documents?.get(desc.digest) ??
        (await this.attempt(() => fetchAll(this.src, desc, { signal, source: this.sourceName(desc) })));
      return { exists: false, bytes: fetched };
    }, signal);
    if (found.exists) {
      if (found.bytes) await this.visitChildren(desc, found.bytes);
      this.stats.manifests.skipped++;
      this.emit('manifest-skipped', desc, desc.size, { reason: 'exists' });
      return 'skipped';
    }
    const bytes = found.bytes as Buffer;
    const parsed = parseManifest(bytes, desc.mediaType, this.sourceName(desc));
    // children first, without holding a slot (a parent waiting in a slot could starve them)
    await Promise.all(successors(parsed).map((child) => this.node(child, false)));
    await this.limiter.run(async () => {
      const ref = isRoot ? this.hooks.rootReference : undefined;
      await this.attempt(async () => {
        if (ref && isReferencePusher(this.dst)) {
          await this.dst.pushReference(desc, bytesStream(bytes), ref, { signal });
          this.rootTagged = true;
        } else {
          await this.dst.push(desc, bytesStream(bytes), { signal });
        }
      });
    }, signal);
    this.stats.manifests.copied++;
    this.emit('manifest-done', desc, desc.size);
    return 'copied';
  }

  private async copyBlob(desc: Descriptor): Promise<Outcome> {
    const { signal, dst } = this;
    if (this.opts.leaveOut?.(desc)) {
      this.stats.blobs.skipped++;
      this.emit('blob-skipped', desc, desc.size, { reason: 'left-out' });
      return 'skipped';
    }
    return this.limiter.run(async () => {
      if (await dst.exists(desc, { signal })) {
        this.stats.blobs.skipped++;
        this.emit('blob-skipped', desc, desc.size, { reason: 'exists' });
        return 'skipped';
      }
      if (isMounter(dst) && this.opts.mountFrom) {
        for (const repo of this.opts.mountFrom(desc)) {
          let mounted = false;
          try {
            mounted = await dst.mount(desc, repo, { signal });
          } catch (err) {
            if (signal.aborted) throw err;
            // a refused mount is not fatal: the bytes are copied instead
          }
          if (mounted) {
            this.stats.blobs.mounted++;
            this.emit('blob-mounted', desc, desc.size, { from: repo });
            return 'mounted';
          }
        }
      }
      for (;;) {
        try {
          await this.attempt(() => this.transfer(desc));
          return 'copied';
        } catch (err) {
          // a source with another place for the blob (cache → registry) gets another try
          if (!(err instanceof VerificationError) || signal.aborted) throw err;
          if (!isRejecter(this.src) || !this.src.reject(desc)) throw err;
        }
      }
    }, signal);
  }

  /** Visit the children of a manifest the destination holds (read from there). */
  private async children(desc: Descriptor): Promise<void> {
    const { signal } = this;
    const bytes = await this.limiter.run(
      () => fetchAll(this.dst, desc, { signal, source: this.sourceName(desc) }),
      signal,
    );
    await this.visitChildren(desc, bytes);
  }

  private async visitChildren(desc: Descriptor, bytes: Buffer): Promise<void> {
    const parsed = parseManifest(bytes, desc.mediaType, this.sourceName(desc));
    await Promise.all(successors(parsed).map((child) => this.node(child, false)));
  }

  /** Run `fn`, again when it fails transiently (see `retries`). */
  private attempt<T>(fn: () => Promise<T>): Promise<T> {
    return retryTransient(fn, { retries: this.opts.retries ?? 3, signal: this.signal });
  }

  /**
   * src.fetch → dst.push, streamed, never buffered. The destination verifies size and digest as
   * the bytes flow (the Pusher contract) and commits nothing that fails; hashing here as well
   * would only hash every byte twice.
   */
  private async transfer(desc: Descriptor): Promise<void> {
    const { signal } = this;
    this.emit('blob-start', desc, 0);
    const raw: Readable = await this.src.fetch(desc, { signal });
    let moved = 0;
    const stats = this.stats;
    const emitBytes = (n: number) => this.emit('blob-bytes', desc, n);
    const counter = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        moved += chunk.length;
        stats.blobs.bytes += chunk.length;
        emitBytes(moved);
        cb(null, chunk);
      },
    });
    let sourceError: unknown;
    const body = pipelineCb(raw, counter, (err) => {
      if (err) sourceError = err;
    }) as Transform;
    try {
      await this.dst.push(desc, body, { signal });
    } catch (err) {
      body.destroy();
      // the source side's own failure (a digest mismatch, a reset) explains more than the echo
      // the destination saw of it
      if (sourceError && !isPrematureClose(sourceError) && !signal.aborted) throw sourceError;
      throw err;
    }
    if (sourceError instanceof VerificationError) throw sourceError;
    stats.blobs.copied++;
    this.emit('blob-done', desc, desc.size);
  }

  private sourceName(desc: Descriptor): string {
    return this.opts.label ? `${this.opts.label}: ${desc.digest}` : desc.digest;
  }
}

/**
 * Walk and copy a graph, or several sharing one walk (`roots`: a node reachable from two roots is
 * copied once); on failure stop every branch and wait for them before throwing.
 *
 * Not `fanOut` (util/fan-out.ts), on purpose: fanOut waits for the calls it made, but a root's
 * promise settles as soon as one child fails while its siblings and nodes shared with other roots
 * (`memo`) still run, and a node stops awaiting its transfer at the abort while the transfer (a
 * flight other copies may share: `work`) winds down. The drain below waits for all of them, until
 * no new node or transfer appears.
 */
export async function runGraph(
  src: ReadOnlyStorage,
  dst: Storage,
  root: Descriptor | readonly Descriptor[],
  opts: CopyGraphOptions,
  hooks: GraphHooks = {},
): Promise<GraphRun> {
  throwIfAborted(opts.signal);
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const copier = new GraphCopier(src, dst, opts, hooks, ctrl.signal);
  try {
    if (Array.isArray(root)) await Promise.all(root.map((r: Descriptor) => copier.node(r, false)));
    else await copier.node(root as Descriptor, true);
  } catch (err) {
    ctrl.abort(err);
    // let every started branch settle, so nothing writes after we return
    let settled = -1;
    while (settled !== copier.memo.size + copier.work.size) {
      settled = copier.memo.size + copier.work.size;
      await Promise.allSettled([...copier.memo.values(), ...copier.work]);
    }
    if (opts.signal?.aborted && !(err instanceof AbortedError)) {
      throw new AbortedError('copy aborted', { cause: opts.signal.reason });
    }
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return { stats: copier.stats, nodes: copier.nodes, rootTagged: copier.rootTagged };
}

/**
 * Copy the graph under `root` from `src` to `dst`: children before parents (blobs before
 * manifests, child manifests before indexes), nodes already at the destination skipped (with
 * their subgraph, for manifests), blobs mounted when the destination offers it, every blob
 * streamed and verified on the way. Returns the counters of this copy.
 */
export async function copyGraph(
  src: ReadOnlyStorage,
  dst: Storage,
  root: Descriptor,
  opts: CopyGraphOptions = {},
): Promise<CopyStats> {
  return (await runGraph(src, dst, root, opts)).stats;
}

/**
 * Copy several graphs in one walk (e.g. every blob of a bundle, or an image plus the artifacts
 * whose `subject` points at it): shared nodes once, the first failure stops the rest. Returns the
 * counters and every node visited (see `GraphRun.nodes`).
 */
export async function copyGraphs(
  src: ReadOnlyStorage,
  dst: Storage,
  roots: readonly Descriptor[],
  opts: CopyGraphOptions = {},
): Promise<{ stats: CopyStats; nodes: Descriptor[] }> {
  const run = await runGraph(src, dst, roots, opts);
  return { stats: run.stats, nodes: run.nodes };
}
