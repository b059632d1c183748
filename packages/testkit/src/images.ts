import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync, constants as zc } from 'node:zlib';
import { makeTar, TAR_END, type TarLayerEntry, tarHeader, tarPadding } from './tar.ts';

/** A root node (manifest or index) written by writeTestImages. */
export interface TestImage {
  /** Repository path, e.g. 'demo/app'. */
  name: string;
  tag: string;
  /** Digest of the root node (manifest or index). */
  digest: string;
  /** Media type of the root node. */
  mediaType: string;
  /** 'os/arch[/variant]' of every platform the image has. */
  platforms: string[];
  /** Size in bytes of the root node (its descriptor size). */
  size: number;
  /** 'name:tag', the org.opencontainers.image.ref.name in index.json. */
  ref: string;
  /** For an index: its child manifests in order. */
  manifests?: { digest: string; mediaType: string; size: number; platform: string }[];
  /** Every blob the image needs (root node, child manifests, configs, layers), each once. */
  blobs: string[];
  /** Sum of the sizes of `blobs`. */
  totalSize: number;
}

export interface WriteTestImagesOptions {
  /** Size of the uncompressed file in demo/big:1.0's layer (default 24 MiB). */
  largeLayerBytes?: number;
}

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const DEFAULT_LARGE_LAYER_BYTES = 24 * 1024 * 1024;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

interface Layer {
  digest: string;
  diffId: string;
  size: number;
}

// Fixed gzip settings: mtime 0 in the header (zlib's default), level 6, default strategy.
const GZIP = { level: 6, memLevel: 8, windowBits: 15, strategy: zc.Z_DEFAULT_STRATEGY } as const;
const CREATED = '2024-01-01T00:00:00Z';

function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

class LayoutWriter {
  readonly dir: string;
  readonly blobDir: string;
  constructor(dir: string) {
    this.dir = dir;
    this.blobDir = join(dir, 'blobs', 'sha256');
  }

  blobPath(digest: string): string {
    return join(this.blobDir, digest.slice('sha256:'.length));
  }

  async has(digest: string): Promise<boolean> {
    try {
      await access(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  async put(data: Buffer): Promise<{ digest: string; size: number }> {
    const digest = sha256(data);
    if (!(await this.has(digest))) {
      const tmp = `${this.blobPath(digest)}.tmp-${process.pid}`;
      await writeFile(tmp, data);
      await rename(tmp, this.blobPath(digest));
    }
    return { digest, size: data.length };
  }

  async putJSON(value: unknown): Promise<{ digest: string; size: number; bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value));
    return { ...(await this.put(bytes)), bytes };
  }

  async smallLayer(entries: TarLayerEntry[]): Promise<Layer> {
    const tar = makeTar(entries);
    const gz = gzipSync(tar, GZIP);
    const { digest, size } = await this.put(gz);
    return { digest, size, diffId: sha256(tar) };
  }
}

/** Deterministic pseudo-random bytes: AES-128-CTR keystream with a fixed key, in 64 KiB chunks. */
async function* pseudoRandom(total: number, seed: string): AsyncGenerator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(64 * 1024, 0);
  let left = total;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    yield cipher.update(zeros.subarray(0, n));
    left -= n;
  }
}

async function* bigTar(bytes: number): AsyncGenerator<Buffer> {
  yield tarHeader('data/', 0, { dir: true });
  yield tarHeader('data/big.bin', bytes);
  yield* pseudoRandom(bytes, `lading-testkit big layer ${bytes}`);
  yield tarPadding(bytes);
  yield TAR_END;
}

function hashing(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

// Per process: the big layer is generated once, later layouts copy it.
const bigCache = new Map<number, { layer: Layer; file: string }>();

async function bigLayer(w: LayoutWriter, bytes: number): Promise<Layer> {
  const cached = bigCache.get(bytes);
  if (cached) {
    if (await w.has(cached.layer.digest)) return cached.layer;
    try {
      const tmp = `${w.blobPath(cached.layer.digest)}.tmp-${process.pid}`;
      await copyFile(cached.file, tmp);
      await rename(tmp, w.blobPath(cached.layer.digest));
      bigCache.set(bytes, { layer: cached.layer, file: w.blobPath(cached.layer.digest) });
      return cached.layer;
    } catch {
      // the earlier layout is gone: generate again
    }
  }
  const tmp = join(w.blobDir, `big-layer.tmp-${process.pid}`);
  const diffHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const raw = { n: 0 };
  const gz = { n: 0 };
  try {
    await pipeline(
      Readable.from(bigTar(bytes)),
      hashing(diffHash, raw),
      createGzip(GZIP),
      hashing(gzHash, gz),
      createWriteStream(tmp),
    );
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const layer: Layer = {
    digest: 'sha256:' + gzHash.digest('hex'),
    diffId: 'sha256:' + diffHash.digest('hex'),
    size: gz.n,
  };
  await rename(tmp, w.blobPath(layer.digest));
  bigCache.set(bytes, { layer, file: w.blobPath(layer.digest) });
  return layer;
}

function imageConfig(platform: Platform, layers: Layer[], title: string): Record<string, unknown> {
  return {
    created: CREATED,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      WorkingDir: '/',
      Labels: { 'org.opencontainers.image.title': title },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: CREATED, created_by: `lading-testkit ${title} layer ${i}` })),
  };
}

interface Built {
  desc: Descriptor;
  blobs: Map<string, number>;
}

async function writeManifest(
  w: LayoutWriter,
  kind: 'oci' | 'docker',
  platform: Platform,
  layers: Layer[],
  title: string,
): Promise<Built> {
  const docker = kind === 'docker';
  const config = await w.putJSON(imageConfig(platform, layers, title));
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MT.dockerManifest : MT.ociManifest,
    config: { mediaType: docker ? MT.dockerConfig : MT.ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({
      mediaType: docker ? MT.dockerLayer : MT.ociLayer,
      digest: l.digest,
      size: l.size,
    })),
  };
  const m = await w.putJSON(manifest);
  const blobs = new Map<string, number>([
    [m.digest, m.size],
    [config.digest, config.size],
  ]);
  for (const l of layers) blobs.set(l.digest, l.size);
  return { desc: { mediaType: manifest.mediaType, digest: m.digest, size: m.size, platform }, blobs };
}

function textLayerEntries(dir: string, files: Record<string, string>): TarLayerEntry[] {
  const entries: TarLayerEntry[] = [{ path: `${dir}/` }];
  for (const [name, content] of Object.entries(files)) entries.push({ path: `${dir}/${name}`, content });
  return entries;
}

/**
 * Writes a deterministic OCI image layout into `layoutDir` (created if missing) holding:
 * demo/app:1.0 (OCI, linux/amd64), demo/legacy:2.0 (Docker schema 2 media types), demo/multi:3.0 (OCI index:
 * linux/amd64, linux/arm64/v8, linux/arm/v7), demo/base-a:1 and demo/base-b:1 (sharing their first layer) and
 * demo/big:1.0 (one large pseudo-random layer, generated as a stream). Same inputs give the same digests.
 * index.json keeps entries of other refs already there and replaces these.
 */
export async function writeTestImages(
  layoutDir: string,
  opts: WriteTestImagesOptions = {},
): Promise<TestImage[]> {
  const w = new LayoutWriter(layoutDir);
  await mkdir(w.blobDir, { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const amd64: Platform = { architecture: 'amd64', os: 'linux' };
  const images: TestImage[] = [];
  const add = (name: string, tag: string, built: Built, manifests?: Built[]): void => {
    const blobs = new Map(built.blobs);
    for (const m of manifests ?? []) for (const [d, s] of m.blobs) blobs.set(d, s);
    const platforms = manifests
      ? manifests.map((m) => platformString(m.desc.platform!))
      : [platformString(built.desc.platform!)];
    const image: TestImage = {
      name,
      tag,
      ref: `${name}:${tag}`,
      digest: built.desc.digest,
      mediaType: built.desc.mediaType,
      size: built.desc.size,
      platforms,
      blobs: [...blobs.keys()],
      totalSize: [...blobs.values()].reduce((a, b) => a + b, 0),
    };
    if (manifests) {
      image.manifests = manifests.map((m) => ({
        digest: m.desc.digest,
        mediaType: m.desc.mediaType,
        size: m.desc.size,
        platform: platformString(m.desc.platform!),
      }));
    }
    images.push(image);
  };

  // (a) small single-platform OCI image
  const appLayer = await w.smallLayer([
    { path: 'etc/' },
    { path: 'etc/demo-release', content: 'NAME=demo-app\nVERSION=1.0\n' },
    ...textLayerEntries('app', {
      'hello.txt': 'hello from demo/app 1.0\n',
      'run.sh': '#!/bin/sh\necho hello from demo/app\n',
    }),
  ]);
  add('demo/app', '1.0', await writeManifest(w, 'oci', amd64, [appLayer], 'demo/app'));

  // (b) Docker media types
  const legacyLayer = await w.smallLayer([
    ...textLayerEntries('legacy', { README: 'a Docker schema 2 image for demo/legacy 2.0\n' }),
  ]);
  add('demo/legacy', '2.0', await writeManifest(w, 'docker', amd64, [legacyLayer], 'demo/legacy'));

  // (c) multi-arch index
  const platforms: Platform[] = [
    amd64,
    { architecture: 'arm64', os: 'linux', variant: 'v8' },
    { architecture: 'arm', os: 'linux', variant: 'v7' },
  ];
  const children: Built[] = [];
  for (const p of platforms) {
    const layer = await w.smallLayer(
      textLayerEntries('multi', { 'platform.txt': `demo/multi 3.0 for ${platformString(p)}\n` }),
    );
    children.push(await writeManifest(w, 'oci', p, [layer], `demo/multi ${platformString(p)}`));
  }
  const index = await w.putJSON({
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: children.map((c) => c.desc),
  });
  add(
    'demo/multi',
    '3.0',
    {
      desc: { mediaType: MT.ociIndex, digest: index.digest, size: index.size },
      blobs: new Map([[index.digest, index.size]]),
    },
    children,
  );

  // (d) two images sharing a base layer
  const base = await w.smallLayer([
    { path: 'base/' },
    { path: 'base/os-release', content: 'NAME=demo-base\nVERSION_ID=1\n' },
    { path: 'base/lib/' },
    { path: 'base/lib/libdemo.txt', content: 'shared base layer content\n'.repeat(64) },
  ]);
  for (const v of ['a', 'b']) {
    const own = await w.smallLayer(
      textLayerEntries(`srv-${v}`, { 'index.html': `<h1>demo/base-${v}</h1>\n` }),
    );
    add(`demo/base-${v}`, '1', await writeManifest(w, 'oci', amd64, [base, own], `demo/base-${v}`));
  }

  // (e) large layer
  const big = await bigLayer(w, opts.largeLayerBytes ?? DEFAULT_LARGE_LAYER_BYTES);
  add('demo/big', '1.0', await writeManifest(w, 'oci', amd64, [big], 'demo/big'));

  // index.json: keep other refs, replace ours.
  const ours = new Set(images.map((i) => i.ref));
  let existing: Descriptor[] = [];
  try {
    const parsed = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
      manifests?: Descriptor[];
    };
    existing = (parsed.manifests ?? []).filter((d) => !ours.has(d.annotations?.[REF_NAME] ?? ''));
  } catch {
    // no index yet
  }
  const manifests: Descriptor[] = [
    ...existing,
    ...images.map((i) => ({
      mediaType: i.mediaType,
      digest: i.digest,
      size: i.size,
      annotations: { [REF_NAME]: i.ref },
    })),
  ];
  const tmp = join(layoutDir, `index.json.tmp-${process.pid}`);
  await writeFile(
    tmp,
    JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }, null, 2) + '\n',
  );
  await rename(tmp, join(layoutDir, 'index.json'));
  return images;
}
