/**
 * Small deterministic test images written with OciLayout (until @lading/testkit's
 * writeTestImages is used everywhere). Layers are real gzip'd tars with matching diff_ids, so
 * umoci and skopeo accept them.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { bytesStream, type Storage, type Target } from '../../src/content/index.ts';
import { digestOf } from '../../src/digest/index.ts';
import { type Descriptor, descriptorFor, MediaType, type Platform } from '../../src/model/index.ts';

/** A ustar archive of regular files (mode 0644, mtime 0, root-owned). */
export function tarOf(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, body] of Object.entries(files)) {
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const h = Buffer.alloc(512, 0);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100, 8, 'ascii');
    h.write('0000000\0', 108, 8, 'ascii');
    h.write('0000000\0', 116, 8, 'ascii');
    h.write(data.length.toString(8).padStart(11, '0') + '\0', 124, 12, 'ascii');
    h.write('00000000000\0', 136, 12, 'ascii');
    h.write('        ', 148, 8, 'ascii');
    h.write('0', 156, 1, 'ascii');
    h.write('ustar\0', 257, 6, 'ascii');
    h.write('00', 263, 2, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512, 0));
  }
  parts.push(Buffer.alloc(1024, 0));
  return Buffer.concat(parts);
}

export async function pushBytes(store: Storage, bytes: Buffer, mediaType: string): Promise<Descriptor> {
  const desc = descriptorFor(bytes, mediaType);
  await store.push(desc, bytesStream(bytes));
  return desc;
}

export interface ImageSpec {
  /** One entry per layer: file name → content. */
  layers: Array<Record<string, string | Buffer>>;
  platform?: Platform;
  docker?: boolean;
  /** Annotations on the manifest. */
  annotations?: Record<string, string>;
}

export interface BuiltImage {
  desc: Descriptor;
  manifest: Buffer;
  config: Descriptor;
  layers: Descriptor[];
}

export async function makeImage(store: Storage, spec: ImageSpec): Promise<BuiltImage> {
  const docker = spec.docker ?? false;
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const files of spec.layers) {
    const tar = tarOf(files);
    diffIds.push(digestOf(tar));
    layers.push(
      await pushBytes(store, gzipSync(tar), docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip),
    );
  }
  const configDoc = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const config = await pushBytes(
    store,
    Buffer.from(JSON.stringify(configDoc)),
    docker ? MediaType.dockerConfig : MediaType.ociConfig,
  );
  const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifestDoc = {
    schemaVersion: 2,
    mediaType,
    config,
    layers,
    ...(spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  const desc = await pushBytes(store, manifest, mediaType);
  return { desc, manifest, config, layers };
}

export async function makeIndex(
  store: Storage,
  images: BuiltImage[],
  platforms: Platform[],
  opts: { docker?: boolean; annotations?: Record<string, string> } = {},
): Promise<{ desc: Descriptor; bytes: Buffer }> {
  const mediaType = opts.docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((img, i) => ({ ...img.desc, platform: platforms[i] })),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  return { desc: await pushBytes(store, bytes, mediaType), bytes };
}

/** Deterministic pseudo-random bytes (incompressible enough to make layers of a given size). */
export function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

export interface SmallImages {
  app: BuiltImage;
  legacy: BuiltImage;
  multi: { desc: Descriptor; bytes: Buffer; children: BuiltImage[] };
  baseA: BuiltImage;
  baseB: BuiltImage;
  /** A layer shared by baseA and baseB. */
  shared: Descriptor;
}

/** Writes demo/app:1.0, demo/legacy:2.0 (Docker), demo/multi:3.0, demo/base-a:1, demo/base-b:1. */
export async function writeSmallImages(store: Target): Promise<SmallImages> {
  const app = await makeImage(store, {
    layers: [{ 'etc/app.conf': 'port=8080\n' }, { 'usr/bin/app': noise(70_000, 1) }],
  });
  await store.tag(app.desc, 'demo/app:1.0');
  const legacy = await makeImage(store, { docker: true, layers: [{ 'legacy.txt': 'docker types\n' }] });
  await store.tag(legacy.desc, 'demo/legacy:2.0');
  const children: BuiltImage[] = [];
  for (const [i, p] of PLATFORMS.entries()) {
    children.push(
      await makeImage(store, {
        platform: p,
        layers: [{ 'common.txt': 'common\n' }, { [`arch-${i}.bin`]: noise(20_000, 100 + i) }],
      }),
    );
  }
  const multi = await makeIndex(store, children, PLATFORMS, {
    annotations: { 'org.opencontainers.image.source': 'https://example.com/multi' },
  });
  await store.tag(multi.desc, 'demo/multi:3.0');
  const sharedFiles = { 'shared/lib.so': noise(50_000, 7) };
  const baseA = await makeImage(store, { layers: [sharedFiles, { 'a.txt': 'A\n' }] });
  const baseB = await makeImage(store, { layers: [sharedFiles, { 'b.txt': 'B\n' }] });
  await store.tag(baseA.desc, 'demo/base-a:1');
  await store.tag(baseB.desc, 'demo/base-b:1');
  return { app, legacy, multi: { ...multi, children }, baseA, baseB, shared: baseA.layers[0] as Descriptor };
}

/** A stream that yields `bytes` in chunks with a pause between them. */
export function slowStream(bytes: Buffer, chunk = 4096, delayMs = 2): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < bytes.length; i += chunk) {
        await new Promise((r) => setTimeout(r, delayMs));
        yield bytes.subarray(i, i + chunk);
      }
    })(),
  );
}
