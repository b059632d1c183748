import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  InvalidSizeError,
  MissingPartError,
  OutputExistsError,
  openParts,
  PartChecksumError,
  parseSize,
  splitBundle,
} from '../src/bundle/index.ts';
import { AbortedError } from '../src/errors/index.ts';

function noise(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c);
  return Buffer.concat(out);
}

describe('split bundles', () => {
  let dir: string;
  let file: string;
  let data: Buffer;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-split-'));
    file = join(dir, 'shop.tar');
    data = noise(250_000 + 123, 5);
    await writeFile(file, data);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parseSize: decimal and binary units, bare letters binary, clear errors', () => {
    assert.equal(parseSize('123'), 123);
    assert.equal(parseSize('700MB'), 700_000_000);
    assert.equal(parseSize('700mb'), 700_000_000);
    assert.equal(parseSize('4GiB'), 4 * 2 ** 30);
    assert.equal(parseSize('1.5G'), 1.5 * 2 ** 30);
    assert.equal(parseSize('2 MiB'), 2 * 2 ** 20);
    assert.equal(parseSize('1KB'), 1000);
    assert.equal(parseSize('1k'), 1024);
    assert.equal(parseSize('1TB'), 1e12);
    assert.equal(parseSize(4096), 4096);
    for (const bad of ['', 'GiB', '-1', '1.2.3', '10 parsecs', '0', '0.1B', '1e9', '99999999999TiB']) {
      assert.throws(
        () => parseSize(bad),
        (err: unknown) =>
          err instanceof InvalidSizeError && err.exitCode === 2 && err.message.includes(`"${bad}"`),
        bad,
      );
    }
  });

  it('splits an existing bundle: cat of the parts is the original, sha256sum -c passes, sources untouched', async () => {
    const res = await splitBundle(file, { size: '100000' });
    assert.deepEqual(
      res.parts.map((p) => p.slice(dir.length + 1)),
      ['shop.tar.000', 'shop.tar.001', 'shop.tar.002'],
    );
    assert.equal(res.checksumFile, join(dir, 'shop.tar.sha256'));
    const cat = spawnSync('sh', ['-c', 'cat shop.tar.000 shop.tar.001 shop.tar.002'], { cwd: dir });
    assert.ok(Buffer.compare(cat.stdout, data) === 0, 'concatenation equals the original');
    assert.equal(res.digest, `sha256:${createHash('sha256').update(data).digest('hex')}`);
    const check = spawnSync('sha256sum', ['-c', '--strict', 'shop.tar.sha256'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(await readFile(res.checksumFile, 'utf8'), /^[0-9a-f]{64} {2}shop\.tar\.000\n/);
    assert.deepEqual(await readFile(file), data);
    assert.ok(!(await readdir(dir)).some((n) => n.includes('.tmp-')));

    // Refuses to replace existing parts, replaces them with overwrite, and removes stale extra parts.
    await assert.rejects(splitBundle(file, { size: 100_000 }), OutputExistsError);
    const bigger = await splitBundle(file, { size: 200_000, overwrite: true });
    assert.equal(bigger.parts.length, 2);
    assert.deepEqual((await readdir(dir)).sort(), [
      'shop.tar',
      'shop.tar.000',
      'shop.tar.001',
      'shop.tar.sha256',
    ]);
  });

  it('an exact multiple of the part size makes no empty trailing part; a missing source is a clear error', async () => {
    await writeFile(file, data.subarray(0, 200_000));
    const res = await splitBundle(file, { size: 100_000 });
    assert.equal(res.parts.length, 2);
    await assert.rejects(splitBundle(join(dir, 'nope.tar'), { size: 10 }), /nope\.tar does not exist/);
    assert.ok(!(await readdir(dir)).some((n) => n.startsWith('nope') || n.startsWith('.nope')));
  });

  it('aborting a split in the middle leaves nothing behind', async () => {
    // 8 MiB read in 1 MiB pieces into 1 MiB parts: abort once bytes have gone into a part's temp file.
    await writeFile(file, noise(8 * 1024 * 1024, 9));
    const ac = new AbortController();
    const written: string[] = [];
    const watcher = watch(dir, (event, name) => {
      if (event === 'change' && name?.includes('.tmp-') && !ac.signal.aborted) {
        written.push(name);
        ac.abort();
      }
    });
    try {
      await assert.rejects(splitBundle(file, { size: '1MiB', signal: ac.signal }), AbortedError);
    } finally {
      watcher.close();
    }
    assert.equal(written.length, 1, 'aborted after a part had been written to');
    assert.deepEqual(await readdir(dir), ['shop.tar']);

    const before = new AbortController();
    before.abort();
    await assert.rejects(splitBundle(file, { size: '1MiB', signal: before.signal }), AbortedError);
    assert.deepEqual(await readdir(dir), ['shop.tar']);
  });

  it('an --output that is a folder (existing, or ending in /) takes the parts under the bundle name', async () => {
    const existing = join(dir, 'usb');
    await rm(existing, { recursive: true, force: true });
    await mkdir(existing);
    await splitBundle(file, { size: 1000, output: existing });
    const inExisting = (await readdir(existing)).sort();
    assert.ok(
      inExisting.includes('shop.tar.000') && inExisting.includes('shop.tar.sha256'),
      inExisting.join(' '),
    );
    const fresh = join(dir, 'newdir');
    await rm(fresh, { recursive: true, force: true });
    await splitBundle(file, { size: 1000, output: `${fresh}/` });
    assert.ok((await readdir(fresh)).includes('shop.tar.000'));
    assert.ok(!(await readdir(dir)).some((n) => n.startsWith('newdir.')), 'nothing beside the folder');
  });

  it("removes the temporaries of a killed earlier writer (its process is gone), never a live writer's", async () => {
    const out = join(dir, 'again');
    await rm(out, { recursive: true, force: true });
    await splitBundle(file, { size: 1000, output: join(out, 'shop.tar') });
    // What SIGKILL leaves: a temp named after a process that no longer runs, and one of a live process.
    const dead = spawnSync('true').pid as number;
    const stale = `.shop.tar.001.tmp-${dead}-0123456789ab`;
    const live = `.shop.tar.001.tmp-${process.ppid}-0123456789ab`;
    await writeFile(join(out, stale), 'partial');
    await writeFile(join(out, live), 'partial');
    await splitBundle(file, { size: 1000, output: join(out, 'shop.tar'), overwrite: true });
    const names = await readdir(out);
    assert.ok(!names.includes(stale), names.join(' '));
    assert.ok(names.includes(live), 'a temp of a running process stays');
  });

  it('openParts reads across part boundaries and streams any range', async () => {
    await splitBundle(file, { size: 100_000 });
    const mp = await openParts(join(dir, 'shop.tar.000'), { verify: true, requireChecksumFile: true });
    try {
      assert.equal(mp.size, data.length);
      assert.deepEqual(mp.partSizes, [100_000, 100_000, 50_123]);
      assert.equal(mp.checksumFile, join(dir, 'shop.tar.sha256'));
      for (const [off, len] of [
        [0, 10],
        [99_990, 20],
        [99_999, 100_002],
        [150_000, 100_123],
        [250_000, 1000],
        [0, data.length],
      ] as const) {
        const got = await mp.read(off, len);
        assert.deepEqual(got, data.subarray(off, Math.min(off + len, data.length)), `read(${off}, ${len})`);
      }
      assert.equal((await mp.read(data.length, 10)).length, 0);
      assert.deepEqual(await collect(mp.createReadStream()), data);
      assert.deepEqual(await collect(mp.createReadStream(99_000, 201_000)), data.subarray(99_000, 201_000));
      assert.deepEqual(await collect(mp.createReadStream(100_000, 100_000)), Buffer.alloc(0));
    } finally {
      await mp.close();
    }
    // A plain file is a one-part bundle.
    const single = await openParts(file);
    assert.deepEqual(single.paths, [file]);
    assert.deepEqual(await single.read(5, 5), data.subarray(5, 10));
    await single.close();
  });

  it('openParts names a missing or damaged part', async () => {
    await splitBundle(file, { size: 60_000 }); // 5 parts
    const parts = (n: number) => join(dir, `shop.tar.${String(n).padStart(3, '0')}`);
    // Damaged part: caught by verify, not by a plain open.
    const saved = await readFile(parts(2));
    const damaged = Buffer.from(saved);
    damaged[10] = damaged[10]! ^ 0xff;
    await writeFile(parts(2), damaged);
    await (await openParts(parts(0))).close();
    await assert.rejects(
      openParts(parts(0), { verify: true }),
      (err: unknown) =>
        err instanceof PartChecksumError && err.exitCode === 3 && err.message.includes('shop.tar.002'),
    );
    await writeFile(parts(2), saved);
    // Last part missing: only the checksum file can tell.
    const last = await readFile(parts(4));
    await unlink(parts(4));
    await assert.rejects(
      openParts(parts(0)),
      (err: unknown) =>
        err instanceof MissingPartError &&
        err.part === parts(4) &&
        err.message === `${parts(0)}: part 5 of 5 (shop.tar.004) is missing (shop.tar.sha256 lists it)`,
    );
    await writeFile(parts(4), last);
    // A gap in the middle.
    await unlink(parts(1));
    await assert.rejects(
      openParts(parts(0)),
      (err: unknown) =>
        err instanceof MissingPartError &&
        err.code === 'PART_MISSING' &&
        err.part === parts(1) &&
        // counted from 1, as verify says it
        err.message === `${parts(0)}: part 2 of 5 (shop.tar.001) is missing`,
    );
    // The last one gone too: still out of the 5 the checksum file lists.
    const fifth = await readFile(parts(4));
    await unlink(parts(4));
    await assert.rejects(openParts(parts(0)), {
      message: `${parts(0)}: part 2 of 5 (shop.tar.001) is missing`,
    });
    await writeFile(parts(4), fifth);
    // No checksum file, when required.
    await unlink(join(dir, 'shop.tar.sha256'));
    await assert.rejects(openParts(parts(0), { requireChecksumFile: true }), MissingPartError);
  });
});
