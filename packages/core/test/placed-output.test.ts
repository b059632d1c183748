import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlacedOutput } from '../src/bundle/placed-output.ts';
import { OutputExistsError } from '../src/bundle/split.ts';
import { TailHashError, TailHasher } from '../src/bundle/tail-hasher.ts';
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

  it('an empty output is still a file', async () => {
    const out = new PlacedOutput(join(dir, 'z.tar'), 0);
    await out.prepare();
    const done = await out.commit();
    assert.equal((await readFile(join(dir, 'z.tar'))).length, 0);
    assert.equal(done.digest, sha(Buffer.alloc(0)));
  });
});

describe('TailHasher', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-tail-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes files behind a frontier, per file and as one stream', async () => {
    const a = randomBytes(3_000_001);
    const b = randomBytes(1_234_567);
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
    const h = new TailHasher(
      [
        { path: join(dir, 'a'), size: a.length },
        { path: join(dir, 'b'), size: b.length },
      ],
      { chunk: 65536, syncEvery: 1_000_000 },
    );
    h.advance(1000);
    h.advance(3_500_000);
    const d = await h.finish();
    assert.equal(d.digest, sha(Buffer.concat([a, b])));
    assert.deepEqual(d.files, [sha(a), sha(b)]);
  });

  it('runs in a parent started with --input-type=module (no require in its workers)', async () => {
    const data = randomBytes(100_000);
    await writeFile(join(dir, 'm'), data);
    const module = fileURLToPath(new URL('../src/bundle/tail-hasher.ts', import.meta.url));
    const script = `import { TailHasher } from ${JSON.stringify(module)};
const h = new TailHasher([{ path: ${JSON.stringify(join(dir, 'm'))}, size: ${data.length} }]);
console.log((await h.finish()).digest);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(out.trim(), sha(data));
  });

  it('a file shorter than declared fails with a typed error naming it', async () => {
    await writeFile(join(dir, 'short'), Buffer.alloc(100));
    const h = new TailHasher([{ path: join(dir, 'short'), size: 200 }]);
    await assert.rejects(
      h.finish(),
      (err: unknown) => err instanceof TailHashError && /short/.test(err.message),
    );
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
