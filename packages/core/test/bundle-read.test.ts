import assert from 'node:assert/strict';
import { createReadStream, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  BundleContentNotFoundError,
  BundleTarget,
  openBundle,
  openSource,
  RandomAccessTarInput,
  readTar,
  StreamTarInput,
  TarTruncatedError,
  verifyBundle,
} from '../src/bundle/index.ts';
import { fetchAll, fetchVerified } from '../src/content/index.ts';
import { type Digest, SizeMismatchError } from '../src/digest/index.ts';
import { ExitCode } from '../src/errors/index.ts';
import type { Descriptor } from '../src/model/index.ts';
import {
  type Keys,
  makeKeys,
  makeStaging,
  run,
  type Staging,
  sha256hex,
  tarUp,
  tmp,
} from './bundle-read-fixture.ts';

async function collect(r: AsyncIterable<Uint8Array> | Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('bundle reading', () => {
  let root: string;
  let keys: Keys;
  let st: Staging;
  let good: string;

  before(() => {
    root = tmp();
    keys = makeKeys(root);
    st = makeStaging(join(root, 'staging'), keys);
    good = tarUp(st.dir, st.members, join(root, 'good.tar'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('tar reader', () => {
    const longName = `files/${'d'.repeat(120)}/${'n'.repeat(80)}.txt`;
    const prefixName = `files/${'p'.repeat(90)}/short.txt`; // fits ustar prefix + name
    before(() => {
      const d = join(root, 'names');
      run('mkdir', ['-p', join(d, 'files', 'd'.repeat(120)), join(d, 'files', 'p'.repeat(90))]);
      writeFileSync(join(d, longName), 'long name content\n');
      writeFileSync(join(d, prefixName), 'prefix content\n');
      writeFileSync(join(d, 'empty'), '');
      writeFileSync(join(d, 'odd'), Buffer.alloc(513, 7));
    });

    for (const format of ['posix', 'gnu', 'ustar'] as const) {
      it(`reads ${format} archives: names, sizes and data offsets (random access = stream)`, async () => {
        const d = join(root, 'names');
        const names =
          format === 'ustar' ? [prefixName, 'empty', 'odd'] : [longName, prefixName, 'empty', 'odd'];
        const p = join(root, `names-${format}.tar`);
        run('tar', [`--format=${format}`, '-cf', p, '-C', d, ...names]);
        const fh = await open(p, 'r');
        const size = (await fh.stat()).size;
        try {
          const reader = {
            size,
            read: async (offset: number, length: number) => {
              const b = Buffer.alloc(length);
              const { bytesRead } = await fh.read(b, 0, length, offset);
              return b.subarray(0, bytesRead);
            },
          };
          const indexed = [];
          for await (const m of readTar(new RandomAccessTarInput(reader))) indexed.push(m);
          assert.deepEqual(
            indexed.map((m) => m.name),
            names,
          );
          const file = readFileSync(p);
          for (const m of indexed) {
            const want = readFileSync(join(d, m.name));
            assert.equal(m.size, want.length, m.name);
            assert.equal(m.type, 'file');
            assert.deepEqual(file.subarray(m.dataOffset, m.dataOffset + m.size), want, m.name);
          }
          const streamed = [];
          for await (const m of readTar(new StreamTarInput(createReadStream(p, { highWaterMark: 100 })))) {
            streamed.push({ name: m.name, offset: m.dataOffset, data: await collect(m.body()) });
          }
          assert.deepEqual(
            streamed.map((m) => [m.name, m.offset]),
            indexed.map((m) => [m.name, m.dataOffset]),
          );
          for (const m of streamed) assert.deepEqual(m.data, readFileSync(join(d, m.name)));
        } finally {
          await fh.close();
        }
      });
    }

    it('a truncated archive fails with TarTruncatedError naming the member', async () => {
      const p = join(root, 'trunc.tar');
      run('tar', ['--format=posix', '-cf', p, '-C', join(root, 'names'), 'odd', 'empty']);
      truncateSync(p, readFileSync(p).indexOf(Buffer.alloc(513, 7)) + 100);
      await assert.rejects(
        (async () => {
          for await (const m of readTar(new StreamTarInput(createReadStream(p)))) await collect(m.body());
        })(),
        (err: unknown) =>
          err instanceof TarTruncatedError && err.member === 'odd' && err.exitCode === ExitCode.verification,
      );
    });
  });

  describe('openBundle', () => {
    it('indexes members with offsets and parses the metadata', async () => {
      const b = await openBundle(good);
      try {
        assert.deepEqual([...b.members.keys()], st.members);
        assert.equal(b.ladingJson.name, 'shop');
        assert.equal(b.indexJson.manifests.length, 3);
        assert.deepEqual(b.sumsBytes, readFileSync(join(st.dir, 'SHA256SUMS')));
        assert.deepEqual(b.signature, readFileSync(join(st.dir, 'SHA256SUMS.sig')));
        assert.equal(b.sums.get(`blobs/sha256/${st.blobs.layer1.hex}`), st.blobs.layer1.hex);
        const file = readFileSync(good);
        for (const m of b.members.values()) {
          assert.deepEqual(
            file.subarray(m.offset, m.offset + m.size),
            readFileSync(join(st.dir, m.name)),
            m.name,
          );
        }
        assert.deepEqual(await b.readMember('files/values/web.yaml'), st.values);
        const part = await collect(b.openMember(`blobs/sha256/${st.blobs.layer1.hex}`, 1000, 2000));
        assert.deepEqual(part, st.blobs.layer1.data.subarray(1000, 2000));
      } finally {
        await b.close();
      }
    });

    it('refuses a truncated bundle and a non-bundle tar', async () => {
      const p = join(root, 'cut.tar');
      writeFileSync(p, readFileSync(good).subarray(0, 200_000));
      await assert.rejects(openBundle(p), TarTruncatedError);
      const q = tarUp(st.dir, ['oci-layout', 'index.json'], join(root, 'notabundle.tar'));
      await assert.rejects(openBundle(q), (err: unknown) => {
        return (err as { code?: string }).code === 'BUNDLE_MALFORMED' && String(err).includes('lading.json');
      });
    });
  });

  describe('BundleTarget', () => {
    let target: BundleTarget;
    before(async () => {
      target = await BundleTarget.open(good);
    });
    after(() => target.close());

    it('resolves references and lists them as tags', async () => {
      const tags: string[] = [];
      for await (const t of target.tags()) tags.push(t);
      assert.deepEqual(tags, [st.refs.app, st.refs.multi, st.refs.chart]);
      const app = await target.resolve(st.refs.app);
      assert.equal(app.digest, st.blobs.manifest1.digest);
      assert.equal(app.size, st.blobs.manifest1.size);
      assert.equal((await target.resolve(st.refs.chart)).digest, st.blobs.chartManifest.digest);
      assert.equal((await target.resolve(st.blobs.index.digest)).mediaType, st.blobs.index.mediaType);
      // A child manifest by digest: its media type is read from the blob.
      const child = await target.resolve(st.blobs.manifest2.digest);
      assert.deepEqual(
        [child.digest, child.size, child.mediaType],
        [st.blobs.manifest2.digest, st.blobs.manifest2.size, st.blobs.manifest2.mediaType],
      );
      await assert.rejects(target.resolve('docker.io/demo/nope:1'), (err: unknown) => {
        return (
          err instanceof BundleContentNotFoundError &&
          err.exitCode === ExitCode.usage &&
          String(err).includes('nope')
        );
      });
    });

    it('fetches every blob by ranged reads, bytes match their digests', async () => {
      for (const b of Object.values(st.blobs)) {
        const d: Descriptor = { mediaType: b.mediaType, digest: b.digest as Digest, size: b.size };
        assert.equal(await target.exists(d), true);
        const bytes = await collect(await fetchVerified(target, d));
        assert.equal(sha256hex(bytes), b.hex);
      }
      const layer = st.blobs.layer1;
      const d: Descriptor = { mediaType: layer.mediaType, digest: layer.digest as Digest, size: layer.size };
      assert.deepEqual(await collect(await target.fetchRange(d, 299_990)), layer.data.subarray(299_990));
      assert.deepEqual(await collect(await target.fetchRange(d, 5, 10)), layer.data.subarray(5, 10));
      const idx = await fetchAll(target, await target.resolve(st.refs.multi));
      assert.equal(JSON.parse(idx.toString()).manifests.length, 2);
    });

    it('answers exists=false and a typed error for blobs it does not hold, and checks sizes', async () => {
      const missing: Descriptor = { mediaType: 'x', digest: `sha256:${'0'.repeat(64)}` as Digest, size: 1 };
      assert.equal(await target.exists(missing), false);
      await assert.rejects(target.fetch(missing), BundleContentNotFoundError);
      const l = st.blobs.layer2;
      await assert.rejects(
        target.fetch({ mediaType: l.mediaType, digest: l.digest as Digest, size: l.size + 1 }),
        SizeMismatchError,
      );
    });
  });

  describe('split bundles', () => {
    let dir: string;
    const partsOf = (d: string) =>
      readdirSync(d)
        .filter((n) => /^bundle\.tar\.\d{3}$/.test(n))
        .sort();
    beforeEach(() => {
      dir = join(root, `split-${Math.random().toString(36).slice(2)}`);
      run('mkdir', ['-p', dir]);
      run('split', ['-b', '65536', '-d', '-a', '3', good, join(dir, 'bundle.tar.')]);
      run('sh', ['-c', 'sha256sum bundle.tar.[0-9][0-9][0-9] > bundle.tar.sha256'], dir);
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.key, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );
    });

    it('verifies the parts (parts file and every part hashed in the same pass)', async () => {
      const report = await verifyBundle(join(dir, 'bundle.tar.000'), { publicKey: keys.pub });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.bundle.kind, 'parts');
      assert.deepEqual(
        report.parts.map((p) => [p.name, p.ok, p.sha256]),
        partsOf(dir).map((n) => [n, true, sha256hex(readFileSync(join(dir, n)))]),
      );
      assert.ok(report.parts.length >= 6);
    });

    it('BundleTarget reads a blob spanning parts', async () => {
      const t = await BundleTarget.open(join(dir, 'bundle.tar.000'));
      try {
        const l = st.blobs.layer1;
        const bytes = await collect(
          await fetchVerified(t, { mediaType: l.mediaType, digest: l.digest as Digest, size: l.size }),
        );
        assert.equal(bytes.length, l.size);
        const src = await openSource(join(dir, 'bundle.tar.000'));
        assert.equal(src.kind, 'parts');
        assert.equal(src.size, readFileSync(good).length);
        await src.close();
      } finally {
        await t.close();
      }
    });

    it('names a missing part', async () => {
      rmSync(join(dir, 'bundle.tar.002'));
      const report = await verifyBundle(join(dir, 'bundle.tar.000'), { publicKey: keys.pub });
      assert.equal(report.ok, false);
      assert.ok(
        report.problems.some((p) => p.member === 'bundle.tar.002' && p.kind === 'missing'),
        JSON.stringify(report.problems),
      );
      assert.ok(report.problems.some((p) => p.kind === 'truncated'));
      await assert.rejects(openBundle(join(dir, 'bundle.tar.000')), (err: unknown) =>
        String(err).includes('bundle.tar.002'),
      );
    });

    it('names a changed part and the member in it', async () => {
      const p = join(dir, 'bundle.tar.003');
      const buf = readFileSync(p);
      buf[100] = (buf[100] as number) ^ 0xff;
      writeFileSync(p, buf);
      const report = await verifyBundle(join(dir, 'bundle.tar.000'), { publicKey: keys.pub });
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((x) => x.member === 'bundle.tar.003' && x.kind === 'digest'));
      assert.ok(report.problems.some((x) => x.member.startsWith('blobs/sha256/') && x.kind === 'digest'));
      assert.equal(report.parts.find((x) => x.name === 'bundle.tar.003')?.ok, false);
    });

    it('reports a missing parts checksum file and an extra part', async () => {
      rmSync(join(dir, 'bundle.tar.sha256'));
      const r1 = await verifyBundle(join(dir, 'bundle.tar.000'), { publicKey: keys.pub });
      assert.ok(r1.problems.some((x) => x.member === 'bundle.tar.sha256' && x.kind === 'missing'));
      run('sh', ['-c', 'sha256sum bundle.tar.[0-9][0-9][0-9] > bundle.tar.sha256'], dir);
      run(
        'openssl',
        ['dgst', '-sha256', '-sign', keys.key, '-out', 'bundle.tar.sha256.sig', 'bundle.tar.sha256'],
        dir,
      );
      const n = partsOf(dir).length;
      writeFileSync(join(dir, `bundle.tar.${String(n).padStart(3, '0')}`), Buffer.alloc(1024));
      const r2 = await verifyBundle(join(dir, 'bundle.tar.000'), { publicKey: keys.pub });
      assert.ok(
        r2.problems.some(
          (x) => x.member === `bundle.tar.${String(n).padStart(3, '0')}` && x.kind === 'extra',
        ),
        JSON.stringify(r2.problems),
      );
    });
  });
});
