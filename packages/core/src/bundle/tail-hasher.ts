import { Worker } from 'node:worker_threads';
import type { Digest } from '../digest/index.ts';
import { ExitCode, LadingError } from '../errors/index.ts';

/**
 * Hashes output files from their start up to a frontier that only moves forward, on a worker
 * thread, while the files are still being written at random offsets behind and ahead of it: the
 * sha256 of the whole byte stream and of each file, in one read of each byte (from the page
 * cache), off the main thread. It also flushes each file to disk (fdatasync) every `syncEvery`
 * bytes, so the final fsync before the rename finds little left to write.
 *
 * The worker runs code given as text (`eval: true`), not a file: the standalone loader is a
 * single executable with no worker file beside it. It takes Node's modules through
 * `process.getBuiltinModule` (`require` is missing when the parent ran with `--input-type=module`).
 */

export interface TailFile {
  path: string;
  size: number;
}

export interface TailDigests {
  /** sha256 of the concatenation of the files. */
  digest: Digest;
  /** sha256 of each file. */
  files: Digest[];
}

/** The worker could not read back what was written (the file shrank, an I/O error). */
export class TailHashError extends LadingError {
  readonly code = 'OUTPUT_READ_BACK_FAILED';
  readonly exitCode: ExitCode = ExitCode.unexpected;
  constructor(message: string) {
    super(message, { hint: 'check the output disk (full, removed, failing) and run the command again' });
  }
}

const WORKER_CODE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
const fs = process.getBuiltinModule('node:fs');
const crypto = process.getBuiltinModule('node:crypto');
const { files, syncEvery, chunk } = workerData;
// One file open at a time: a bundle cut into many parts must not hold a descriptor per part.
const fds = files.map(() => -1);
function fdOf(i) { if (fds[i] < 0) fds[i] = fs.openSync(files[i].path, 'r'); return fds[i]; }
function closeFd(i) { if (fds[i] >= 0) { fs.fdatasyncSync(fds[i]); fs.closeSync(fds[i]); fds[i] = -1; } }
const whole = crypto.createHash('sha256');
const per = files.map(() => crypto.createHash('sha256'));
const buf = Buffer.allocUnsafe(chunk);
let done = 0, target = 0, idx = 0, off = 0, unsynced = 0;
function pump() {
  while (done < target) {
    const f = files[idx];
    if (off >= f.size) { closeFd(idx); idx++; off = 0; continue; }
    const n = Math.min(buf.length, target - done, f.size - off);
    const r = fs.readSync(fdOf(idx), buf, 0, n, off);
    if (r <= 0) throw new Error('reading ' + f.path + ' at byte ' + off + ' found the end of the file (it shrank while being written)');
    const s = buf.subarray(0, r);
    whole.update(s);
    per[idx].update(s);
    done += r; off += r; unsynced += r;
    if (unsynced >= syncEvery) { fs.fdatasyncSync(fdOf(idx)); unsynced = 0; }
  }
}
parentPort.on('message', (m) => {
  try {
    if (m.type === 'advance') {
      if (m.to > target) target = m.to;
      pump();
    } else if (m.type === 'finish') {
      target = m.to;
      pump();
      for (let i = 0; i < fds.length; i++) closeFd(i);
      parentPort.postMessage({ type: 'done', digest: whole.digest('hex'), files: per.map((h) => h.digest('hex')) });
    }
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: String(err && err.message || err) });
  }
});
`;

export class TailHasher {
  private readonly worker: Worker;
  private readonly total: number;
  private result: Promise<TailDigests>;
  private failure: Error | undefined;

  constructor(files: readonly TailFile[], opts: { syncEvery?: number; chunk?: number } = {}) {
    this.total = files.reduce((n, f) => n + f.size, 0);
    this.worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: {
        files: files.map((f) => ({ path: f.path, size: f.size })),
        syncEvery: opts.syncEvery ?? 128 * 1024 * 1024,
        chunk: opts.chunk ?? 1024 * 1024,
      },
    });
    this.worker.unref();
    this.result = new Promise<TailDigests>((resolve, reject) => {
      this.worker.on(
        'message',
        (m: { type: string; message?: string; digest?: string; files?: string[] }) => {
          if (m.type === 'done') {
            resolve({
              digest: `sha256:${m.digest}` as Digest,
              files: (m.files ?? []).map((h) => `sha256:${h}` as Digest),
            });
          } else if (m.type === 'error') {
            this.failure = new TailHashError(m.message ?? 'the output hasher failed');
            reject(this.failure);
          }
        },
      );
      this.worker.on('error', (err) => {
        this.failure = new TailHashError(`the output hasher failed: ${err.message}`);
        reject(this.failure);
      });
      this.worker.on('exit', () => reject(this.failure ?? new TailHashError('the output hasher stopped')));
    });
    // Until someone awaits `finish()`, a failure must not surface as an unhandled rejection.
    this.result.catch(() => {});
  }

  /** Bytes [0, to) are written and will not change: hash them (in the background). */
  advance(to: number): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage({ type: 'advance', to });
  }

  /** Everything is written: hash the rest, flush every file, and give the digests. */
  async finish(): Promise<TailDigests> {
    if (this.failure) throw this.failure;
    this.worker.postMessage({ type: 'finish', to: this.total });
    try {
      return await this.result;
    } finally {
      await this.worker.terminate();
    }
  }

  /** Stop without a result (discard). */
  async stop(): Promise<void> {
    await this.worker.terminate();
  }
}
