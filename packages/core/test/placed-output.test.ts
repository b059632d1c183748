import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputReadBackError, PlacedOutput } from '../src/bundle/placed-output.ts';
import { OutputExistsError } from '../src/bundle/split.ts';
import { AbortedError, ExitCode } from '../src/errors/index.ts';
import { WriteGatherer } from '../src/util/index.ts';

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('PlacedOutput (bundle written at offsets, hashed behind the writes)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-placed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Write `data` through `out` in shuffled pieces, settling as the prefix completes. */
  async function writeShuffled(out: PlacedOutput, data: Buffer, piece: number): Promise<void> {
    const pieces: Array<[number, number]> = [];
    for (let at = 0; at < data.length; at += piece) pieces.push([at, Math.min(data.length, at + piece)]);
    const order = [...pieces.keys()].sort(() => Math.random() - 0.5);
    const done = new Set<number>();
    let next = 0;
    await Promise.all(
      order.map(async (i) => {
        const [a, b] = pieces[i]!;
        await out.writeAt(a, data.subarray(a, b));
        done.add(i);
        while (done.has(next)) next++;
        out.settle(next < pieces.length ? pieces[next]![0] : data.length);
      }),
    );
  }

  /** A 3-part output written whole, then its second part's temporary cut to 50 000 bytes (named). */
  async function withShrunkPart(name: string): Promise<{ out: PlacedOutput; tmp: string }> {
    const out = new PlacedOutput(join(dir, name), 300_000, { splitSize: 100_000 });
    await out.prepare();
    await out.writeAt(0, randomBytes(300_000));
    const tmp = (await readdir(dir)).filter((n) => n.includes(`${name}.001`));
    assert.equal(tmp.length, 1);
    await truncate(join(dir, tmp[0]!), 50_000);
    return { out, tmp: tmp[0]! };
  }

  /** The output could not be read back: OutputReadBackError, exit unexpected, naming `tmp`. */
  const readBackFailure = (tmp: string) => (err: unknown) =>
    err instanceof OutputReadBackError && err.exitCode === ExitCode.unexpected && err.message.includes(tmp);

  it('writes in any order; the file, its digest and the settled prefix are right', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const out = new PlacedOutput(join(dir, 'b.tar'), data.length);
    await out.prepare();
    assert.deepEqual(
      await readdir(dir).then((n) => n.filter((x) => x === 'b.tar')),
      [],
      'nothing at the final name yet',
    );
    await writeShuffled(out, data, 256 * 1024 + 7);
    assert.equal(out.settled, data.length);
    const done = await out.commit();
    const onDisk = await readFile(join(dir, 'b.tar'));
    assert.ok(onDisk.equals(data));
    assert.equal(done.digest, sha(data));
    assert.deepEqual(done.sha256, [sha(data)]);
    assert.deepEqual(await readdir(dir), ['b.tar'], 'no temporary left');
  });

  it('splits into parts at the split size, with NAME.sha256 over them', async () => {
    const data = randomBytes(3 * 1000 * 1000 + 17);
    const out = new PlacedOutput(join(dir, 's.tar'), data.length, { splitSize: 1_000_000 });
    await out.prepare();
    await writeShuffled(out, data, 333_333);
    const done = await out.commit();
    assert.deepEqual(
      done.files.map((f) => f.slice(dir.length + 1)),
      ['s.tar.000', 's.tar.001', 's.tar.002', 's.tar.003'],
    );
    const parts = await Promise.all(done.files.map((f) => readFile(f)));
    assert.deepEqual(
      parts.map((p) => p.length),
      [1_000_000, 1_000_000, 1_000_000, 17],
    );
    assert.ok(Buffer.concat(parts).equals(data));
    assert.equal(done.digest, sha(data));
    assert.deepEqual(done.sha256, parts.map(sha));
    const sums = await readFile(join(dir, 's.tar.sha256'), 'utf8');
    assert.equal(sums.split('\n').filter(Boolean).length, 4);
    assert.match(sums, new RegExp(`${sha(parts[3]!).slice(7)}  s.tar.003`));
  });

  it('hashRange reads back what was written, across part boundaries, on the pool', async () => {
    const data = randomBytes(2 * 1000 * 1000 + 5);
    const out = new PlacedOutput(join(dir, 'h.tar'), data.length, { splitSize: 1_000_000 });
    await out.prepare();
    await out.writeAt(0, data);
    // A range that starts in part 0, spans part 1 and ends in part 2.
    assert.equal(await out.hashRange(999_000, 1_001_003), sha(data.subarray(999_000, 2_000_003)));
    assert.equal(await out.hashRange(0, 10), sha(data.subarray(0, 10)));
    assert.deepEqual(await out.readAt(999_000, 1_001_003), data.subarray(999_000, 2_000_003));
    // What is on disk decides: a byte changed after the write changes the digest.
    await out.writeAt(1_500_000, Buffer.from([data[1_500_000]! ^ 0xff]));
    assert.notEqual(await out.hashRange(999_000, 1_001_003), sha(data.subarray(999_000, 2_000_003)));
    await assert.rejects(out.hashRange(2_000_000, 10), RangeError);
    await assert.rejects(out.readAt(2_000_000, 10), RangeError);
    await out.discard();
    await assert.rejects(out.hashRange(0, 10), /already committed or discarded/);
  });

  it('hashRange of a part that shrank fails with OutputReadBackError naming it; an abort stays an abort', async () => {
    const { out, tmp } = await withShrunkPart('q.tar');
    await assert.rejects(out.hashRange(90_000, 100_000), readBackFailure(tmp));
    await assert.rejects(out.hashRange(0, 10, { signal: AbortSignal.abort() }), AbortedError);
    await out.discard();
    assert.deepEqual(await readdir(dir), []);
  });

  it('refuses to commit before every byte is settled, and discard leaves nothing', async () => {
    const out = new PlacedOutput(join(dir, 'x.tar'), 4096);
    await out.prepare();
    await out.writeAt(0, Buffer.alloc(2048, 1));
    out.settle(2048);
    await assert.rejects(out.commit(), /not settled/);
    await out.discard();
    assert.deepEqual(await readdir(dir), []);
  });

  it('refuses writes outside its size and an existing output unless overwrite', async () => {
    await writeFile(join(dir, 'e.tar'), 'old');
    await assert.rejects(new PlacedOutput(join(dir, 'e.tar'), 10).prepare(), OutputExistsError);
    const out = new PlacedOutput(join(dir, 'e.tar'), 10, { overwrite: true });
    await out.prepare();
    await assert.rejects(out.writeAt(8, Buffer.alloc(3)), RangeError);
    await out.writeAt(0, Buffer.from('0123456789'));
    out.settle(10);
    await out.commit();
    assert.equal(await readFile(join(dir, 'e.tar'), 'utf8'), '0123456789');
  });

  it('a part that shrinks under the hasher fails the commit with OutputReadBackError, leaving nothing', async () => {
    const { out, tmp } = await withShrunkPart('r.tar');
    out.settle(300_000);
    await assert.rejects(out.commit(), readBackFailure(tmp));
    assert.deepEqual(await readdir(dir), []);
  });

  it('a flush to disk that fails fails the commit with its error, leaving nothing', async () => {
    const out = new PlacedOutput(join(dir, 'f.tar'), 300_000, { splitSize: 100_000 });
    await out.prepare();
    await out.writeAt(0, randomBytes(300_000));
    out.settle(300_000);
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    await rm(join(dir, 'probe'));
    const datasync = proto.datasync;
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    proto.datasync = () => Promise.reject(eio);
    try {
      await assert.rejects(out.commit(), (err: unknown) => err === eio);
    } finally {
      proto.datasync = datasync;
    }
    assert.deepEqual(await readdir(dir), []);
  });

  it('an empty output is still a file', async () => {
    const out = new PlacedOutput(join(dir, 'z.tar'), 0);
    await out.prepare();
    const done = await out.commit();
    assert.equal((await readFile(join(dir, 'z.tar'))).length, 0);
    assert.equal(done.digest, sha(Buffer.alloc(0)));
  });
});

describe('WriteGatherer (few large writes)', () => {
  it('hands over full buffers of the chosen size, then the rest', async () => {
    const seen: number[] = [];
    const out: Buffer[] = [];
    const g = new WriteGatherer(async (b) => {
      seen.push(b.length);
      out.push(Buffer.from(b)); // the buffer is reused: copy it
    }, 1000);
    const data = randomBytes(4321);
    for (let at = 0; at < data.length; at += 300) await g.add(data.subarray(at, at + 300));
    await g.flush();
    assert.deepEqual(seen, [1000, 1000, 1000, 1000, 321]);
    assert.ok(Buffer.concat(out).equals(data));
    // a chunk of the full size with nothing buffered goes as is
    seen.length = 0;
    await g.add(Buffer.alloc(2500));
    assert.deepEqual(seen, [2500]);
  });
});
