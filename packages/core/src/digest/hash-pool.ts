import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AbortedError, throwIfAborted, VerificationError } from '../errors/index.ts';

/**
 * The one worker hasher: a small pool of worker threads that hash byte ranges of local files.
 * Each worker reads with positional reads into one reused buffer and hashes, so several large
 * files or members are hashed at once, on every core, without their bytes crossing threads.
 * `hash` takes ranges that are complete (verify); `follow` takes ranges that are still being
 * written and hashes behind a frontier the writer moves forward (the bundle output, which is
 * written at offsets and hashed while it is written). The workers run code given as a string
 * (`eval`), not a worker file: the standalone loader (one esbuild bundle in a Node
 * single-executable) has no file to point a worker at.
 */

/** Bytes [start, start+length) of a local file. */
export interface FileRange {
  path: string;
  start: number;
  length: number;
  /**
   * An open descriptor of `path` to read instead of opening the path again (the workers share
   * the process's descriptors): what is hashed is the file the caller opened, even if another
   * file is renamed over the path meanwhile. The caller keeps it open until the job ends.
   */
  fd?: number;
}

export interface HashPoolOptions {
  /** Worker threads, at most; default min(4, available cores), at least 1. Started on demand. */
  workers?: number;
  /** Bytes each worker reads at a time into its one buffer; default 2 MiB. */
  bufferSize?: number;
}

export interface HashJobOptions {
  /** Aborting rejects the job with AbortedError (and stops the worker hashing it). */
  signal?: AbortSignal;
  /** Called with the number of bytes hashed since the last call (about every 16 MiB, and at the end). */
  onBytes?: (n: number) => void;
}

export type FollowOptions = HashJobOptions;

/** The digests of a `follow` job: of all ranges as one stream, and of each range. */
export interface FollowDigests {
  /** Hex digest per algorithm, of the ranges as one stream. */
  hex: string[];
  /** Hex digests per range, each per algorithm. */
  ranges: string[][];
}

/**
 * A hash job over ranges still being written (see `HashPool.follow`). Its worker reads a byte
 * only once the writer says it is final, and every byte once.
 */
export interface FollowingHash {
  /** Bytes [0, to) of the ranges (as one stream) are written and final: hash them. */
  advance(to: number): void;
  /** Everything is written: hash the rest and give the digests. */
  finish(): Promise<FollowDigests>;
  /** Give up (nothing is hashed further); resolves once the worker has stopped. */
  stop(): Promise<void>;
}

/**
 * A file ended inside the range being hashed: it is shorter than the caller expected, or it
 * shrank while it was read (exit 3). A hash is never computed over fewer bytes than asked for.
 */
export class ShortReadError extends VerificationError {
  override readonly code = 'SHORT_READ';
  readonly path: string;
  /** Where the file ended (the first byte that could not be read). */
  readonly offset: number;
  /** The end of the range being read. */
  readonly end: number;
  constructor(path: string, offset: number, end: number) {
    super(`${path}: the file ends at byte ${offset}, inside the range being read (up to byte ${end})`, {
      hint: 'the file is shorter than expected or shrank while it was read; copy it again and leave it unchanged during the check',
    });
    this.path = path;
    this.offset = offset;
    this.end = end;
  }
}

const DEFAULT_BUFFER = 2 * 1024 * 1024;
const PROGRESS_EVERY = 16 * 1024 * 1024;

/**
 * The worker's code, run with `eval`: one job at a time, one reused buffer. A job is hashed up to
 * its `target`; a `follow` job's target moves with `advance` messages, the last one `final`. It
 * takes Node's modules with `process.getBuiltinModule`, which works whether the string runs as
 * CommonJS or as an ES module (a process started with `--input-type=module` passes that on to its
 * workers).
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
const { createHash } = process.getBuiltinModule('node:crypto');
let buf;
let job;
// One file open at a time; a descriptor the caller gave (verify: the files it walked) is read,
// never closed here.
function release(j) {
  if (j.fd >= 0) {
    const fd = j.fd;
    j.fd = -1;
    closeSync(fd);
  }
}
function fail(j, m) {
  try { release(j); } catch {}
  job = undefined;
  parentPort.postMessage(Object.assign({ id: j.id }, m));
}
function pump(j) {
  const ranges = j.ranges;
  while (j.done < j.target) {
    const r = ranges[j.idx];
    if (j.off >= r.length) {
      release(j);
      j.idx++;
      j.off = 0;
      continue;
    }
    let rfd = r.fd;
    if (typeof rfd !== 'number') {
      if (j.fd < 0) j.fd = openSync(r.path, 'r');
      rfd = j.fd;
    }
    const want = Math.min(buf.length, j.target - j.done, r.length - j.off);
    const n = readSync(rfd, buf, 0, want, r.start + j.off);
    if (n === 0) {
      fail(j, { kind: 'short', path: r.path, offset: r.start + j.off, end: r.start + r.length });
      return;
    }
    const chunk = n === buf.length ? buf : buf.subarray(0, n);
    for (const h of j.hashes) h.update(chunk);
    if (j.per) for (const h of j.per[j.idx]) h.update(chunk);
    j.off += n;
    j.done += n;
    j.pending += n;
    if (j.pending >= j.progressEvery) {
      parentPort.postMessage({ id: j.id, kind: 'progress', bytes: j.pending });
      j.pending = 0;
    }
  }
  if (!j.final) return;
  release(j);
  job = undefined;
  parentPort.postMessage({
    id: j.id,
    kind: 'done',
    bytes: j.pending,
    hex: j.hashes.map((h) => h.digest('hex')),
    per: j.per ? j.per.map((hs) => hs.map((h) => h.digest('hex'))) : undefined,
  });
}
function run(j) {
  try {
    pump(j);
  } catch (err) {
    fail(j, {
      kind: 'error',
      path: (j.ranges[j.idx] || j.ranges[0] || { path: '' }).path,
      message: String((err && err.message) || err),
      code: err && err.code,
      syscall: err && err.syscall,
      errno: err && err.errno,
    });
  }
}
parentPort.on('message', (m) => {
  if (m.kind === 'job') {
    if (!buf || buf.length !== m.bufferSize) buf = Buffer.allocUnsafeSlow(m.bufferSize);
    let total = 0;
    for (const r of m.ranges) total += r.length;
    job = {
      id: m.id,
      ranges: m.ranges,
      hashes: m.algorithms.map((a) => createHash(a)),
      per: m.perRange ? m.ranges.map(() => m.algorithms.map((a) => createHash(a))) : undefined,
      progressEvery: m.progressEvery,
      total,
      target: m.final ? total : Math.min(m.target, total),
      final: m.final,
      idx: 0,
      off: 0,
      done: 0,
      pending: 0,
      fd: -1,
    };
    run(job);
  } else if (m.kind === 'advance') {
    const j = job;
    if (!j || j.id !== m.id) return;
    if (m.final) {
      j.final = true;
      j.target = j.total;
    } else if (m.to > j.target) {
      j.target = Math.min(m.to, j.total);
    }
    run(j);
  }
});
`;

type WorkerMessage =
  | { id: number; kind: 'progress'; bytes: number }
  | { id: number; kind: 'done'; bytes: number; hex: string[]; per?: string[][] }
  | { id: number; kind: 'short'; path: string; offset: number; end: number }
  | {
      id: number;
      kind: 'error';
      path: string;
      message: string;
      code?: string;
      syscall?: string;
      errno?: number;
    };

interface Job {
  id: number;
  ranges: FileRange[];
  algorithms: string[];
  opts: FollowOptions;
  /** Also a digest of each range (follow jobs). */
  perRange: boolean;
  /** How far the worker may read (all of it for `hash`). */
  target: number;
  /** No more `advance`: the worker finishes at the end of the ranges. */
  final: boolean;
  resolve: (result: FollowDigests) => void;
  reject: (err: unknown) => void;
  settled: boolean;
  onAbort: (() => void) | undefined;
  slot: Slot | undefined;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

/** The error of a failed read in a worker, as Node's own (code, syscall), naming the file. */
function workerError(m: Extract<WorkerMessage, { kind: 'error' }>): NodeJS.ErrnoException {
  const message = m.path && !m.message.includes(m.path) ? `${m.message}: ${m.path}` : m.message;
  const err: NodeJS.ErrnoException = new Error(message);
  if (m.code !== undefined) err.code = m.code;
  if (m.syscall !== undefined) err.syscall = m.syscall;
  if (m.errno !== undefined) err.errno = m.errno;
  if (m.path) err.path = m.path;
  return err;
}

/**
 * Worker threads that hash lists of file ranges. Jobs queue when every worker is busy and run
 * in the order given; workers start on demand, are referenced while they run a job (a process
 * awaiting a digest cannot exit before it), unreferenced while idle (an idle pool keeps no process
 * alive) and stop on `close()`. Create one per operation and close it in a `finally`.
 */
export class HashPool {
  /** The most workers this pool runs at once. */
  readonly workers: number;
  private readonly bufferSize: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: HashPoolOptions = {}) {
    const workers = opts.workers ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(workers)) throw new RangeError(`workers must be an integer, not ${workers}`);
    this.workers = Math.max(1, workers);
    const bufferSize = opts.bufferSize ?? DEFAULT_BUFFER;
    if (!Number.isInteger(bufferSize) || bufferSize < 4096) {
      throw new RangeError(`bufferSize must be an integer >= 4096, not ${bufferSize}`);
    }
    this.bufferSize = bufferSize;
  }

  /**
   * Hash the ranges, in order, as one stream with each algorithm (`sha256`, `sha512`, …);
   * resolves with the hex digests in the order of `algorithms`. Rejects with ShortReadError when
   * a file ends inside its range, with Node's error (naming the file) when a file cannot be
   * opened or read, and with AbortedError when `opts.signal` aborts or the pool is closed.
   */
  hash(
    ranges: readonly FileRange[],
    algorithms: readonly string[],
    opts: HashJobOptions = {},
  ): Promise<string[]> {
    try {
      const job = this.enqueue(ranges, algorithms, opts, { perRange: false, final: true });
      return job.promise.then((r) => r.hex);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Hash ranges that are still being written, behind the writer: the worker reads only below the
   * frontier `advance` gives and ends when `finish()` is called, so the hashing overlaps the
   * writing and reads each byte once (from the page cache). It gives the digest of the ranges as
   * one stream and of each range. The job holds a worker (and keeps the process alive) until it
   * finishes or stops; failures are as for `hash`, and `advance` throws one that already happened.
   */
  follow(
    ranges: readonly FileRange[],
    algorithms: readonly string[],
    opts: FollowOptions = {},
  ): FollowingHash {
    const { job, promise } = this.enqueue(ranges, algorithms, opts, { perRange: true, final: false });
    let failure: unknown;
    let failed = false;
    // Until someone awaits `finish()`, a failure must not surface as an unhandled rejection.
    promise.catch((err: unknown) => {
      failed = true;
      failure = err;
    });
    return {
      advance: (to: number) => {
        if (failed) throw failure;
        if (job.final || to <= job.target) return;
        job.target = to;
        job.slot?.worker.postMessage({ kind: 'advance', id: job.id, to });
      },
      finish: () => {
        if (!job.final) {
          job.final = true;
          job.slot?.worker.postMessage({ kind: 'advance', id: job.id, final: true });
        }
        return promise;
      },
      stop: async () => {
        const slot = job.slot;
        this.abort(job, new AbortedError('the hash job was stopped'));
        await slot?.worker.terminate();
      },
    };
  }

  /** Check a job and queue it. */
  private enqueue(
    ranges: readonly FileRange[],
    algorithms: readonly string[],
    opts: FollowOptions,
    kind: { perRange: boolean; final: boolean },
  ): { job: Job; promise: Promise<FollowDigests> } {
    throwIfAborted(opts.signal);
    if (this.closed) throw new AbortedError('the hash pool is closed');
    if (algorithms.length === 0) throw new RangeError('no hash algorithm given');
    for (const a of algorithms) createHash(a); // an unknown algorithm fails here, not in a worker
    for (const r of ranges) {
      if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.length) || r.start < 0 || r.length < 0) {
        throw new RangeError(`invalid range [${r.start}, +${r.length}) of ${r.path}`);
      }
    }
    let job!: Job;
    const promise = new Promise<FollowDigests>((resolve, reject) => {
      job = {
        id: this.nextId++,
        ranges: ranges.map((r) => ({
          path: r.path,
          start: r.start,
          length: r.length,
          ...(r.fd !== undefined ? { fd: r.fd } : {}),
        })),
        algorithms: [...algorithms],
        opts,
        perRange: kind.perRange,
        target: 0,
        final: kind.final,
        resolve,
        reject,
        settled: false,
        onAbort: undefined,
        slot: undefined,
      };
    });
    const signal = opts.signal;
    if (signal) {
      job.onAbort = () => this.abort(job, new AbortedError('operation aborted', { cause: signal.reason }));
      signal.addEventListener('abort', job.onAbort, { once: true });
    }
    this.queue.push(job);
    this.pump();
    return { job, promise };
  }

  /**
   * Boot the workers now rather than with the first jobs (a worker takes tens of milliseconds to
   * start), e.g. while the jobs are still being found. Idle workers keep no process alive.
   */
  start(): void {
    while (!this.closed && this.slots.length < this.workers) this.spawn().worker.unref();
  }

  /** Stop every worker; jobs not finished reject with AbortedError. */
  async close(): Promise<void> {
    this.closed = true;
    const closed = () => new AbortedError('the hash pool is closed');
    for (const job of this.queue.splice(0)) this.settle(job, closed());
    const stopping: Promise<unknown>[] = [];
    for (const slot of this.slots.splice(0)) {
      if (slot.job) this.settle(slot.job, closed());
      stopping.push(slot.worker.terminate());
    }
    await Promise.all(stopping);
  }

  /** Start queued jobs on idle workers, starting workers up to the limit. */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot) {
        if (this.slots.length >= this.workers) return;
        slot = this.spawn();
      }
      const job = this.queue.shift() as Job;
      slot.job = job;
      job.slot = slot;
      slot.worker.ref();
      slot.worker.postMessage({
        kind: 'job',
        id: job.id,
        ranges: job.ranges,
        algorithms: job.algorithms,
        bufferSize: this.bufferSize,
        progressEvery: PROGRESS_EVERY,
        perRange: job.perRange,
        target: job.target,
        final: job.final,
      });
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (m: WorkerMessage) => this.onMessage(slot, m));
    worker.on('error', (err) => this.lose(slot, err));
    worker.on('exit', (code) => this.lose(slot, new Error(`a hash worker stopped (exit code ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private onMessage(slot: Slot, m: WorkerMessage): void {
    const job = slot.job;
    if (!job || job.id !== m.id) return;
    try {
      switch (m.kind) {
        case 'progress':
          job.opts.onBytes?.(m.bytes);
          return;
        case 'done':
          if (m.bytes > 0) job.opts.onBytes?.(m.bytes);
          this.settle(job, undefined, { hex: m.hex, ranges: m.per ?? [] });
          return;
        case 'short':
          this.settle(job, new ShortReadError(m.path, m.offset, m.end));
          return;
        case 'error':
          this.settle(job, workerError(m));
          return;
      }
    } catch (err) {
      // onBytes threw: the job fails with that error, the worker goes on with the next one
      this.settle(job, err);
    }
  }

  /** A worker failed or exited: its job (if any) rejects, naming the file; the slot is dropped. */
  private lose(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    const job = slot.job;
    if (job) {
      const path = job.ranges[0]?.path ?? '(no file)';
      this.settle(job, new Error(`hashing ${path}: ${err.message}`, { cause: err }));
    }
    this.pump();
  }

  /** Abort one job: drop it from the queue, or stop the worker hashing it. */
  private abort(job: Job, err: AbortedError): void {
    const q = this.queue.indexOf(job);
    if (q >= 0) this.queue.splice(q, 1);
    const slot = job.slot;
    if (slot) {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.job = undefined;
      void slot.worker.terminate();
    }
    this.settle(job, err);
    this.pump();
  }

  private settle(job: Job, err: unknown, result?: FollowDigests): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.opts.signal?.removeEventListener('abort', job.onAbort);
    job.onAbort = undefined;
    const slot = job.slot;
    job.slot = undefined;
    if (slot && slot.job === job) {
      slot.job = undefined;
      slot.worker.unref();
    }
    if (err === undefined) job.resolve(result as FollowDigests);
    else job.reject(err);
    if (slot) this.pump();
  }
}
