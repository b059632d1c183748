import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  bytesStream,
  type CallOptions,
  fetchAll,
  type Mounter,
  type ReferencePusher,
  type Target,
} from '../src/content/index.ts';
import { type CopyEvent, copy, copyGraph, copyGraphs, PlatformNotFoundError } from '../src/copy/index.ts';
import { DigestMismatchError } from '../src/digest/index.ts';
import { AbortedError } from '../src/errors/index.ts';
import { OciLayout } from '../src/layout/index.ts';
import { type Descriptor, MediaType, parseManifest, parsePlatform } from '../src/model/index.ts';
import { Limiter } from '../src/util/index.ts';
import { makeImage, noise, type SmallImages, slowStream, writeSmallImages } from './helpers/images.ts';

/** A Target wrapper that counts calls, measures concurrency and can slow down or corrupt blobs. */
class Instrumented implements Target {
  readonly inner: Target;
  readonly pushes = new Map<string, number>();
  readonly fetches = new Map<string, number>();
  readonly tags: string[] = [];
  active = 0;
  maxActive = 0;
  delayMs = 0;
  corrupt = new Set<string>();
  /** Digest → how many more fetches of it fail with a dropped connection mid-stream. */
  drops = new Map<string, number>();

  constructor(inner: Target) {
    this.inner = inner;
  }

  private enter(): () => void {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    let done = false;
    return () => {
      if (!done) this.active--;
      done = true;
    };
  }

  async fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable> {
    this.fetches.set(desc.digest, (this.fetches.get(desc.digest) ?? 0) + 1);
    const leave = this.enter();
    let stream: Readable;
    const drops = this.drops.get(desc.digest) ?? 0;
    if (drops > 0) {
      // Half the bytes, then the connection drops (what undici reports for a reset socket).
      this.drops.set(desc.digest, drops - 1);
      const bytes = await fetchAll(this.inner, desc, { limit: 64 << 20 });
      const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
      stream = Readable.from(
        (async function* () {
          yield bytes.subarray(0, bytes.length >> 1);
          throw reset;
        })(),
      );
      finished(stream).then(leave, leave);
      return stream;
    }
    if (this.corrupt.has(desc.digest) || this.delayMs > 0) {
      const bytes = await fetchAll(this.inner, desc, { limit: 64 << 20 });
      if (this.corrupt.has(desc.digest))
        bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x55;
      stream = this.delayMs > 0 ? slowStream(bytes, 16384, this.delayMs) : bytesStream(bytes);
    } else {
      stream = await this.inner.fetch(desc, opts);
    }
    finished(stream).then(leave, leave);
    return stream;
  }

  async push(desc: Descriptor, content: Readable, opts?: CallOptions): Promise<void> {
    this.pushes.set(desc.digest, (this.pushes.get(desc.digest) ?? 0) + 1);
    const leave = this.enter();
    try {
      await this.inner.push(desc, content, opts);
    } finally {
      leave();
    }
  }

  exists(desc: Descriptor, opts?: CallOptions): Promise<boolean> {
    return this.inner.exists(desc, opts);
  }
  resolve(ref: string, opts?: CallOptions): Promise<Descriptor> {
    return this.inner.resolve(ref, opts);
  }
  tag(desc: Descriptor, ref: string, opts?: CallOptions): Promise<void> {
    this.tags.push(ref);
    return this.inner.tag(desc, ref, opts);
  }
}

async function ingestLeftovers(layout: OciLayout): Promise<string[]> {
  return readdir(path.join(layout.dir, 'ingest')).catch(() => []);
}

/** Every node of the graph under `desc` is present in `store`. */
async function assertComplete(store: OciLayout, desc: Descriptor): Promise<number> {
  assert.ok(await store.exists(desc), `${desc.digest} present`);
  let count = 1;
  if (desc.mediaType.includes('manifest') || desc.mediaType.includes('index')) {
    const parsed = parseManifest(await fetchAll(store, desc), desc.mediaType);
    const children =
      parsed.kind === 'index' ? parsed.index.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
    for (const c of children) count += await assertComplete(store, c);
  }
  return count;
}

describe('copy', () => {
  let root: string;
  let n = 0;
  let src: OciLayout;
  let imgs: SmallImages;
  const fresh = () => OciLayout.open(path.join(root, `dst${n++}`), { create: true });

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'lading-copy-'));
    src = await OciLayout.open(path.join(root, 'src'), { create: true });
    imgs = await writeSmallImages(src);
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('copies a single OCI image layout → layout, children before parents, and skips it the second time', async () => {
    const dst = await fresh();
    const events: CopyEvent[] = [];
    const res = await copy(src, 'demo/app:1.0', dst, 'mirror/app:1.0', { onProgress: (e) => events.push(e) });
    assert.equal(res.digest, imgs.app.desc.digest);
    assert.equal(res.upstreamDigest, imgs.app.desc.digest);
    assert.equal(res.mediaType, MediaType.ociManifest);
    assert.deepEqual(res.platforms, ['linux/amd64']);
    assert.deepEqual(res.blobs.copied, 3);
    assert.equal(res.blobs.skipped, 0);
    assert.equal(res.manifests.copied, 1);
    const total = imgs.app.config.size + imgs.app.layers.reduce((a, l) => a + l.size, 0);
    assert.equal(res.blobs.bytes, total);
    assert.equal((await dst.resolve('mirror/app:1.0')).digest, imgs.app.desc.digest);
    assert.equal(await assertComplete(dst, imgs.app.desc), 4);
    // order: every blob done before the manifest
    const manifestAt = events.findIndex((e) => e.type === 'manifest-done');
    assert.equal(events.filter((e, i) => e.type === 'blob-done' && i < manifestAt).length, 3);
    assert.ok(events.every((e) => e.label === 'demo/app:1.0'));
    const bytesEvents = events.filter((e) => e.type === 'blob-bytes');
    assert.ok(bytesEvents.length >= 3);
    assert.equal(events.at(-1)?.totals.blobs.bytes, total);

    const again = await copy(src, 'demo/app:1.0', dst, 'mirror/app:1.0');
    assert.equal(again.manifests.skipped, 1);
    assert.equal(again.blobs.copied + again.blobs.bytes, 0);
  });

  it('leaves out the blobs leaveOut names: not fetched, not stored, reported as left-out', async () => {
    const dst = await fresh();
    const counting = new Instrumented(src);
    const layers = new Set<string>(imgs.app.layers.map((l) => l.digest));
    const events: CopyEvent[] = [];
    const res = await copy(counting, 'demo/app:1.0', dst, 'mirror/app:1.0', {
      leaveOut: (d) => layers.has(d.digest),
      onProgress: (e) => events.push(e),
    });
    assert.equal(res.blobs.copied, 1, 'the config only');
    assert.equal(res.blobs.skipped, imgs.app.layers.length);
    assert.equal(res.manifests.copied, 1);
    for (const l of imgs.app.layers) {
      assert.equal(counting.fetches.get(l.digest), undefined, 'a left-out layer is never fetched');
      assert.equal(await dst.exists(l), false);
      assert.ok(
        events.some(
          (e) => e.type === 'blob-skipped' && e.desc.digest === l.digest && e.reason === 'left-out',
        ),
      );
    }
    assert.ok(await dst.exists(imgs.app.config));
    assert.equal((await dst.resolve('mirror/app:1.0')).digest, imgs.app.desc.digest);
  });

  it('returns every node it visited; with walkExisting also below a manifest the destination holds', async () => {
    const dst = await fresh();
    const layers = new Set<string>(imgs.app.layers.map((l) => l.digest));
    const leaveOut = (d: Descriptor) => layers.has(d.digest);
    const all = [imgs.app.desc.digest, imgs.app.config.digest, ...layers].sort();
    const first = await copy(src, 'demo/app:1.0', dst, 'app:1.0', { leaveOut });
    assert.equal(first.nodes[0]?.digest, imgs.app.desc.digest, 'the root first');
    assert.deepEqual(first.nodes.map((d) => d.digest).sort(), all, 'left-out layers are listed too');
    const plain = await copy(src, 'demo/app:1.0', dst, 'app:1.0', { leaveOut });
    assert.deepEqual(
      plain.nodes.map((d) => d.digest),
      [imgs.app.desc.digest],
      'an existing manifest hides its subgraph without walkExisting',
    );
    const counting = new Instrumented(src);
    const again = await copy(counting, 'demo/app:1.0', dst, 'app:1.0', { leaveOut, walkExisting: true });
    assert.deepEqual(again.nodes.map((d) => d.digest).sort(), all);
    assert.equal(counting.fetches.get(imgs.app.desc.digest), undefined, 'read from the destination');
    assert.equal(again.manifests.skipped, 1);
  });

  it('copyGraphs copies several roots in one walk: a shared layer once, every node listed once', async () => {
    const dst = await fresh();
    const counting = new Instrumented(src);
    const res = await copyGraphs(counting, dst, [imgs.baseA.desc, imgs.baseB.desc], { concurrency: 2 });
    assert.equal(counting.fetches.get(imgs.shared.digest), 1);
    const digests = res.nodes.map((d) => d.digest);
    assert.equal(new Set(digests).size, digests.length, 'each node once');
    assert.ok(digests.includes(imgs.shared.digest));
    assert.equal(res.stats.manifests.copied, 2);
    await assertComplete(dst, imgs.baseA.desc);
    await assertComplete(dst, imgs.baseB.desc);
  });

  it('copies Docker-typed images unchanged', async () => {
    const dst = await fresh();
    const res = await copy(src, 'demo/legacy:2.0', dst, 'legacy:2.0');
    assert.equal(res.digest, imgs.legacy.desc.digest);
    assert.equal(res.mediaType, MediaType.dockerManifest);
    const got = await dst.resolve('legacy:2.0');
    assert.equal(got.mediaType, MediaType.dockerManifest);
    assert.ok((await fetchAll(dst, got)).equals(imgs.legacy.manifest));
    assert.equal(await assertComplete(dst, got), 3);
  });

  it('copies a multi-arch index whole without a filter', async () => {
    const dst = await fresh();
    const res = await copy(src, 'demo/multi:3.0', dst, 'multi:3.0');
    assert.equal(res.digest, imgs.multi.desc.digest);
    assert.equal(res.upstreamDigest, imgs.multi.desc.digest);
    assert.deepEqual(res.platforms, ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
    assert.equal(res.manifests.copied, 4);
    // the common layer is shared by the three children: copied once
    assert.equal(res.blobs.copied, 3 /* configs */ + 1 /* common */ + 3 /* arch layers */);
    assert.equal(await assertComplete(dst, res.descriptor), 1 + 3 * 4);
  });

  it('narrows a multi-arch index to the platform filter with a new index, reporting the upstream digest', async () => {
    const dst = await fresh();
    const res = await copy(src, 'demo/multi:3.0', dst, 'multi:arm', {
      platforms: [parsePlatform('linux/arm64'), parsePlatform('linux/arm/v7')],
    });
    assert.notEqual(res.digest, res.upstreamDigest);
    assert.equal(res.upstreamDigest, imgs.multi.desc.digest);
    assert.deepEqual(res.platforms, ['linux/arm64/v8', 'linux/arm/v7']);
    const idx = await dst.resolve('multi:arm');
    assert.equal(idx.digest, res.digest);
    const parsed = parseManifest(await fetchAll(dst, idx), idx.mediaType);
    assert.equal(parsed.kind, 'index');
    if (parsed.kind !== 'index') return;
    assert.equal(parsed.mediaType, MediaType.ociIndex);
    assert.deepEqual(parsed.index.annotations, {
      'org.opencontainers.image.source': 'https://example.com/multi',
    });
    assert.deepEqual(
      parsed.index.manifests.map((m) => m.digest),
      [imgs.multi.children[1]?.desc.digest, imgs.multi.children[2]?.desc.digest],
    );
    assert.equal(await dst.exists(imgs.multi.children[0]?.desc as Descriptor), false, 'amd64 dropped');
    assert.equal(await dst.exists(imgs.multi.desc), false, 'upstream index not copied');
    assert.equal(await assertComplete(dst, idx), 1 + 2 * 4);

    // the same filter gives the same bytes (reproducible)
    const dst2 = await fresh();
    const res2 = await copy(src, 'demo/multi:3.0', dst2, 'x', {
      platforms: [parsePlatform('linux/arm64'), parsePlatform('linux/arm/v7')],
    });
    assert.equal(res2.digest, res.digest);

    // a filter every entry matches keeps the upstream index
    const all = await copy(src, 'demo/multi:3.0', await fresh(), 'all', {
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm'].map(parsePlatform),
    });
    assert.equal(all.digest, imgs.multi.desc.digest);
  });

  it('starts from a descriptor the caller resolved: the source is not asked to resolve it again', async () => {
    const resolves: string[] = [];
    const counted = {
      exists: (d: Descriptor, o?: CallOptions) => src.exists(d, o),
      fetch: (d: Descriptor, o?: CallOptions) => src.fetch(d, o),
      resolve: (ref: string, o?: CallOptions) => {
        resolves.push(ref);
        return src.resolve(ref, o);
      },
    };
    const upstream = await src.resolve('demo/multi:3.0');
    const dst = await fresh();
    const res = await copy(counted, upstream.digest, dst, 'multi:arm', {
      resolved: upstream,
      platforms: [parsePlatform('linux/arm64')],
    });
    assert.deepEqual(resolves, [], 'no second resolve');
    assert.equal(res.upstreamDigest, imgs.multi.desc.digest);
    assert.deepEqual(res.platforms, ['linux/arm64/v8']);
    assert.equal(await assertComplete(dst, res.descriptor), 1 + 4);
    // without it, the copy resolves the reference itself (once)
    await copy(counted, upstream.digest, await fresh(), 'x');
    assert.deepEqual(resolves, [upstream.digest]);
  });

  it('fails with a typed error naming the ref and the platforms available when nothing matches', async () => {
    const dst = await fresh();
    await assert.rejects(
      copy(src, 'demo/multi:3.0', dst, 'x', { platforms: [parsePlatform('linux/s390x')] }),
      (e: unknown) =>
        e instanceof PlatformNotFoundError &&
        e.exitCode === 2 &&
        e.message.includes('demo/multi:3.0') &&
        e.available.join() === 'linux/amd64,linux/arm64/v8,linux/arm/v7',
    );
    await assert.rejects(
      copy(src, 'demo/app:1.0', dst, 'x', { platforms: [parsePlatform('linux/arm64')] }),
      (e: unknown) => e instanceof PlatformNotFoundError && e.available.join() === 'linux/amd64',
    );
    // messages name the caller's label (a full reference), not the bare tag or digest it copies
    await assert.rejects(
      copy(src, 'demo/app:1.0', dst, 'x', {
        label: 'registry.example.com/demo/app:1.0',
        platforms: [parsePlatform('linux/arm64')],
      }),
      (e: unknown) =>
        e instanceof PlatformNotFoundError &&
        e.reference === 'registry.example.com/demo/app:1.0' &&
        e.message.startsWith('registry.example.com/demo/app:1.0 has no image for linux/arm64'),
    );
    assert.deepEqual(await dst.entries(), [], 'nothing tagged');
    const single = await copy(src, 'demo/app:1.0', dst, 'ok', { platforms: [parsePlatform('linux/amd64')] });
    assert.equal(single.digest, imgs.app.desc.digest);
  });

  it('copies layers shared by two images once, even when the copies run concurrently', async () => {
    const dst = new Instrumented(await fresh());
    const limiter = new Limiter(3);
    const [a, b] = await Promise.all([
      copy(src, 'demo/base-a:1', dst, 'base-a:1', { limiter }),
      copy(src, 'demo/base-b:1', dst, 'base-b:1', { limiter }),
    ]);
    for (const [digest, count] of dst.pushes) assert.equal(count, 1, `${digest} pushed once`);
    assert.equal(dst.pushes.get(imgs.shared.digest), 1);
    assert.equal(a.blobs.copied + b.blobs.copied, 5, '2 configs + shared + 2 own layers');
    assert.equal(a.blobs.skipped + b.blobs.skipped, 1, 'the other copy skipped the shared layer');
    assert.deepEqual(dst.tags.sort(), ['base-a:1', 'base-b:1']);
  });

  it('never exceeds the limiter bound, and does not deadlock with a bound of 1', async () => {
    // an index of 3 images with many layers each
    const many = await OciLayout.open(path.join(root, 'many'), { create: true });
    const children = [];
    for (let i = 0; i < 3; i++) {
      children.push(
        await makeImage(many, {
          platform: { os: 'linux', architecture: `arch${i}` },
          layers: Array.from({ length: 6 }, (_, j) => ({ [`f${j}`]: noise(40_000, 1000 + i * 10 + j) })),
        }),
      );
    }
    const { makeIndex } = await import('./helpers/images.ts');
    const index = await makeIndex(
      many,
      children,
      children.map((_, i) => ({ os: 'linux', architecture: `arch${i}` })),
    );
    await many.tag(index.desc, 'many:1');
    for (const bound of [1, 3]) {
      const source = new Instrumented(many);
      source.delayMs = 1;
      const dst = new Instrumented(await fresh());
      const res = await copy(source, 'many:1', dst, 'many:1', { concurrency: bound });
      assert.equal(res.blobs.copied, 3 * 7);
      assert.ok(source.maxActive <= bound, `source streams ${source.maxActive} <= ${bound}`);
      assert.ok(dst.maxActive <= bound, `destination pushes ${dst.maxActive} <= ${bound}`);
      if (bound > 1) assert.ok(dst.maxActive > 1, 'copies run in parallel');
    }
  });

  it('a source serving a corrupted blob fails with DigestMismatchError and leaves the destination without it', async () => {
    const source = new Instrumented(src);
    const bad = imgs.app.layers[1] as Descriptor;
    source.corrupt.add(bad.digest);
    const layout = await fresh();
    await assert.rejects(copy(source, 'demo/app:1.0', layout, 'app:1.0'), (e: unknown) => {
      return e instanceof DigestMismatchError && e.expected === bad.digest && e.exitCode === 3;
    });
    assert.equal(await layout.exists(bad), false);
    assert.equal(await layout.exists(imgs.app.desc), false, 'no manifest without its layers');
    await assert.rejects(layout.resolve('app:1.0'));
    assert.deepEqual(await ingestLeftovers(layout), []);
  });

  it('starts a blob over when its connection drops (transient), but never retries a digest mismatch', async () => {
    const source = new Instrumented(src);
    const layer = imgs.app.layers[1] as Descriptor;
    source.drops.set(layer.digest, 2);
    const layout = await fresh();
    const r = await copy(source, 'demo/app:1.0', layout, 'app:1.0');
    assert.equal(r.digest, imgs.app.desc.digest);
    assert.equal(source.fetches.get(layer.digest), 3, 'two dropped attempts, then a whole one');
    assert.equal(await layout.exists(layer), true);
    assert.deepEqual(await ingestLeftovers(layout), []);

    const again = new Instrumented(src);
    again.drops.set(layer.digest, 5);
    await assert.rejects(
      copy(again, 'demo/app:1.0', await fresh(), 'app:1.0', { retries: 2 }),
      (e: unknown) => {
        return (e as { code?: string }).code === 'UND_ERR_SOCKET';
      },
    );
    assert.equal(again.fetches.get(layer.digest), 3, 'retries bound the attempts');

    const corrupt = new Instrumented(src);
    corrupt.corrupt.add(layer.digest);
    await assert.rejects(copy(corrupt, 'demo/app:1.0', await fresh(), 'app:1.0'), DigestMismatchError);
    assert.equal(corrupt.fetches.get(layer.digest), 1, 'a verification failure is not retried');
  });

  it('a source with another place for a blob (Rejecter) is asked again after the destination refused its bytes', async () => {
    const dst = await fresh();
    const layer = imgs.app.layers[1]!;
    const served: string[] = [];
    const rejected: string[] = [];
    let place: 'corrupt' | 'good' = 'corrupt';
    const source = {
      exists: (d: Descriptor, o?: CallOptions) => src.exists(d, o),
      async fetch(d: Descriptor, o?: CallOptions) {
        if (d.digest !== layer.digest) return src.fetch(d, o);
        served.push(place);
        return place === 'corrupt' ? bytesStream(noise(layer.size, 99)) : src.fetch(d, o);
      },
      reject(d: Descriptor) {
        rejected.push(d.digest);
        if (place === 'good') return false;
        place = 'good';
        return true;
      },
    };
    await copyGraph(source, dst, imgs.app.desc);
    assert.deepEqual(served, ['corrupt', 'good']);
    assert.deepEqual(rejected, [layer.digest]);
    assert.ok(await dst.exists(layer));
    // with no other place, the mismatch is the error
    const dst2 = await fresh();
    place = 'corrupt';
    const once = { ...source, reject: () => false, fetch: source.fetch };
    await assert.rejects(
      copyGraph(once, dst2, imgs.app.desc),
      (err: unknown) => err instanceof DigestMismatchError,
    );
  });

  it('on a failure, rejects only once every transfer it started has settled (none still pushing after)', async () => {
    // runGraph's own drain (not a list fan-out): the failing branch's sibling is still pushing
    // when the failure reaches the root; copyGraph must wait for it, not only for the root.
    const layout = await fresh();
    const [held, bad] = imgs.app.layers as [Descriptor, Descriptor];
    const events: string[] = [];
    let heldStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      heldStarted = resolve;
    });
    const source = {
      exists: (d: Descriptor, o?: CallOptions) => src.exists(d, o),
      async fetch(d: Descriptor, o?: CallOptions) {
        if (d.digest !== bad.digest) return src.fetch(d, o);
        await started;
        return bytesStream(noise(bad.size, 7)); // the wrong bytes: the destination refuses them
      },
    };
    const dst = {
      exists: (d: Descriptor, o?: CallOptions) => layout.exists(d, o),
      fetch: (d: Descriptor, o?: CallOptions) => layout.fetch(d, o),
      async push(d: Descriptor, content: Readable, o?: CallOptions): Promise<void> {
        if (d.digest !== held.digest) return layout.push(d, content, o);
        heldStarted();
        // holds on until the copy is stopped, then takes a few turns of the event loop to wind down
        const signal = o?.signal as AbortSignal;
        if (!signal.aborted)
          await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
        for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
        content.destroy();
        events.push('held push settled');
        throw signal.reason;
      },
    };
    await assert.rejects(copyGraph(source, dst, imgs.app.desc), (e: unknown) => {
      events.push('copy rejected');
      return e instanceof DigestMismatchError && e.expected === bad.digest;
    });
    assert.deepEqual(events, ['held push settled', 'copy rejected']);
    assert.equal(await layout.exists(bad), false);
  });

  it('aborts mid-copy: AbortedError, nothing partial left', async () => {
    const source = new Instrumented(src);
    source.delayMs = 5;
    const layout = await fresh();
    const ctrl = new AbortController();
    const p = copy(source, 'demo/multi:3.0', layout, 'm', {
      signal: ctrl.signal,
      onProgress: (e) => {
        if (e.type === 'blob-bytes') ctrl.abort(new Error('user pressed ^C'));
      },
    });
    await assert.rejects(p, AbortedError);
    assert.deepEqual(await ingestLeftovers(layout), []);
    assert.equal(await layout.exists(imgs.multi.desc), false);
    for (const c of imgs.multi.children) assert.equal(await layout.exists(c.desc), false);
    assert.deepEqual(await layout.entries(), []);
    // the copy goes through afterwards
    const ok = await copy(src, 'demo/multi:3.0', layout, 'm');
    assert.equal(ok.digest, imgs.multi.desc.digest);
  });

  it('mounts blobs when the destination offers it, and pushes by reference when it can', async () => {
    const inner = await fresh();
    const mounted: string[] = [];
    const referenced: string[] = [];
    const dst = new Instrumented(inner) as Instrumented & Mounter & ReferencePusher;
    dst.mount = async (desc, from) => {
      if (from !== 'library/base') return false;
      // simulate a registry-side mount: the bytes appear without a fetch from the source
      await inner.push(desc, await src.fetch(desc));
      mounted.push(desc.digest);
      return true;
    };
    dst.pushReference = async (desc, content, ref) => {
      referenced.push(ref);
      await inner.push(desc, content);
      await inner.tag(desc, ref);
    };
    const source = new Instrumented(src);
    const events: CopyEvent[] = [];
    const res = await copy(source, 'demo/base-a:1', dst, 'base-a:1', {
      mountFrom: (d) => (d.digest === imgs.shared.digest ? ['other/repo', 'library/base'] : []),
      onProgress: (e) => events.push(e),
    });
    assert.deepEqual(mounted, [imgs.shared.digest]);
    assert.equal(res.blobs.mounted, 1);
    assert.equal(source.fetches.get(imgs.shared.digest), undefined, 'mounted blob not fetched');
    assert.equal(events.find((e) => e.type === 'blob-mounted')?.from, 'library/base');
    assert.deepEqual(referenced, ['base-a:1']);
    assert.deepEqual(dst.tags, [], 'no separate tag call');
    assert.equal((await inner.resolve('base-a:1')).digest, imgs.baseA.desc.digest);
  });

  it('copyGraph copies an untagged graph and shares one limiter', async () => {
    const dst = await fresh();
    const limiter = new Limiter(2);
    const stats = await copyGraph(src, dst, imgs.multi.children[0]?.desc as Descriptor, {
      limiter,
      label: 'x',
    });
    assert.equal(stats.manifests.copied, 1);
    assert.equal(stats.blobs.copied, 3);
    assert.equal(limiter.running, 0);
    assert.deepEqual(await dst.entries(), []);
  });
});
