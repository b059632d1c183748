/** Test helpers for the bundle writer tests: a directory Fetcher and a tiny OCI image. */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type { LadingJson } from '../src/bundle/lading-json.ts';
import { tarStream } from '../src/bundle/tar-writer.ts';
import type { CallOptions, Fetcher } from '../src/content/index.ts';
import { type Digest, digestHex, digestOf } from '../src/digest/index.ts';
import { NotFoundError } from '../src/errors/index.ts';
import { Annotation, type Descriptor, type ImageIndex, MediaType } from '../src/model/index.ts';

/** Serves blobs from `<dir>/blobs/sha256/<hex>` (a stand-in for OciLayout). */
export class DirFetcher implements Fetcher {
  readonly dir: string;
  fetched: string[] = [];
  constructor(dir: string) {
    this.dir = dir;
  }
  async fetch(desc: Descriptor, _opts?: CallOptions): Promise<Readable> {
    this.fetched.push(desc.digest);
    const path = join(this.dir, 'blobs', 'sha256', digestHex(desc.digest));
    const s = createReadStream(path, { highWaterMark: 16 * 1024 });
    await new Promise<void>((resolve, reject) => {
      s.once('open', () => resolve());
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'ENOENT' ? new NotFoundError(`blob ${desc.digest} not found`) : err),
      );
    });
    return s;
  }
}

/** Serves fixed bytes for every blob (for "wrong content" tests). */
export class BytesFetcher implements Fetcher {
  readonly bytes: (desc: Descriptor) => Buffer | undefined;
  readonly fallback: Fetcher;
  constructor(fallback: Fetcher, bytes: (desc: Descriptor) => Buffer | undefined) {
    this.fallback = fallback;
    this.bytes = bytes;
  }
  async fetch(desc: Descriptor, opts?: CallOptions): Promise<Readable> {
    const b = this.bytes(desc);
    if (b === undefined) return this.fallback.fetch(desc, opts);
    return Readable.from(chunks(b, 1000));
  }
}

function* chunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

export async function putBlob(dir: string, data: Buffer, mediaType: string): Promise<Descriptor> {
  const digest = digestOf(data);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'blobs', 'sha256', digestHex(digest)), data);
  return { mediaType, digest, size: data.length };
}

/** Deterministic pseudo-random bytes. */
export function noise(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

export interface TestImage {
  ref: string;
  manifest: Descriptor;
  blobs: Descriptor[];
}

/** A real single-platform OCI image (gzip layer with one file) written into `dir`'s blobs. */
export async function makeImage(
  dir: string,
  ref: string,
  seed: number,
  shared?: Descriptor & { diffId: Digest },
): Promise<TestImage> {
  const content = Buffer.from(`hello from ${ref}\n${noise(3000, seed).toString('base64')}\n`);
  const layerTar = await collect(
    tarStream([{ path: `app/${seed}.txt`, size: content.length, data: content }], { mtime: 0 }),
  );
  const diffId = digestOf(layerTar);
  const layer = await putBlob(dir, gzipSync(layerTar, { level: 9 }), MediaType.ociLayerGzip);
  const layers = shared ? [shared, { ...layer, diffId }] : [{ ...layer, diffId }];
  const config = await putBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/true'] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
    MediaType.ociConfig,
  );
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config,
      layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    }),
  );
  const manifest = await putBlob(dir, manifestBytes, MediaType.ociManifest);
  return {
    ref,
    manifest,
    blobs: [manifest, config, ...layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }))],
  };
}

export async function makeSharedLayer(dir: string): Promise<Descriptor & { diffId: Digest }> {
  const content = noise(5000, 99);
  const layerTar = await collect(
    tarStream([{ path: 'shared/base.bin', size: content.length, data: content }], { mtime: 0 }),
  );
  const layer = await putBlob(dir, gzipSync(layerTar, { level: 9 }), MediaType.ociLayerGzip);
  return { ...layer, diffId: digestOf(layerTar) };
}

export function indexOf(images: TestImage[]): ImageIndex {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map((img) => ({
      ...img.manifest,
      annotations: { [Annotation.refName]: img.ref, [Annotation.containerdName]: img.ref },
    })),
  };
}

export function ladingFor(images: TestImage[], created = '2024-01-02T03:04:05Z'): LadingJson {
  return {
    schemaVersion: 1,
    name: 'demo',
    version: '1.0.0',
    created,
    builder: { name: 'lading', version: '0.1.0' },
    platforms: ['linux/amd64'],
    images: images.map((img) => ({
      ref: img.ref,
      digest: img.manifest.digest,
      upstreamDigest: img.manifest.digest,
      mediaType: img.manifest.mediaType,
      platforms: ['linux/amd64'],
      size: img.blobs.reduce((n, b) => n + b.size, 0),
    })),
    charts: [],
    releases: [],
    files: [],
  };
}

export function run(
  cmd: string,
  args: string[],
  cwd?: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
