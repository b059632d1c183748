import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { AbortedError, throwIfAborted, VerificationError } from '../errors/index.ts';

/**
 * A small pool of worker threads that hash byte ranges of local files: each worker reads with
 * positional reads into one reused buffer and hashes, so several large files or members are
 * hashed at once, on every core, without their bytes crossing threads. The workers run code
 * given as a string (`eval`), not a worker file: the standalone loader (one esbuild bundle in a
 * Node single-executable) has no file to point a worker at.
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
 * The worker's code, run with `eval`: one job at a time, one reused buffer. It takes Node's
 * modules with `process.getBuiltinModule`, which works whether the string runs as CommonJS or
 * as an ES module (a process started with `--input-type=module` passes that on to its workers).
 */
const WORKER_SOURCE = `'use strict';
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
const { createHash } = process.getBuiltinModule('node:crypto');
let buf;
parentPort.on('message', (job) => {
  const { id, ranges, algorithms, bufferSize, progressEvery } = job;
  if (!buf || buf.length !== bufferSize) buf = Buffer.allocUnsafeSlow(bufferSize);
  let fd = -1;
  let path = ranges.length ? ranges[0].path : '';
  try {
    const hashes = algorithms.map((a) => createHash(a));
    let pending = 0;
    for (const r of ranges) {
      path = r.path;
      if (r.length === 0) continue;
      // A descriptor the caller opened (verify: the files it walked) is read, never closed here.
      const borrowed = typeof r.fd === 'number';
      fd = borrowed ? -1 : openSync(r.path, 'r');
      const rfd = borrowed ? r.fd : fd;
      const end = r.start + r.length;
      let pos = r.start;
      while (pos < end) {
        const n = readSync(rfd, buf, 0, Math.min(buf.length, end - pos), pos);
        if (n === 0) {
          parentPort.postMessage({ id, kind: 'short', path: r.path, offset: pos, end });
          return;
        }
        const chunk = n === buf.length ? buf : buf.subarray(0, n);
        for (const h of hashes) h.update(chunk);
        pos += n;
        pending += n;
        if (pending >= progressEvery) {
          parentPort.postMessage({ id, kind: 'progress', bytes: pending });
          pending = 0;
        }
      }
      if (fd >= 0) closeSync(fd);
      fd = -1;
    }
    parentPort.postMessage({ id, kind: 'done', bytes: pending, hex: hashes.map((h) => h.digest('hex')) });
  } catch (err) {
    parentPort.postMessage({
      id,
      kind: 'error',
      path,
      message: String((err && err.message) || err),
      code: err && err.code,
      syscall: err && err.syscall,
      errno: err && err.errno,
    });
  } finally {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {}
    }
  }
});
`;

type WorkerMessage =
  | { id: number; kind: 'progress'; bytes: number }
  | { id: number; kind: 'done'; bytes: number; hex: string[] }
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
  opts: HashJobOptions;
  resolve: (hex: string[]) => void;
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
 * in the order given; workers start on demand, are unreferenced while idle (an idle pool keeps
 * no process alive) and stop on `close()`. Create one per operation and close it in a `finally`.
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
      throwIfAborted(opts.signal);
      if (this.closed) throw new AbortedError('the hash pool is closed');
      if (algorithms.length === 0) throw new RangeError('no hash algorithm given');
      for (const a of algorithms) createHash(a); // an unknown algorithm fails here, not in a worker
      for (const r of ranges) {
        if (
          !Number.isSafeInteger(r.start) ||
          !Number.isSafeInteger(r.length) ||
          r.start < 0 ||
          r.length < 0
        ) {
          throw new RangeError(`invalid range [${r.start}, +${r.length}) of ${r.path}`);
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<string[]>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        ranges: ranges.map((r) => ({
          path: r.path,
          start: r.start,
          length: r.length,
          ...(r.fd !== undefined ? { fd: r.fd } : {}),
        })),
        algorithms: [...algorithms],
        opts,
        resolve,
        reject,
        settled: false,
        onAbort: undefined,
        slot: undefined,
      };
      const signal = opts.signal;
      if (signal) {
        job.onAbort = () => this.abort(job, new AbortedError('operation aborted', { cause: signal.reason }));
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.pump();
    });
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
        id: job.id,
        ranges: job.ranges,
        algorithms: job.algorithms,
        bufferSize: this.bufferSize,
        progressEvery: PROGRESS_EVERY,
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
          this.settle(job, undefined, m.hex);
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

  private settle(job: Job, err: unknown, hex?: string[]): void {
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
    if (err === undefined) job.resolve(hex as string[]);
    else job.reject(err);
    if (slot) this.pump();
  }
}
