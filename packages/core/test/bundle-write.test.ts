import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { needs } from '@lading/testkit';
import {
  type BundleProgress,
  findUnfinished,
  generateKeyPair,
  type LadingJson,
  loadPrivateKey,
  METADATA_ORDER,
  OutputExistsError,
  parseSums,
  resolveEpoch,
  UnsupportedBlobError,
  writeBundle,
} from '../src/bundle/index.ts';
import type { CallOptions, Fetcher } from '../src/content/index.ts';
import { DigestMismatchError, digestOf, SizeMismatchError } from '../src/digest/index.ts';
import { AbortedError, VerificationError } from '../src/errors/index.ts';
import { type Descriptor, isManifestOrIndexType } from '../src/model/index.ts';
import { Limiter } from '../src/util/index.ts';
import {
  BytesFetcher,
  DirFetcher,
  indexOf,
  ladingFor,
  makeImage,
  makeSharedLayer,
  noise,
  putBlob,
  run,
  type TestImage,
} from './bundle-write-fixtures.ts';

const EPOCH = 1_700_000_000;

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

describe('bundle writer', function () {
  this.timeout(120_000);
  let dir: string;
  let store: string;
  let out: string;
  let images: TestImage[];
  let fetcher: DirFetcher;
  let blobs: Descriptor[];
  let pub: string;
  let keyPem: string;
  let extra: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lading-bw-'));
    store = join(dir, 'store');
    const shared = await makeSharedLayer(store);
    images = [
      await makeImage(store, 'registry.example/demo/app:1.0', 1, shared),
      await makeImage(store, 'registry.example/demo/web:2.0', 2, shared),
    ];
    // A big layer-like blob (bigger than any stream chunk) to exercise streaming.
    const big = await putBlob(store, noise(3 * 1024 * 1024 + 17, 7), 'application/octet-stream');
    blobs = [...images.flatMap((i) => i.blobs), big];
    fetcher = new DirFetcher(store);
    const pair = generateKeyPair();
    pub = join(dir, 'release.pub');
    keyPem = pair.privateKeyPem;
    await writeFile(pub, pair.publicKeyPem);
    extra = join(dir, 'extra');
    await mkdir(join(extra, 'values'), { recursive: true });
    await writeFile(join(extra, 'values', 'web.yaml'), 'replicas: 2\n');
    await writeFile(join(extra, 'RUNBOOK.md'), '# Runbook\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    out = await mkdtemp(join(dir, 'out-'));
  });

  async function write(name: string, overrides: Partial<Parameters<typeof writeBundle>[0]> = {}) {
    return writeBundle({
      output: join(out, name),
      ladingJson: ladingFor(images),
      index: indexOf(images),
      files: [
        { name: 'values/web.yaml', path: join(extra, 'values', 'web.yaml') },
        { name: 'RUNBOOK.md', path: join(extra, 'RUNBOOK.md') },
      ],
      blobs: { fetcher, descriptors: blobs },
      key: await loadPrivateKey(keyPem),
      epoch: EPOCH,
      ...overrides,
    });
  }

  it('writes members in contract order; tar -x + openssl + sha256sum -c pass (the auditor path)', async () => {
    const events: BundleProgress[] = [];
    fetcher.fetched = [];
    const res = await write('bundle.tar', { onProgress: (p) => events.push(p) });
    const bundle = join(out, 'bundle.tar');
    assert.deepEqual(res.files, [bundle]);
    assert.equal(res.size, (await stat(bundle)).size);
    assert.equal(res.digest, `sha256:${await sha256File(bundle)}`);
    assert.equal(res.signed, true);

    const listed = run('tar', ['-tf', bundle]);
    assert.equal(listed.status, 0, listed.stderr);
    const members = listed.stdout.trim().split('\n');
    const blobHexes = [...new Set(blobs.map((b) => b.digest.slice(7)))].sort();
    assert.equal(blobHexes.length, blobs.length - 1, 'the shared layer appears twice in the input');
    assert.deepEqual(members, [
      ...METADATA_ORDER,
      'files/RUNBOOK.md',
      'files/values/web.yaml',
      ...blobHexes.map((h) => `blobs/sha256/${h}`),
    ]);
    assert.deepEqual(res.members, members);

    // Deterministic metadata: owner 0/0, mode 0644, the epoch as mtime.
    const verbose = run('tar', ['--numeric-owner', '--full-time', '-tvf', bundle], undefined);
    assert.equal(verbose.status, 0, verbose.stderr);
    for (const line of verbose.stdout.trim().split('\n')) {
      assert.match(line, /^-rw-r--r-- 0\/0 /, line);
    }
    const tvUtc = run('env', ['TZ=UTC', 'tar', '--full-time', '-tvf', bundle]);
    assert.match(tvUtc.stdout, /2023-11-14 22:13:20 oci-layout/);

    const x = join(out, 'x');
    await mkdir(x);
    const ex = run('tar', ['-xf', bundle, '-C', x]);
    assert.equal(ex.status, 0, ex.stderr);
    const ossl = run(
      'openssl',
      ['dgst', '-sha256', '-verify', pub, '-signature', 'SHA256SUMS.sig', 'SHA256SUMS'],
      x,
    );
    assert.equal(ossl.status, 0, ossl.stdout + ossl.stderr);
    const check = run('sha256sum', ['-c', '--strict', 'SHA256SUMS'], x);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    // SHA256SUMS covers every member except the signature and itself, in member order.
    const sums = parseSums(await readFile(join(x, 'SHA256SUMS')));
    assert.deepEqual(
      sums.map((e) => e.path),
      members.filter((m) => m !== 'SHA256SUMS' && m !== 'SHA256SUMS.sig'),
    );
    assert.equal(res.sumsDigest, digestOf(await readFile(join(x, 'SHA256SUMS'))));
    // A tampered member fails sha256sum -c.
    await writeFile(join(x, 'files', 'RUNBOOK.md'), '# Runbook (edited)\n');
    assert.notEqual(run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], x).status, 0);

    assert.equal(await readFile(join(x, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    const lading = JSON.parse(await readFile(join(x, 'lading.json'), 'utf8')) as LadingJson;
    assert.deepEqual(lading.files, [
      { path: 'RUNBOOK.md', digest: digestOf('# Runbook\n'), size: 10 },
      { path: 'values/web.yaml', digest: digestOf('replicas: 2\n'), size: 12 },
    ]);
    const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 2);
    const sbom = JSON.parse(await readFile(join(x, 'sbom.cdx.json'), 'utf8'));
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.equal(sbom.metadata.timestamp, '2023-11-14T22:13:20Z');

    // Progress: ends at exactly the file size, all members done, bytes never go backwards.
    const planned = events.filter((e) => e.phase === 'planned');
    assert.equal(planned.length, 1);
    assert.equal(planned[0]!.bytesTotal, res.size);
    assert.equal(planned[0]!.bytesDone, 0);
    const last = events.at(-1)!;
    assert.equal(last.phase, 'done');
    assert.equal(last.bytesDone, res.size);
    assert.equal(last.bytesTotal, res.size);
    assert.equal(last.membersDone, members.length);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytesDone >= events[i - 1]!.bytesDone);
    // Each distinct blob fetched exactly once: manifests and indexes first (so the output's
    // hasher is not held at a manifest member until the last layer is in), then the other blobs
    // in digest order, the order of their members.
    const isDoc = (hex: string) =>
      isManifestOrIndexType(blobs.find((b) => b.digest === `sha256:${hex}`)!.mediaType);
    assert.ok(blobHexes.some(isDoc) && blobHexes.some((h) => !isDoc(h)));
    assert.deepEqual(fetcher.fetched, [
      ...blobHexes.filter(isDoc).map((h) => `sha256:${h}`),
      ...blobHexes.filter((h) => !isDoc(h)).map((h) => `sha256:${h}`),
    ]);
  });

  it('is reproducible: same inputs and epoch give a byte-identical tar; SOURCE_DATE_EPOCH is honoured', async () => {
    const a = await write('a.tar');
    const b = await write('b.tar', {
      // Same content, other input order: the bundle does not depend on it.
      blobs: { fetcher, descriptors: [...blobs].reverse() },
      files: [
        { name: 'RUNBOOK.md', path: join(extra, 'RUNBOOK.md') },
        { name: './values/web.yaml', path: join(extra, 'values', 'web.yaml') },
      ],
    });
    assert.equal(a.digest, b.digest);
    assert.equal(await sha256File(join(out, 'a.tar')), await sha256File(join(out, 'b.tar')));
    const c = await write('c.tar', { epoch: EPOCH + 1 });
    assert.notEqual(c.digest, a.digest);

    const saved = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = String(EPOCH);
      const d = await write('d.tar', { epoch: undefined });
      assert.equal(d.digest, a.digest);
      assert.equal(resolveEpoch(undefined, '2020-01-01T00:00:00Z'), EPOCH);
      process.env.SOURCE_DATE_EPOCH = 'yesterday';
      await assert.rejects(write('e.tar', { epoch: undefined }), /SOURCE_DATE_EPOCH/);
      delete process.env.SOURCE_DATE_EPOCH;
      assert.equal(resolveEpoch(undefined, '2020-01-01T00:00:00Z'), 1577836800);
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  async function assertNothingLeft(): Promise<void> {
    const names = (await readdir(out)).filter((n) => n !== 'x');
    assert.deepEqual(names, [], `left behind: ${names.join(', ')}`);
  }

  it('a fetcher serving wrong bytes aborts the write and leaves nothing (no output, no temp)', async () => {
    const victim = blobs.at(-1)!; // the big blob: the failure comes late, after megabytes were written
    const wrong = noise(victim.size, 12345);
    const bad = new BytesFetcher(fetcher, (d) => (d.digest === victim.digest ? wrong : undefined));
    await assert.rejects(
      write('bundle.tar', { blobs: { fetcher: bad, descriptors: blobs } }),
      (err: unknown) =>
        err instanceof DigestMismatchError && err.exitCode === 3 && err.message.includes(victim.digest),
    );
    await assertNothingLeft();

    // A small blob (under 1 MiB, hashed as it streams rather than read back on a worker) too.
    const small = blobs.find((d) => d.size < 1024 * 1024 && !isManifestOrIndexType(d.mediaType))!;
    const wrongSmall = new BytesFetcher(fetcher, (d) =>
      d.digest === small.digest ? noise(small.size, 54321) : undefined,
    );
    await assert.rejects(
      write('bundle.tar', { blobs: { fetcher: wrongSmall, descriptors: blobs } }),
      (err: unknown) => err instanceof DigestMismatchError && err.message.includes(small.digest),
    );
    await assertNothingLeft();

    // Too few bytes / too many bytes.
    for (const bytes of [wrong.subarray(0, 100), Buffer.concat([wrong, Buffer.from('x')])]) {
      const f = new BytesFetcher(fetcher, (d) => (d.digest === victim.digest ? bytes : undefined));
      await assert.rejects(
        write('bundle.tar', { blobs: { fetcher: f, descriptors: blobs } }),
        (err: unknown) => err instanceof SizeMismatchError,
      );
      await assertNothingLeft();
    }

    // A source that errors mid-stream.
    const failing: Fetcher = {
      async fetch(desc: Descriptor, opts?: CallOptions) {
        if (desc.digest !== victim.digest) return fetcher.fetch(desc, opts);
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(1000);
            throw new Error('connection reset');
          })(),
        );
      },
    };
    await assert.rejects(
      write('bundle.tar', { blobs: { fetcher: failing, descriptors: blobs } }),
      /connection reset/,
    );
    await assertNothingLeft();

    // A missing blob.
    const missing = await putBlob(
      join(dir, 'elsewhere'),
      Buffer.from('not in the store'),
      'application/octet-stream',
    );
    await assert.rejects(
      write('bundle.tar', { blobs: { fetcher, descriptors: [...blobs, missing] } }),
      (err: unknown) => (err as { code?: string }).code === 'NOT_FOUND',
    );
    await assertNothingLeft();
  });

  it('a changed extra file between hashing and writing is caught', async () => {
    const f = join(out, 'changing.txt');
    await writeFile(f, 'one\n');
    const slow: Fetcher = {
      async fetch(desc: Descriptor, opts?: CallOptions) {
        return fetcher.fetch(desc, opts);
      },
    };
    // Change the file after hashing: onProgress 'writing' is the first moment after the hash pass.
    let changed = false;
    await assert.rejects(
      write('bundle.tar', {
        files: [{ name: 'z.txt', path: f }],
        blobs: { fetcher: slow, descriptors: blobs },
        onProgress: (p) => {
          if (p.phase === 'writing' && !changed) {
            changed = true;
            writeFileSync(f, 'two\n');
          }
        },
      }),
      (err: unknown) => err instanceof VerificationError,
    );
    await rm(f);
    await assertNothingLeft();
  });

  it('blobs arrive out of order and a transfer that breaks starts over: the bundle is the same', async () => {
    const reference = await write('ref.tar');
    const refBytes = await readFile(reference.files[0]!);
    let broke = 0;
    // small blobs wait, so later ones finish first; the big one breaks once halfway
    const flaky: Fetcher = {
      async fetch(desc: Descriptor, opts?: CallOptions) {
        if (desc.size < 1024 * 1024) await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
        const inner = await fetcher.fetch(desc, opts);
        if (desc.size <= 1024 * 1024 || broke > 0) return inner;
        broke++;
        return Readable.from(
          (async function* () {
            let n = 0;
            for await (const c of inner as AsyncIterable<Buffer>) {
              yield c;
              n += c.length;
              if (n > desc.size / 2) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
            }
          })(),
        );
      },
    };
    const res = await write('retried.tar', {
      limiter: new Limiter(8),
      blobs: { fetcher: flaky, descriptors: blobs },
    });
    assert.equal(broke, 1);
    assert.ok((await readFile(res.files[0]!)).equals(refBytes), 'byte-identical to a plain write');
    assert.equal(res.digest, reference.digest);
  });

  it('a blob whose transfer keeps breaking is tried 1 + 5 times, then the write fails and leaves nothing', async () => {
    const victim = blobs.at(-1)!;
    let attempts = 0;
    const broken: Fetcher = {
      async fetch(desc: Descriptor, opts?: CallOptions) {
        if (desc.digest !== victim.digest) return fetcher.fetch(desc, opts);
        attempts++;
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(1000);
            throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          })(),
        );
      },
    };
    await assert.rejects(
      write('short.tar', { blobs: { fetcher: broken, descriptors: blobs } }),
      (err: unknown) => (err as { code?: string }).code === 'ECONNRESET',
    );
    assert.equal(attempts, 6);
    await assertNothingLeft();
  });

  it('a write stopped halfway parks its finished blobs; the next write of that output takes them and is identical', async () => {
    const reference = await write('ref.tar');
    const park = join(dir, `park-${Date.now()}`);
    const victim = blobs.at(-1)!;
    // the big blob waits until the writer reports every other member written, then the write is stopped
    let othersWritten!: () => void;
    const allButVictim = new Promise<void>((r) => {
      othersWritten = r;
    });
    const stopped: Fetcher = {
      async fetch(desc: Descriptor, opts?: CallOptions) {
        if (desc.digest !== victim.digest) return fetcher.fetch(desc, opts);
        await allButVictim;
        throw new Error('stopped');
      },
    };
    const output = { path: join(out, 'bundle.tar'), journal: true, park };
    await assert.rejects(
      write('bundle.tar', {
        output,
        blobs: { fetcher: stopped, descriptors: blobs },
        onProgress: (p) => {
          if (p.phase === 'writing' && p.membersDone === p.membersTotal - 1) othersWritten();
        },
      }),
      /stopped/,
    );
    assert.deepEqual(await readdir(out), ['ref.tar'], 'nothing of the stopped write beside the output');
    const unfinished = await findUnfinished(join(out, 'bundle.tar'), park);
    assert.ok(unfinished, 'the parked journal is found');
    assert.equal(
      unfinished.count,
      new Set(blobs.map((b) => b.digest)).size - 1,
      'every blob but the stopped one',
    );
    assert.equal(await unfinished.exists(victim), false);
    let fromSource = 0;
    const counting: Fetcher = {
      fetch: (d: Descriptor, o?: CallOptions) =>
        unfinished.exists(d).then((has) => {
          if (has) return unfinished.fetch(d, o);
          fromSource++;
          return fetcher.fetch(d, o);
        }),
    };
    const again = await write('bundle.tar', {
      output: { ...output, adopt: unfinished.files },
      blobs: { fetcher: counting, descriptors: blobs },
    });
    assert.equal(fromSource, 1, 'only the unfinished blob comes from the source');
    assert.equal(again.digest, reference.digest, 'the same bundle');
    assert.deepEqual(await readdir(park), [], 'the adopted files are removed once the bundle is in place');
  });

  it('aborting through the signal stops the write and leaves nothing', async () => {
    const ac = new AbortController();
    const p = write('bundle.tar', {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.bytesDone > 1024 * 1024) ac.abort(new Error('user pressed ^C'));
      },
    });
    await assert.rejects(p, (err: unknown) => err instanceof AbortedError);
    await assertNothingLeft();
  });

  it('unsigned bundles have no SHA256SUMS.sig; existing outputs are refused unless overwrite', async () => {
    const res = await write('u.tar', { key: undefined });
    assert.equal(res.signed, false);
    const members = run('tar', ['-tf', join(out, 'u.tar')])
      .stdout.trim()
      .split('\n');
    assert.deepEqual(members.slice(0, 5), [
      'oci-layout',
      'lading.json',
      'SHA256SUMS',
      'index.json',
      'sbom.cdx.json',
    ]);
    const before = await sha256File(join(out, 'u.tar'));
    await assert.rejects(
      write('u.tar'),
      (err: unknown) => err instanceof OutputExistsError && err.exitCode === 2,
    );
    assert.equal(await sha256File(join(out, 'u.tar')), before);
    const again = await write('u.tar', { output: { path: join(out, 'u.tar'), overwrite: true } });
    assert.equal(again.signed, true);
    assert.equal(await sha256File(join(out, 'u.tar')), again.digest.slice(7));
    assert.deepEqual((await readdir(out)).sort(), ['u.tar']);
  });

  it('rejects sha512 blobs and descriptors that disagree on a size, before writing anything', async () => {
    const d512: Descriptor = { mediaType: 'x', digest: digestOf('abc', 'sha512'), size: 3 };
    await assert.rejects(
      write('bundle.tar', { blobs: { fetcher, descriptors: [...blobs, d512] } }),
      (err: unknown) => err instanceof UnsupportedBlobError && err.message.includes('sha512'),
    );
    await assert.rejects(
      write('bundle.tar', {
        blobs: { fetcher, descriptors: [...blobs, { ...blobs[0]!, size: blobs[0]!.size + 1 }] },
      }),
      UnsupportedBlobError,
    );
    await assert.rejects(
      write('bundle.tar', { files: [{ name: '../escape', path: join(extra, 'RUNBOOK.md') }] }),
      /cannot go into the bundle/,
    );
    await assertNothingLeft();
  });

  it('long and non-ASCII file names use pax headers that GNU tar restores', async () => {
    const longName = `docs/${'very-long-directory-name/'.repeat(5)}${'x'.repeat(80)}.md`;
    const uni = 'docs/Überprüfung-日本.md';
    await writeFile(join(out, 'a'), 'long\n');
    await writeFile(join(out, 'b'), 'unicode\n');
    await write('p.tar', {
      files: [
        { name: longName, path: join(out, 'a') },
        { name: uni, path: join(out, 'b') },
      ],
    });
    const x = join(out, 'x');
    await mkdir(x);
    assert.equal(run('tar', ['-xf', join(out, 'p.tar'), '-C', x]).status, 0);
    assert.equal(await readFile(join(x, 'files', longName), 'utf8'), 'long\n');
    assert.equal(await readFile(join(x, 'files', uni), 'utf8'), 'unicode\n');
    assert.equal(run('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], x).status, 0);
    const lading = JSON.parse(await readFile(join(x, 'lading.json'), 'utf8')) as LadingJson;
    assert.deepEqual(
      lading.files.map((f) => f.path),
      [uni, longName].sort(),
    );
  });

  it('splits while writing: the parts concatenated are the unsplit bundle; sha256sum -c checks them', async () => {
    const whole = await write('whole.tar');
    const size = 1_000_000;
    const split = await write('s.tar', { output: { path: join(out, 's.tar'), splitSize: size } });
    assert.equal(split.digest, whole.digest);
    const n = Math.ceil(whole.size / size);
    assert.equal(split.files.length, n);
    assert.deepEqual(
      split.files,
      Array.from({ length: n }, (_, i) => join(out, `s.tar.${String(i).padStart(3, '0')}`)),
    );
    for (const [i, p] of split.files.entries()) {
      assert.equal((await stat(p)).size, i < n - 1 ? size : whole.size - size * (n - 1));
    }
    const cat = run('sh', ['-c', 'cat s.tar.0* | sha256sum'], out);
    assert.equal(cat.stdout.split(' ')[0], whole.digest.slice(7));
    assert.equal(split.checksumFile, join(out, 's.tar.sha256'));
    const check = run('sha256sum', ['-c', '--strict', 's.tar.sha256'], out);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.ok(!(await readdir(out)).some((n) => n.includes('.tmp-')));
  });

  it('skopeo reads the bundle as an oci-archive and copies the image with the same digests', async function () {
    needs(this, run('skopeo', ['--version']).status === 0, 'skopeo');
    const res = await write('bundle.tar');
    const ref = images[0]!.ref;
    const inspect = run('skopeo', ['inspect', '--raw', `oci-archive:${res.path}:${ref}`]);
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.equal(digestOf(inspect.stdout), images[0]!.manifest.digest);
    const info = run('skopeo', ['inspect', `oci-archive:${res.path}:${images[1]!.ref}`]);
    assert.equal(info.status, 0, info.stderr);
    assert.equal(JSON.parse(info.stdout).Digest, images[1]!.manifest.digest);
    // A full copy reads and verifies every blob of the image.
    const copy = run('skopeo', [
      'copy',
      '--quiet',
      `oci-archive:${res.path}:${ref}`,
      `oci:${join(out, 'copy')}:app`,
    ]);
    assert.equal(copy.status, 0, copy.stderr);
    const copied = JSON.parse(await readFile(join(out, 'copy', 'index.json'), 'utf8'));
    assert.equal(copied.manifests[0].digest, images[0]!.manifest.digest);
  });
});
