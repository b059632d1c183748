import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  openParts,
  type PartDigest,
  type ProblemKind,
  type VerifyOptions,
  type VerifyReport,
  verifyBundle,
} from '../src/bundle/index.ts';
import { type FileRange, type HashJobOptions, HashPool } from '../src/digest/index.ts';
import { AbortedError } from '../src/errors/index.ts';
import {
  bytes,
  flipByteOf,
  type Keys,
  makeKeys,
  makeStaging,
  run,
  type Staging,
  sha256hex,
  sign,
  tarUp,
  tmp,
} from './bundle-read-fixture.ts';

/**
 * verifyBundle on a local tar or split bundle walks the tar by seeking and hashes large members
 * (and whole files) in worker threads. Each case checks that the pool did the work and that the
 * report is exactly the one the streaming path gives for the same bytes (read through a reader,
 * as an s3:// bundle is).
 */

/** A HashPool that records its jobs and can act just before one starts. */
class SpyPool extends HashPool {
  readonly jobs: Array<{ ranges: FileRange[]; algorithms: string[] }> = [];
  beforeJob: ((ranges: readonly FileRange[]) => void) | undefined;
  override hash(
    ranges: readonly FileRange[],
    algorithms: readonly string[],
    opts?: HashJobOptions,
  ): Promise<string[]> {
    this.jobs.push({ ranges: [...ranges], algorithms: [...algorithms] });
    this.beforeJob?.(ranges);
    return super.hash(ranges, algorithms, opts);
  }
}

const sha512hex = (b: Buffer) => createHash('sha512').update(b).digest('hex');
const total = (ranges: FileRange[]) => ranges.reduce((n, r) => n + r.length, 0);

function has(report: VerifyReport, member: string, kind: ProblemKind): boolean {
  return report.problems.some((p) => p.member === member && p.kind === kind);
}

function show(report: VerifyReport): string {
  return JSON.stringify(report.problems, null, 1);
}

/** Larger than MAX_MANIFEST_BYTES (4 MiB): not kept in memory, so hashed in the pool. */
const BIG = 6 * 1024 * 1024 + 123;

describe('verifyBundle: the parallel path', () => {
  let root: string;
  let keys: Keys;
  let st: Staging;
  let good: string;
  let pool: SpyPool;
  const layer = () => `blobs/sha256/${st.blobs.layer1.hex}`;

  before(() => {
    root = tmp('lading-verify-parallel-');
    keys = makeKeys(root);
    st = makeStaging(join(root, 'staging'), keys, { layer1Bytes: BIG });
    good = tarUp(st.dir, st.members, join(root, 'good.tar'));
  });
  beforeEach(() => {
    pool = new SpyPool({ workers: 2 });
  });
  afterEach(() => pool.close());
  after(() => rmSync(root, { recursive: true, force: true }));

  const copyGood = (name: string) => {
    const p = join(root, name);
    copyFileSync(good, p);
    return p;
  };

  /** The same bundle verified by the streaming path: a reader over the files instead of a path. */
  async function streamed(path: string, opts: Partial<VerifyOptions> = {}): Promise<VerifyReport> {
    const reader = await openParts(path);
    const partsFile = path.endsWith('.000') ? `${path.slice(0, -4)}.sha256` : undefined;
    return verifyBundle(
      {
        reader,
        name: path,
        ...(partsFile
          ? {
              partsChecksum: {
                name: partsFile,
                read: async () => (existsSync(partsFile) ? readFileSync(partsFile) : undefined),
                readSignature: async () =>
                  existsSync(`${partsFile}.sig`) ? readFileSync(`${partsFile}.sig`) : undefined,
              },
            }
          : {}),
      },
      { publicKey: keys.pub, ...opts },
    );
  }

  const parallel = (path: string, opts: Partial<VerifyOptions> = {}) =>
    verifyBundle(path, { publicKey: keys.pub, hashPool: pool, ...opts });

  it('a good tar: the large layer and the whole file are hashed in the pool; same report and file hash as streaming', async () => {
    const files: PartDigest[] = [];
    const progress: Array<{ bytes: number; members: number }> = [];
    const report = await parallel(good, {
      onFile: (f) => files.push(f),
      onProgress: (p) => progress.push({ bytes: p.bytes, members: p.members }),
    });
    assert.equal(report.ok, true, show(report));
    const tar = readFileSync(good);
    const memberJob = pool.jobs.find((j) => total(j.ranges) === BIG);
    assert.ok(memberJob, JSON.stringify(pool.jobs));
    assert.equal(memberJob.ranges.length, 1);
    const r = memberJob.ranges[0]!;
    assert.equal(r.path, good);
    assert.ok(
      tar.subarray(r.start, r.start + r.length).equals(st.blobs.layer1.data),
      'the range is the layer',
    );
    assert.ok(
      pool.jobs.some((j) => j.ranges[0]?.start === 0 && total(j.ranges) === tar.length),
      'the whole tar for onFile',
    );
    assert.deepEqual(files, [{ name: 'good.tar', path: good, hex: sha256hex(tar), size: tar.length }]);

    const streamedFiles: PartDigest[] = [];
    assert.deepEqual(report, await streamed(good, { onFile: (f) => streamedFiles.push(f) }));
    assert.deepEqual(files, streamedFiles);
    assert.equal(report.members, st.members.length);
    assert.equal(
      report.bytes,
      st.members.reduce((n, m) => n + readFileSync(join(st.dir, m)).length, 0),
    );
    // Progress goes up to the whole source, members up to all of them.
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.bytes >= progress[i - 1]!.bytes);
    assert.equal(progress.at(-1)?.bytes, tar.length);
    assert.equal(progress.at(-1)?.members, report.members);
  });

  it('a byte flipped in the large layer is found by the worker, and fails both images', async () => {
    const p = copyGood('flip.tar');
    flipByteOf(p, st.blobs.layer1.data.subarray(5_000_000, 5_000_064), 9);
    const report = await parallel(p);
    assert.ok(pool.jobs.some((j) => total(j.ranges) === BIG));
    assert.equal(report.ok, false);
    assert.ok(has(report, layer(), 'digest'), show(report));
    assert.deepEqual(
      report.images.map((i) => i.ok),
      [false, false],
    );
    assert.deepEqual(report, await streamed(p));
  });

  it('a tar truncated inside the large layer → truncated, the report as streaming gives it', async () => {
    const p = copyGood('trunc.tar');
    const at = readFileSync(p).indexOf(st.blobs.layer1.data.subarray(0, 64));
    truncateSync(p, at + 2 * 1024 * 1024);
    const report = await parallel(p);
    assert.equal(report.ok, false);
    assert.ok(has(report, layer(), 'truncated'), show(report));
    assert.deepEqual(report, await streamed(p));
  });

  it('a file that shrinks while the worker hashes the layer → truncated on that member, never a hash', async () => {
    const p = copyGood('shrink.tar');
    pool.beforeJob = (ranges) => {
      if (total([...ranges]) === BIG) truncateSync(p, (ranges[0] as FileRange).start + 1000);
    };
    const report = await parallel(p);
    assert.equal(report.ok, false);
    const problem = report.problems.find((x) => x.member === layer());
    assert.equal(problem?.kind, 'truncated', show(report));
    assert.match(problem.message, /shrank/);
    assert.ok(!has(report, layer(), 'digest'));
    assert.ok(!has(report, layer(), 'missing'), 'a truncated member is not also missing');
  });

  it('aborting while the pool hashes rejects with AbortedError', async () => {
    const ac = new AbortController();
    pool.beforeJob = () => ac.abort();
    await assert.rejects(parallel(good, { signal: ac.signal }), AbortedError);
  });

  describe('split bundles', () => {
    let dir: string;
    const parts = () =>
      readdirSync(dir)
        .filter((n) => /^bundle\.tar\.\d{3}$/.test(n))
        .sort();
    const first = () => join(dir, 'bundle.tar.000');
    beforeEach(() => {
      dir = join(root, `split-${Math.random().toString(36).slice(2)}`);
      run('mkdir', ['-p', dir]);
      run('split', ['-b', '1M', '-d', '-a', '3', good, join(dir, 'bundle.tar.')]);
      run('sh', ['-c', 'sha256sum bundle.tar.[0-9][0-9][0-9] > bundle.tar.sha256'], dir);
      signSums();
    });
    /** NAME.tar.sha256.sig, made by the openssl CLI as an auditor would check it. */
    const signSums = () =>
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.key, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );

    it('good: the layer spanning parts and every part are hashed in the pool; same report as streaming', async () => {
      const report = await parallel(first());
      assert.equal(report.ok, true, show(report));
      const memberJob = pool.jobs.find((j) => total(j.ranges) === BIG);
      assert.ok(memberJob && memberJob.ranges.length >= 6, JSON.stringify(memberJob));
      const joined = Buffer.concat(
        memberJob.ranges.map((r) => readFileSync(r.path).subarray(r.start, r.start + r.length)),
      );
      assert.ok(joined.equals(st.blobs.layer1.data), 'the ranges are the layer');
      for (const n of parts()) {
        assert.ok(
          pool.jobs.some(
            (j) => j.ranges.length === 1 && j.ranges[0]?.path === join(dir, n) && j.ranges[0].start === 0,
          ),
          `whole-file job for ${n}`,
        );
      }
      assert.deepEqual(
        report.parts.map((x) => [x.name, x.ok, x.sha256]),
        parts().map((n) => [n, true, sha256hex(readFileSync(join(dir, n)))]),
      );
      assert.deepEqual(report, await streamed(first()));
    });

    it('a part changed inside the layer: the part and the layer are reported, as streaming does', async () => {
      const p = join(dir, 'bundle.tar.004');
      const buf = readFileSync(p);
      buf[1234] = (buf[1234] as number) ^ 0x01;
      writeFileSync(p, buf);
      const report = await parallel(first());
      assert.equal(report.ok, false);
      assert.ok(has(report, 'bundle.tar.004', 'digest'), show(report));
      assert.ok(has(report, layer(), 'digest'), show(report));
      assert.equal(report.parts.find((x) => x.name === 'bundle.tar.004')?.ok, false);
      assert.deepEqual(report, await streamed(first()));
    });

    it('a wrong part hash in the parts file (the parts themselves intact) is still reported', async () => {
      const sums = join(dir, 'bundle.tar.sha256');
      const text = readFileSync(sums, 'utf8').replace(
        /^[0-9a-f]{64}( {2}bundle\.tar\.002)$/m,
        `${'0'.repeat(64)}$1`,
      );
      writeFileSync(sums, text);
      signSums(); // by the key holder: only the part hash is wrong
      const report = await parallel(first());
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.problems.map((x) => [x.member, x.kind]),
        [['bundle.tar.002', 'digest']],
      );
      assert.equal(report.parts.find((x) => x.name === 'bundle.tar.002')?.ok, false);
      assert.ok(pool.jobs.length > parts().length);
      assert.deepEqual(report, await streamed(first()));
    });
  });

  describe('NAME.tar.sha256.sig', () => {
    let dir: string;
    const first = () => join(dir, 'bundle.tar.000');
    beforeEach(() => {
      dir = join(root, `sig-${Math.random().toString(36).slice(2)}`);
      run('mkdir', ['-p', dir]);
      run('split', ['-b', '1M', '-d', '-a', '3', good, join(dir, 'bundle.tar.')]);
      run('sh', ['-c', 'sha256sum bundle.tar.[0-9][0-9][0-9] > bundle.tar.sha256'], dir);
    });

    it('missing → a signature problem naming it (the parts list is not authenticated)', async () => {
      const report = await parallel(first());
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.problems.map((x) => [x.member, x.kind]),
        [['bundle.tar.sha256.sig', 'signature']],
      );
      assert.match(report.problems[0]?.message ?? '', /missing/);
    });

    it('the checksum file changed after signing (a line added) → the signature fails', async () => {
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.key, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );
      writeFileSync(join(dir, 'release.pub'), 'attacker key\n');
      run('sh', ['-c', 'sha256sum release.pub >> bundle.tar.sha256'], dir);
      const report = await parallel(first());
      assert.ok(has(report, 'bundle.tar.sha256.sig', 'signature'), show(report));
    });

    it('signed with another key → the signature fails; with the release key → OK', async () => {
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.otherKey, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );
      assert.ok(has(await parallel(first()), 'bundle.tar.sha256.sig', 'signature'));
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.key, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );
      const ok = await parallel(first());
      assert.equal(ok.ok, true, show(ok));
    });
  });

  describe('a sha512 blob', () => {
    /** A bundle with one more member, blobs/sha512/<hex of `named`> holding `data`. */
    function withSha512Blob(name: string, data: Buffer, named: Buffer): { path: string; member: string } {
      const s = join(root, name);
      run('cp', ['-r', st.dir, s]);
      const hex = sha512hex(named);
      const member = `blobs/sha512/${hex}`;
      run('mkdir', ['-p', join(s, 'blobs/sha512')]);
      writeFileSync(join(s, member), data);
      const members = [...st.members, member];
      run(
        'sh',
        ['-c', `sha256sum ${members.filter((m) => !m.startsWith('SHA256SUMS')).join(' ')} > SHA256SUMS`],
        s,
      );
      sign(s, keys.key);
      return { path: tarUp(s, members, join(root, `${name}.tar`)), member };
    }

    it('is hashed with sha512 in the pool: a good one passes, one under another name fails', async () => {
      const data = bytes(5 * 1024 * 1024, 21);
      const ok = withSha512Blob('sha512-ok', data, data);
      const report = await parallel(ok.path);
      assert.equal(report.ok, true, show(report));
      assert.ok(pool.jobs.some((j) => total(j.ranges) === data.length && j.algorithms.includes('sha512')));
      assert.deepEqual(report, await streamed(ok.path));

      const other = Buffer.from(data);
      other[7] = (other[7] as number) ^ 0x01;
      const bad = withSha512Blob('sha512-bad', data, other);
      const failed = await parallel(bad.path);
      assert.equal(failed.signature.ok, true);
      assert.deepEqual(
        failed.problems.map((x) => [x.member, x.kind]),
        [[bad.member, 'digest']],
      );
      assert.ok(failed.problems[0]?.message.includes(sha512hex(data)), show(failed));
      assert.deepEqual(failed, await streamed(bad.path));
    });
  });
});
