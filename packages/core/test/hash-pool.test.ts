import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { openDescriptors } from '@lading/testkit';
import { type FileRange, HashPool, ShortReadError } from '../src/digest/index.ts';
import { AbortedError, ExitCode } from '../src/errors/index.ts';
import { bytes } from './bundle-read-fixture.ts';

const hex = (alg: string, ...parts: Buffer[]) => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('HashPool', () => {
  let root: string;
  let a: string;
  let b: string;
  let big: string;
  const aData = bytes(3 * 1024 * 1024 + 17, 11);
  const bData = bytes(1024 * 1024 + 5, 12);
  let pool: HashPool | undefined;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lading-hash-pool-'));
    a = join(root, 'a.bin');
    b = join(root, 'b.bin');
    big = join(root, 'big.bin');
    writeFileSync(a, aData);
    writeFileSync(b, bData);
    writeFileSync(big, Buffer.alloc(64 * 1024 * 1024, 7));
  });
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a range with an open descriptor hashes that file, even after another is renamed over its path', async () => {
    const path = join(root, 'swapped.bin');
    const first = bytes(300_000, 7);
    const second = bytes(300_000, 8);
    writeFileSync(path, first);
    const fd = openSync(path, 'r');
    try {
      writeFileSync(join(root, 'other.bin'), second);
      renameSync(join(root, 'other.bin'), path);
      pool = new HashPool({ workers: 1 });
      const [viaFd] = await pool.hash([{ path, start: 0, length: first.length, fd }], ['sha256']);
      assert.equal(viaFd, createHash('sha256').update(first).digest('hex'), 'the opened file');
      const [viaPath] = await pool.hash([{ path, start: 0, length: first.length }], ['sha256']);
      assert.equal(viaPath, createHash('sha256').update(second).digest('hex'), 'the path reopened');
      // The descriptor is still ours (the worker did not close it).
      assert.equal(fstatSync(fd).size, first.length);
    } finally {
      closeSync(fd);
    }
  });

  it('hashes ranges across two files as one stream (= the hash of the concatenation)', async () => {
    pool = new HashPool({ workers: 2, bufferSize: 64 * 1024 });
    // The tail of a from an odd offset, then the head of b: buffer-sized reads do not line up.
    const ranges: FileRange[] = [
      { path: a, start: 1_000_003, length: aData.length - 1_000_003 },
      { path: b, start: 0, length: 700_001 },
    ];
    const [got] = await pool.hash(ranges, ['sha256']);
    assert.equal(got, hex('sha256', aData.subarray(1_000_003), bData.subarray(0, 700_001)));
    // Whole files, and an empty range list (the hash of nothing).
    assert.deepEqual(
      await pool.hash(
        [
          { path: a, start: 0, length: aData.length },
          { path: b, start: 0, length: bData.length },
        ],
        ['sha256'],
      ),
      [hex('sha256', aData, bData)],
    );
    assert.deepEqual(await pool.hash([], ['sha256']), [hex('sha256')]);
  });

  it('computes several algorithms in one read, in the order asked', async () => {
    pool = new HashPool({ workers: 1 });
    const r = await pool.hash([{ path: b, start: 5, length: bData.length - 5 }], ['sha512', 'sha256']);
    assert.deepEqual(r, [hex('sha512', bData.subarray(5)), hex('sha256', bData.subarray(5))]);
    await assert.rejects(pool.hash([{ path: b, start: 0, length: 1 }], ['no-such-hash']));
  });

  it('reports bytes as they are hashed, adding up to the job', async () => {
    pool = new HashPool({ workers: 1 });
    const seen: number[] = [];
    const length = 40 * 1024 * 1024;
    await pool.hash([{ path: big, start: 0, length }], ['sha256'], { onBytes: (n) => seen.push(n) });
    assert.ok(seen.length >= 3, `progress in steps: ${seen.join(',')}`);
    assert.equal(
      seen.reduce((x, y) => x + y, 0),
      length,
    );
  });

  it('a file shorter than its range rejects with ShortReadError naming the file and offset, never a hash', async () => {
    pool = new HashPool({ workers: 1 });
    await assert.rejects(
      pool.hash(
        [
          { path: b, start: 0, length: 10 },
          { path: a, start: aData.length - 100, length: 200 },
        ],
        ['sha256'],
      ),
      (err: unknown) =>
        err instanceof ShortReadError &&
        err.path === a &&
        err.offset === aData.length &&
        err.end === aData.length + 100 &&
        err.exitCode === ExitCode.verification &&
        err.message.includes(a),
    );
    // The worker goes on with the next job.
    assert.deepEqual(await pool.hash([{ path: b, start: 0, length: 10 }], ['sha256']), [
      hex('sha256', bData.subarray(0, 10)),
    ]);
  });

  it('a file that cannot be opened rejects with the error naming the file', async () => {
    pool = new HashPool({ workers: 1 });
    const missing = join(root, 'missing.bin');
    await assert.rejects(
      pool.hash([{ path: missing, start: 0, length: 1 }], ['sha256']),
      (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT' && String(err).includes(missing),
    );
    if (process.getuid?.() !== 0) {
      const locked = join(root, 'locked.bin');
      writeFileSync(locked, 'x');
      chmodSync(locked, 0);
      await assert.rejects(
        pool.hash([{ path: locked, start: 0, length: 1 }], ['sha256']),
        (err: unknown) => (err as NodeJS.ErrnoException).code === 'EACCES' && String(err).includes(locked),
      );
    }
  });

  it('queues jobs when every worker is busy and runs them in order', async () => {
    pool = new HashPool({ workers: 1, bufferSize: 4096 });
    const finished: number[] = [];
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const start = i * 4099;
      const length = 30_000 + i * 1000;
      return pool!.hash([{ path: a, start, length }], ['sha256']).then(([h]) => {
        finished.push(i);
        return [h, hex('sha256', aData.subarray(start, start + length))];
      });
    });
    for (const [got, want] of await Promise.all(jobs)) assert.equal(got, want);
    // One worker: they finish in the order given (two workers would let short jobs overtake).
    assert.deepEqual(
      finished,
      jobs.map((_, i) => i),
    );
  });

  it('abort rejects with AbortedError: a running job (its worker is stopped), a queued one, one aborted before', async () => {
    pool = new HashPool({ workers: 1 });
    const running = new AbortController();
    const queued = new AbortController();
    const whole = { path: big, start: 0, length: 64 * 1024 * 1024 };
    // The worker hashing the running job: it must exit when the job is aborted.
    let stopped: Promise<unknown> | undefined;
    const first = pool.hash([whole], ['sha256', 'sha512'], {
      signal: running.signal,
      onBytes: () => {
        const [slot] = (pool as unknown as { slots: { worker: Worker }[] }).slots;
        stopped ??= once(slot!.worker, 'exit');
        running.abort();
      },
    });
    const second = pool.hash([{ path: b, start: 0, length: 100 }], ['sha256'], { signal: queued.signal });
    const third = pool.hash([{ path: b, start: 0, length: 100 }], ['sha256']);
    queued.abort();
    await assert.rejects(second, AbortedError);
    await assert.rejects(first, AbortedError);
    assert.ok(stopped, 'the running job had started');
    await stopped; // its worker exits (a hang here is the failure)
    // The pool replaces the stopped worker and goes on.
    assert.deepEqual(await third, [hex('sha256', bData.subarray(0, 100))]);
    const gone = new AbortController();
    gone.abort();
    await assert.rejects(pool.hash([whole], ['sha256'], { signal: gone.signal }), AbortedError);
  });

  it('close() rejects what is left and refuses new jobs', async () => {
    pool = new HashPool({ workers: 1 });
    const whole = { path: big, start: 0, length: 64 * 1024 * 1024 };
    const running = assert.rejects(pool.hash([whole], ['sha256', 'sha512']), AbortedError);
    const queued = assert.rejects(pool.hash([whole], ['sha256']), AbortedError);
    await pool.close();
    await running;
    await queued;
    await assert.rejects(pool.hash([whole], ['sha256']), AbortedError);
  });

  describe('follow (ranges still being written, hashed behind a frontier)', () => {
    it('reads only below the frontier, and gives the digest of the stream and of each range', async () => {
      const dir = mkdtempSync(join(root, 'follow-'));
      const f1 = join(dir, 'one');
      const f2 = join(dir, 'two');
      const d1 = bytes(3_000_001, 21);
      const d2 = bytes(1_234_567, 22);
      // The files exist at their full sizes (as the output's temporaries do), filled with zeros.
      writeFileSync(f1, Buffer.alloc(d1.length));
      writeFileSync(f2, Buffer.alloc(d2.length));
      pool = new HashPool({ workers: 1, bufferSize: 64 * 1024 });
      const job = pool.follow(
        [
          { path: f1, start: 0, length: d1.length },
          { path: f2, start: 0, length: d2.length },
        ],
        ['sha256'],
      );
      // Written in two steps, each made final only after it is on disk: had the worker read ahead
      // of the frontier, it would have hashed zeros.
      writeFileSync(f1, d1);
      job.advance(1000);
      job.advance(d1.length);
      await new Promise((r) => setTimeout(r, 50));
      writeFileSync(f2, d2);
      const got = await job.finish();
      assert.deepEqual(got.hex, [hex('sha256', d1, d2)]);
      assert.deepEqual(got.ranges, [[hex('sha256', d1)], [hex('sha256', d2)]]);
      // The pool is free for the next job.
      assert.deepEqual(await pool.hash([{ path: f2, start: 0, length: 10 }], ['sha256']), [
        hex('sha256', d2.subarray(0, 10)),
      ]);
    });

    it('a file shorter than its range fails with ShortReadError naming it, also from advance()', async () => {
      const short = join(root, 'short.bin');
      writeFileSync(short, Buffer.alloc(100));
      pool = new HashPool({ workers: 1 });
      const job = pool.follow([{ path: short, start: 0, length: 200 }], ['sha256']);
      job.advance(150);
      await assert.rejects(
        job.finish(),
        (err: unknown) => err instanceof ShortReadError && err.path === short && err.offset === 100,
      );
      assert.throws(() => job.advance(200), ShortReadError);
    });

    it('stop() gives up the job and frees its worker', async () => {
      pool = new HashPool({ workers: 1 });
      const job = pool.follow([{ path: big, start: 0, length: 64 * 1024 * 1024 }], ['sha256']);
      job.advance(1024);
      await job.stop();
      await assert.rejects(job.finish(), AbortedError);
      assert.deepEqual(await pool.hash([{ path: a, start: 0, length: 10 }], ['sha256']), [
        hex('sha256', aData.subarray(0, 10)),
      ]);
    });
  });

  // Node closes the descriptors a worker opened with fs.openSync when the worker exits (its
  // "unmanaged fds"): the pool relies on that when it stops a worker mid-job.
  it('a job stopped while its worker holds a file open leaves no descriptor behind', async () => {
    const fdsOn = openDescriptors;
    pool = new HashPool({ workers: 1 });
    const job = pool.follow([{ path: big, start: 0, length: 64 * 1024 * 1024 }], ['sha256']);
    job.advance(1024);
    // The worker opens the file when it reads below the frontier: wait until it has.
    for (const deadline = Date.now() + 10_000; fdsOn(big).length === 0; ) {
      assert.ok(Date.now() < deadline, 'the worker never opened the file');
      await new Promise((r) => setImmediate(r));
    }
    await job.stop();
    assert.deepEqual(fdsOn(big), [], 'the descriptor of the stopped worker is closed');

    // The same for a running one-shot job aborted through its signal.
    const ac = new AbortController();
    let exited: Promise<unknown> | undefined;
    const running = pool.hash([{ path: big, start: 0, length: 64 * 1024 * 1024 }], ['sha256'], {
      signal: ac.signal,
      onBytes: () => {
        const [slot] = (pool as unknown as { slots: { worker: Worker }[] }).slots;
        exited ??= once(slot!.worker, 'exit');
        ac.abort();
      },
    });
    await assert.rejects(running, AbortedError);
    assert.ok(exited, 'the job had started');
    await exited;
    assert.deepEqual(fdsOn(big), [], 'the descriptor of the aborted job is closed');
  });

  it('a process whose only work left is a hash job waits for it (running workers are referenced)', function () {
    this.timeout(30_000);
    const module = fileURLToPath(new URL('../src/digest/hash-pool.ts', import.meta.url));
    // Idle (unreferenced) workers first, then jobs that take a while on a worker: nothing else
    // keeps these processes alive, so an unreferenced running worker would let them exit (code 13,
    // unsettled top-level await) before printing.
    const range = `{ path: ${JSON.stringify(big)}, start: 0, length: ${64 * 1024 * 1024} }`;
    for (const job of [
      `(await pool.hash([${range}], ['sha256', 'sha512']))[0]`,
      `await (async () => { const j = pool.follow([${range}], ['sha256', 'sha512']); j.advance(1 << 20); await new Promise((r) => setTimeout(r, 20)); return (await j.finish()).hex[0]; })()`,
    ]) {
      const script = `import { HashPool } from ${JSON.stringify(module)};
const pool = new HashPool({ workers: 1 });
pool.start();
await new Promise((r) => setTimeout(r, 200));
console.log(${job});
await pool.close();`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 25_000,
      });
      assert.equal(out.trim(), hex('sha256', Buffer.alloc(64 * 1024 * 1024, 7)));
    }
  });

  it('idle workers keep no process alive, closed or not', function () {
    this.timeout(20_000);
    const module = fileURLToPath(new URL('../src/digest/hash-pool.ts', import.meta.url));
    for (const close of [false, true]) {
      const script = `import { HashPool } from ${JSON.stringify(module)};
const pool = new HashPool({ workers: 2 });
pool.start();
const [h] = await pool.hash([{ path: ${JSON.stringify(a)}, start: 0, length: 10 }], ['sha256']);
console.log(h);
${close ? 'await pool.close();' : ''}`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      assert.equal(out.trim(), hex('sha256', readFileSync(a).subarray(0, 10)));
    }
  });
});
