import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { bytesStream, fetchAll } from '../src/content/index.ts';
import { DigestMismatchError, digestOf, SizeMismatchError } from '../src/digest/index.ts';
import { AbortedError } from '../src/errors/index.ts';
import { InvalidLayoutError, LayoutNotFoundError, OciLayout } from '../src/layout/index.ts';
import { Annotation, type Descriptor, descriptorFor, MediaType } from '../src/model/index.ts';
import { makeImage, noise, slowStream, writeSmallImages } from './helpers/images.ts';

const run = promisify(execFile);

async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String).sort();
  } catch {
    return [];
  }
}

async function blobFiles(layout: OciLayout): Promise<string[]> {
  return (await listFiles(path.join(layout.dir, 'blobs'))).filter((f) => f.includes('/'));
}

describe('OciLayout', () => {
  let root: string;
  let n = 0;
  const fresh = async () => OciLayout.open(path.join(root, `l${n++}`), { create: true });

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-layout-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates oci-layout, index.json and blobs/, and refuses a directory that is not a layout', async () => {
    const layout = await fresh();
    assert.deepEqual(JSON.parse(await readFile(path.join(layout.dir, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    const index = JSON.parse(await readFile(path.join(layout.dir, 'index.json'), 'utf8'));
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(index.manifests, []);
    assert.ok((await stat(path.join(layout.dir, 'blobs', 'sha256'))).isDirectory());
    // reopening keeps it
    const again = await OciLayout.open(layout.dir);
    assert.equal(again.dir, layout.dir);
    await assert.rejects(OciLayout.open(path.join(root, 'nope')), InvalidLayoutError);
    const bad = path.join(root, 'bad');
    await OciLayout.open(bad, { create: true });
    await writeFile(path.join(bad, 'oci-layout'), '{"imageLayoutVersion":"9.0.0"}');
    await assert.rejects(
      OciLayout.open(bad),
      (e: unknown) => e instanceof InvalidLayoutError && e.exitCode === 2,
    );
  });

  it('ingests a blob through a temp file into blobs/<alg>/<hex> and serves it back', async () => {
    const layout = await fresh();
    const data = noise(300_000, 3);
    const desc = descriptorFor(data, MediaType.ociLayerGzip);
    assert.equal(await layout.exists(desc), false);
    await layout.push(desc, slowStream(data, 65536, 0));
    assert.equal(await layout.exists(desc), true);
    const file = path.join(layout.dir, 'blobs', 'sha256', desc.digest.slice('sha256:'.length));
    assert.ok((await readFile(file)).equals(data));
    assert.equal(layout.blobPath(desc.digest), file);
    const back = await fetchAll(layout, desc, { limit: 1 << 20 });
    assert.ok(back.equals(data));
    assert.deepEqual(await listFiles(path.join(layout.dir, 'ingest')), [], 'no temp file left');
    // a second push of present content is a no-op
    await layout.push(desc, bytesStream(data));
    assert.equal((await blobFiles(layout)).length, 1);
    await assert.rejects(layout.fetch(descriptorFor(Buffer.from('missing'), 'x')), LayoutNotFoundError);
  });

  it('a wrong digest, a wrong size or a failing stream leaves nothing in blobs/ nor in ingest/', async () => {
    const layout = await fresh();
    const data = noise(200_000, 4);
    const good = descriptorFor(data, MediaType.ociLayerGzip);
    const wrongDigest: Descriptor = { ...good, digest: digestOf('something else') };
    await assert.rejects(layout.push(wrongDigest, bytesStream(data)), DigestMismatchError);
    await assert.rejects(
      layout.push({ ...good, size: good.size - 1 }, bytesStream(data)),
      (e: unknown) => e instanceof SizeMismatchError && e.early,
    );
    await assert.rejects(
      layout.push({ ...good, size: good.size + 1 }, bytesStream(data)),
      (e: unknown) => e instanceof SizeMismatchError && !e.early,
    );
    const broken = Readable.from(
      (async function* () {
        yield data.subarray(0, 1000);
        throw new Error('connection reset');
      })(),
    );
    await assert.rejects(layout.push(good, broken), /connection reset/);
    assert.deepEqual(await blobFiles(layout), []);
    assert.deepEqual(await listFiles(path.join(layout.dir, 'ingest')), []);
    assert.equal(await layout.exists(good), false);
  });

  it('an aborted push leaves nothing and fails with AbortedError', async () => {
    const layout = await fresh();
    const data = noise(400_000, 5);
    const desc = descriptorFor(data, MediaType.ociLayerGzip);
    const ctrl = new AbortController();
    let read = 0;
    // Abort in the middle: once a quarter of the blob has been read from the source.
    const source = slowStream(data, 4096, 1).on('data', (c: Buffer) => {
      read += c.length;
      if (read >= data.length / 4) ctrl.abort();
    });
    const p = layout.push(desc, source, { signal: ctrl.signal });
    await assert.rejects(p, AbortedError);
    assert.ok(read < data.length, 'the stream was not read to the end');
    assert.deepEqual(await blobFiles(layout), []);
    assert.deepEqual(await listFiles(path.join(layout.dir, 'ingest')), []);
  });

  it('8 concurrent pushes of the same blob (one of them corrupt) end with one good blob', async () => {
    const layout = await fresh();
    const data = noise(256_000, 6);
    const desc = descriptorFor(data, MediaType.ociLayerGzip);
    const corrupt = Buffer.from(data);
    corrupt[1000] = (corrupt[1000] as number) ^ 0xff;
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => layout.push(desc, slowStream(i === 0 ? corrupt : data, 8192, 1))),
    );
    // The corrupt push fails when its bytes are the ones ingested; when a good push committed the
    // blob first, it finds the blob present and never reads its bytes. Either way nothing bad lands.
    const first = results[0] as PromiseSettledResult<void>;
    assert.ok(
      first.status === 'fulfilled' || first.reason instanceof DigestMismatchError,
      `the corrupt push either failed verification or found the good blob: ${String((first as PromiseRejectedResult).reason)}`,
    );
    assert.ok(
      results.slice(1).every((r) => r.status === 'fulfilled'),
      'the good pushes succeed',
    );
    assert.deepEqual(await blobFiles(layout), [`sha256/${desc.digest.slice(7)}`]);
    assert.ok((await readFile(layout.blobPath(desc.digest))).equals(data));
    assert.deepEqual(await listFiles(path.join(layout.dir, 'ingest')), []);
    // two instances on the same directory (as two processes would) both succeed too
    const other = await OciLayout.open(layout.dir);
    const d2 = descriptorFor(noise(100_000, 9), MediaType.ociLayerGzip);
    const bytes2 = noise(100_000, 9);
    await Promise.all([layout.push(d2, slowStream(bytes2)), other.push(d2, slowStream(bytes2))]);
    assert.ok((await readFile(layout.blobPath(d2.digest))).equals(bytes2));
  });

  it('tags, resolves and lists references; index.json updates are serialised and sorted', async () => {
    const layout = await fresh();
    const imgs = await writeSmallImages(layout);
    const names = Array.from({ length: 30 }, (_, i) => `demo/many:${String(i).padStart(2, '0')}`);
    // 30 concurrent tag updates: none may be lost
    const shuffled = [...names].sort((a, b) => digestOf(a).localeCompare(digestOf(b)));
    const reads: Promise<unknown>[] = [];
    await Promise.all(
      shuffled.map((ref) => {
        reads.push(readFile(path.join(layout.dir, 'index.json'), 'utf8').then((t) => JSON.parse(t)));
        return layout.tag(imgs.app.desc, ref);
      }),
    );
    await Promise.all(reads); // every read of index.json during the updates parsed
    const tags: string[] = [];
    for await (const t of layout.tags()) tags.push(t);
    assert.deepEqual(tags, [
      'demo/app:1.0',
      'demo/base-a:1',
      'demo/base-b:1',
      'demo/legacy:2.0',
      ...names,
      'demo/multi:3.0',
    ]);
    const onDisk = JSON.parse(await readFile(path.join(layout.dir, 'index.json'), 'utf8'));
    const refNames = onDisk.manifests.map((m: Descriptor) => m.annotations?.[Annotation.refName]);
    assert.deepEqual(refNames, [...refNames].sort(), 'entries sorted by ref name');
    assert.deepEqual(
      (await listFiles(layout.dir)).filter((f) => !f.startsWith('blobs') && !f.startsWith('ingest')),
      ['index.json', 'oci-layout'],
      'no temporary index file left',
    );

    const multi = await layout.resolve('demo/multi:3.0');
    assert.equal(multi.digest, imgs.multi.desc.digest);
    assert.equal(multi.mediaType, MediaType.ociIndex);
    assert.equal((await layout.resolve(multi.digest)).digest, multi.digest);
    assert.equal((await layout.resolve(`demo/multi@${multi.digest}`)).digest, multi.digest);
    // a child manifest is not in index.json but resolves by digest
    const child = imgs.multi.children[1]?.desc as Descriptor;
    assert.deepEqual(await layout.resolve(child.digest), {
      mediaType: MediaType.ociManifest,
      digest: child.digest,
      size: child.size,
    });
    await assert.rejects(layout.resolve('demo/none:1'), (e: unknown) => e instanceof LayoutNotFoundError);
    // retag moves the name
    await layout.tag(imgs.legacy.desc, 'demo/app:1.0');
    assert.equal((await layout.resolve('demo/app:1.0')).digest, imgs.legacy.desc.digest);
    assert.equal(await layout.untag('demo/app:1.0'), true);
    await assert.rejects(layout.resolve('demo/app:1.0'), LayoutNotFoundError);
    // tagging content that is not there fails
    await assert.rejects(
      layout.tag(descriptorFor(Buffer.from('{}'), MediaType.ociManifest), 'x:1'),
      LayoutNotFoundError,
    );
  });

  it('writes index.json deterministically whatever the order of operations', async () => {
    const a = await fresh();
    const b = await fresh();
    const ia = await writeSmallImages(a);
    await writeSmallImages(b);
    // re-tag b in another order
    for (const ref of ['demo/multi:3.0', 'demo/app:1.0', 'demo/base-b:1']) {
      await b.tag(await b.resolve(ref), ref);
    }
    await a.tag(ia.app.desc, 'zz:last');
    await b.tag(ia.app.desc, 'zz:last');
    const ta = await readFile(path.join(a.dir, 'index.json'));
    const tb = await readFile(path.join(b.dir, 'index.json'));
    assert.ok(ta.equals(tb), 'byte-identical index.json');
  });

  it('gc removes blobs that no index entry reaches', async () => {
    const layout = await fresh();
    const imgs = await writeSmallImages(layout);
    const before = (await blobFiles(layout)).length;
    await layout.untag('demo/legacy:2.0');
    const res = await layout.gc();
    const legacyDigests = [imgs.legacy.desc, imgs.legacy.config, ...imgs.legacy.layers]
      .map((d) => d.digest)
      .sort();
    assert.deepEqual(res.removed, legacyDigests);
    assert.equal((await blobFiles(layout)).length, before - legacyDigests.length);
    assert.equal(await layout.exists(imgs.app.layers[1] as Descriptor), true);
  });

  describe('read by independent tools', () => {
    let layout: OciLayout;
    let imgs: Awaited<ReturnType<typeof writeSmallImages>>;
    before(async () => {
      layout = await fresh();
      imgs = await writeSmallImages(layout);
      await layout.tag(imgs.app.desc, 'app');
    });

    it('skopeo inspects images and the multi-arch index', async () => {
      const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${layout.dir}:demo/app:1.0`]);
      assert.equal(digestOf(stdout), imgs.app.desc.digest);
      // (skopeo's oci: transport only lists OCI-typed entries of index.json, so the Docker-typed
      // demo/legacy:2.0 is checked by the copy tests, not here)
      const cfg = JSON.parse(
        (await run('skopeo', ['inspect', '--config', `oci:${layout.dir}:demo/base-a:1`])).stdout,
      );
      assert.equal(cfg.architecture, 'amd64');
      assert.deepEqual(cfg.rootfs.diff_ids.length, 2);
      const multi = JSON.parse(
        (await run('skopeo', ['inspect', '--raw', `oci:${layout.dir}:demo/multi:3.0`])).stdout,
      );
      assert.equal(multi.manifests.length, 3);
      const arm = JSON.parse(
        (
          await run('skopeo', [
            '--override-arch',
            'arm64',
            'inspect',
            '--format',
            '{{json .}}',
            `oci:${layout.dir}:demo/multi:3.0`,
          ])
        ).stdout,
      );
      assert.equal(arm.Architecture, 'arm64');
      // skopeo reports the index digest and the arm64 child's layers
      assert.equal(arm.Digest, imgs.multi.desc.digest);
      assert.deepEqual(
        arm.Layers,
        imgs.multi.children[1]?.layers.map((l) => l.digest),
      );
    });

    it('umoci stats and unpacks an image rootless', async () => {
      const stat1 = JSON.parse(
        (await run('umoci', ['stat', '--json', '--image', `${layout.dir}:app`])).stdout,
      );
      assert.ok('history' in stat1, 'umoci read the image config');
      const bundle = path.join(root, 'umoci-bundle');
      await run('umoci', ['unpack', '--rootless', '--image', `${layout.dir}:app`, bundle]);
      assert.equal(await readFile(path.join(bundle, 'rootfs', 'etc', 'app.conf'), 'utf8'), 'port=8080\n');
      assert.ok((await readFile(path.join(bundle, 'rootfs', 'usr', 'bin', 'app'))).equals(noise(70_000, 1)));
    });

    it('skopeo copies from our layout into a new one we can open', async () => {
      const out = path.join(root, 'skopeo-out');
      await run('skopeo', ['copy', `oci:${layout.dir}:demo/app:1.0`, `oci:${out}:copied`]);
      const back = await OciLayout.open(out);
      assert.equal((await back.resolve('copied')).digest, imgs.app.desc.digest);
      // and what skopeo wrote, we read and push back into ours
      const img = await makeImage(back, { layers: [{ 'x.txt': 'x\n' }] });
      assert.equal(await back.exists(img.desc), true);
    });
  });

  describe('writer (the caller moves the bytes)', () => {
    it('hashes and stores what it is given, commits only a matching blob, leaves nothing otherwise', async () => {
      const layout = await fresh();
      const data = noise(3 * 1024 * 1024 + 5, 11);
      const desc: Descriptor = {
        mediaType: MediaType.ociLayerGzip,
        digest: digestOf(data),
        size: data.length,
      };
      const w = await layout.writer(desc);
      assert.ok(w);
      for (let at = 0; at < data.length; at += 70_000) await w.write(data.subarray(at, at + 70_000));
      await w.commit();
      assert.ok((await fetchAll(layout, desc)).equals(data));
      assert.equal(await layout.writer(desc), undefined, 'present: no writer');

      const other = noise(1000, 12);
      const lying: Descriptor = { ...desc, digest: digestOf(noise(1000, 13)), size: 1000 };
      const w2 = await layout.writer(lying);
      assert.ok(w2);
      await w2.write(other);
      await assert.rejects(w2.commit(), DigestMismatchError);
      const w3 = await layout.writer(lying);
      assert.ok(w3);
      await assert.rejects(w3.write(Buffer.alloc(1001)), SizeMismatchError);
      await w3.abort();
      assert.equal(await layout.exists(lying), false);
      assert.deepEqual(await listFiles(path.join(layout.dir, 'ingest')), [], 'no temporary left');
    });

    it('a push of the same blob waits for an open writer instead of writing it twice', async () => {
      const layout = await fresh();
      const data = noise(200_000, 14);
      const desc: Descriptor = {
        mediaType: MediaType.ociLayerGzip,
        digest: digestOf(data),
        size: data.length,
      };
      const w = await layout.writer(desc);
      assert.ok(w);
      // The push's source records whether it was ever read: a push that did not wait would read
      // it to write the blob a second time.
      let read = 0;
      const source = new Readable({
        read() {
          read++;
          this.push(data);
          this.push(null);
        },
      });
      let pushed = false;
      const push = layout.push(desc, source).then(() => {
        pushed = true;
      });
      await w.write(data);
      assert.equal(pushed, false, 'the push has not finished before the writer commits');
      await w.commit();
      await push;
      assert.equal(read, 0, 'the push took the committed blob and never read its own source');
      assert.ok((await fetchAll(layout, desc)).equals(data));
    });
  });
});
