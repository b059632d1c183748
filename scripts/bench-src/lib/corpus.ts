/**
 * The benchmark corpus: a fixed plan of images (sizes scale with `scale`), written once as an OCI
 * image layout under bench-out/ (cached: same plan + scale → same digests), then pushed into a local
 * Distribution registry with skopeo.
 *
 * Layers are tars holding one file of deterministic pseudo-random bytes (AES-128-CTR keystream),
 * gzip'd in store mode (level 0): incompressible, like already-compressed content, and fast to make
 * on two cores. Nobody in the benchmark decompresses a layer, so the level changes no timing.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const MIB = 1024 * 1024;
const GENERATOR_VERSION = 2;

export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

type Arch = 'amd64' | 'arm64';

/** A layer of the plan: `id` names it (and seeds its bytes), `mib` is its size at scale 1. */
interface LayerPlan {
  id: string;
  mib: number;
}

interface ImagePlan {
  name: string;
  tag: string;
  /** One entry per platform; a single entry gives a plain manifest, two an OCI index. */
  arches: Arch[];
  /** Layer ids per arch ('{arch}' is replaced), bottom first. */
  layers: string[];
}

// Layers shared between images (each stored once). Sizes in MiB at scale 1.
const SHARED: LayerPlan[] = [
  { id: 'os-debian-amd64', mib: 170 },
  { id: 'os-debian-arm64', mib: 115 },
  { id: 'os-alpine-amd64', mib: 4 },
  { id: 'os-alpine-arm64', mib: 4 },
  { id: 'os-ubi-amd64', mib: 90 },
  { id: 'rt-jdk-amd64', mib: 220 },
  { id: 'rt-python-amd64', mib: 170 },
  { id: 'rt-node-amd64', mib: 130 },
  { id: 'rt-node-arm64', mib: 105 },
  { id: 'pkg-ca-certs', mib: 0.5 },
  { id: 'pkg-tzdata', mib: 1.5 },
  { id: 'pkg-libssl-amd64', mib: 6 },
];

// Images: `app-*` layers are their own (unique). Several small layers per image, a few large ones.
const IMAGES: (ImagePlan & { own: LayerPlan[] })[] = [
  {
    name: 'bench/ml-inference',
    tag: '2.1',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-python-amd64'],
    own: [
      { id: 'model', mib: 200 },
      { id: 'app', mib: 12 },
    ],
  },
  {
    name: 'bench/analytics',
    tag: '5.0',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-jdk-amd64'],
    own: [
      { id: 'libs', mib: 170 },
      { id: 'app', mib: 9 },
    ],
  },
  {
    name: 'bench/search',
    tag: '8.15',
    arches: ['amd64'],
    layers: ['os-ubi-amd64', 'rt-jdk-amd64'],
    own: [{ id: 'app', mib: 140 }],
  },
  {
    name: 'bench/gateway',
    tag: '1.27',
    arches: ['amd64', 'arm64'],
    layers: ['os-alpine-{arch}', 'pkg-ca-certs'],
    own: [{ id: 'app-{arch}', mib: 9 }],
  },
  {
    name: 'bench/web',
    tag: '3.4',
    arches: ['amd64', 'arm64'],
    layers: ['os-debian-{arch}', 'rt-node-{arch}'],
    own: [
      { id: 'deps-{arch}', mib: 20 },
      { id: 'app-{arch}', mib: 4 },
    ],
  },
  {
    name: 'bench/api',
    tag: '4.2',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-python-amd64'],
    own: [
      { id: 'deps', mib: 14 },
      { id: 'app', mib: 4 },
    ],
  },
  {
    name: 'bench/worker',
    tag: '4.2',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-python-amd64'],
    own: [{ id: 'app', mib: 22 }],
  },
  {
    name: 'bench/scheduler',
    tag: '4.2',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-python-amd64'],
    own: [{ id: 'app', mib: 6 }],
  },
  {
    name: 'bench/billing',
    tag: '1.9',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-jdk-amd64'],
    own: [{ id: 'app', mib: 35 }],
  },
  {
    name: 'bench/orders',
    tag: '1.9',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-jdk-amd64'],
    own: [{ id: 'app', mib: 28 }],
  },
  {
    name: 'bench/auth',
    tag: '2.0',
    arches: ['amd64'],
    layers: ['os-alpine-amd64', 'pkg-ca-certs'],
    own: [{ id: 'app', mib: 14 }],
  },
  {
    name: 'bench/metrics-exporter',
    tag: '1.8',
    arches: ['amd64', 'arm64'],
    layers: ['os-alpine-{arch}'],
    own: [{ id: 'app-{arch}', mib: 10 }],
  },
  {
    name: 'bench/log-shipper',
    tag: '3.1',
    arches: ['amd64'],
    layers: ['os-alpine-amd64', 'pkg-ca-certs', 'pkg-tzdata'],
    own: [{ id: 'app', mib: 40 }],
  },
  {
    name: 'bench/cache',
    tag: '7.2',
    arches: ['amd64'],
    layers: ['os-debian-amd64'],
    own: [{ id: 'app', mib: 8 }],
  },
  {
    name: 'bench/queue',
    tag: '3.13',
    arches: ['amd64'],
    layers: ['os-ubi-amd64'],
    own: [{ id: 'app', mib: 40 }],
  },
  {
    name: 'bench/db',
    tag: '16.4',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'pkg-libssl-amd64', 'pkg-tzdata'],
    own: [{ id: 'server', mib: 80 }],
  },
  {
    name: 'bench/db-backup',
    tag: '16.4',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'pkg-libssl-amd64'],
    own: [{ id: 'app', mib: 20 }],
  },
  {
    name: 'bench/frontend',
    tag: '3.4',
    arches: ['amd64', 'arm64'],
    layers: ['os-debian-{arch}', 'rt-node-{arch}'],
    own: [{ id: 'app-{arch}', mib: 40 }],
  },
  {
    name: 'bench/admin-ui',
    tag: '3.4',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-node-amd64'],
    own: [{ id: 'app', mib: 30 }],
  },
  {
    name: 'bench/cron',
    tag: '1.0',
    arches: ['amd64'],
    layers: ['os-alpine-amd64', 'pkg-tzdata'],
    own: [{ id: 'app', mib: 2 }],
  },
  {
    name: 'bench/proxy-sidecar',
    tag: '1.27',
    arches: ['amd64', 'arm64'],
    layers: ['os-alpine-{arch}', 'pkg-ca-certs'],
    own: [{ id: 'app-{arch}', mib: 5 }],
  },
  {
    name: 'bench/migrations',
    tag: '4.2',
    arches: ['amd64'],
    layers: ['os-debian-amd64', 'rt-python-amd64'],
    own: [{ id: 'app', mib: 3 }],
  },
  {
    name: 'bench/docs',
    tag: '1.0',
    arches: ['amd64'],
    layers: ['os-alpine-amd64'],
    own: Array.from({ length: 10 }, (_, i) => ({ id: `pages-${i}`, mib: 1.5 })),
  },
  {
    name: 'bench/toolbox',
    tag: '1.36',
    arches: ['amd64'],
    layers: ['os-alpine-amd64'],
    own: [
      { id: 'bin', mib: 0.8 },
      { id: 'etc', mib: 0.01 },
    ],
  },
];

export interface CorpusBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** A repository of the corpus that holds it (for raw pulls). */
  repo: string;
}

export interface CorpusImage {
  name: string;
  tag: string;
  digest: string;
  mediaType: string;
  size: number;
  platforms: string[];
}

export interface Corpus {
  key: string;
  scale: number;
  layoutDir: string;
  images: CorpusImage[];
  /** Every blob once (manifests, indexes, configs, layers). */
  blobs: CorpusBlob[];
  /** Sum of every blob's size, each once. */
  totalBytes: number;
  /** Bytes in layers used by two or more images. */
  sharedLayerBytes: number;
  layerCount: number;
  largestLayer: number;
}

export interface CorpusOptions {
  scale: number;
  /** Only the first N images of the plan (smoke runs). */
  maxImages?: number;
  /** Folder of cached corpora (bench-out/corpus). */
  cacheDir: string;
  log?: (line: string) => void;
}

function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

function tarHeader(path: string, size: number): Buffer {
  const h = Buffer.alloc(512, 0);
  const octal = (v: number, w: number): string => v.toString(8).padStart(w - 1, '0') + '\0';
  h.write(path, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

async function* layerTar(id: string, bytes: number): AsyncGenerator<Buffer> {
  yield tarHeader(`data/${id}.bin`, bytes);
  const key = createHash('sha256').update(`lading-bench ${id} ${bytes}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(1024 * 1024, 0);
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    yield cipher.update(zeros.subarray(0, n));
    left -= n;
  }
  yield Buffer.alloc((512 - (bytes % 512)) % 512, 0);
  yield Buffer.alloc(1024, 0);
}

function tap(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

interface Layer {
  digest: string;
  diffId: string;
  size: number;
}

class Writer {
  readonly blobDir: string;
  readonly sizes = new Map<string, { size: number; mediaType: string; repo: string }>();
  constructor(dir: string) {
    this.blobDir = join(dir, 'blobs', 'sha256');
  }
  path(digest: string): string {
    return join(this.blobDir, digest.slice(7));
  }
  async putBytes(bytes: Buffer, mediaType: string, repo: string): Promise<{ digest: string; size: number }> {
    const digest = sha256(bytes);
    await writeFile(this.path(digest), bytes);
    if (!this.sizes.has(digest)) this.sizes.set(digest, { size: bytes.length, mediaType, repo });
    return { digest, size: bytes.length };
  }
  async layer(id: string, bytes: number): Promise<Layer> {
    const tmp = join(this.blobDir, `layer.tmp-${process.pid}`);
    const diff = createHash('sha256');
    const gz = createHash('sha256');
    const raw = { n: 0 };
    const out = { n: 0 };
    await pipeline(
      Readable.from(layerTar(id, bytes)),
      tap(diff, raw),
      createGzip({ level: 0 }),
      tap(gz, out),
      createWriteStream(tmp),
    );
    const layer = {
      digest: 'sha256:' + gz.digest('hex'),
      diffId: 'sha256:' + diff.digest('hex'),
      size: out.n,
    };
    await rename(tmp, this.path(layer.digest));
    return layer;
  }
}

function planKey(opts: CorpusOptions): string {
  const plan = JSON.stringify({ v: GENERATOR_VERSION, SHARED, IMAGES: IMAGES.slice(0, opts.maxImages) });
  return `${createHash('sha256').update(plan).digest('hex').slice(0, 12)}-s${opts.scale}`;
}

const CREATED = '2025-01-01T00:00:00Z';

/** Writes (or reuses from the cache) the corpus layout and returns its description. */
export async function makeCorpus(opts: CorpusOptions): Promise<Corpus> {
  const log = opts.log ?? (() => {});
  const key = planKey(opts);
  const dir = join(opts.cacheDir, key);
  const layoutDir = join(dir, 'layout');
  const metaFile = join(dir, 'corpus.json');
  try {
    const cached = JSON.parse(await readFile(metaFile, 'utf8')) as Corpus;
    await access(join(layoutDir, 'index.json'));
    log(`corpus: cached ${dir}`);
    return { ...cached, layoutDir };
  } catch {
    // build it
  }
  await rm(dir, { recursive: true, force: true });
  const w = new Writer(layoutDir);
  await mkdir(w.blobDir, { recursive: true });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const t0 = Date.now();
  const bytesOf = (mib: number): number => Math.max(1024, Math.round(mib * opts.scale * MIB));

  const images = IMAGES.slice(0, opts.maxImages);
  const sharedPlan = new Map(SHARED.map((l) => [l.id, l]));
  const made = new Map<string, Layer>();
  const users = new Map<string, Set<string>>();
  const getLayer = async (id: string, mib: number): Promise<Layer> => {
    let l = made.get(id);
    if (!l) {
      l = await w.layer(id, bytesOf(mib));
      made.set(id, l);
    }
    return l;
  };

  const out: CorpusImage[] = [];
  const index: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[] =
    [];
  for (const img of images) {
    const manifests: { mediaType: string; digest: string; size: number; platform: Record<string, string> }[] =
      [];
    for (const arch of img.arches) {
      const layers: Layer[] = [];
      for (const tmpl of img.layers) {
        const id = tmpl.replace('{arch}', arch);
        const plan = sharedPlan.get(id);
        if (!plan) throw new Error(`corpus plan: unknown shared layer ${id}`);
        const l = await getLayer(id, plan.mib);
        layers.push(l);
        (users.get(l.digest) ?? users.set(l.digest, new Set()).get(l.digest)!).add(img.name);
        if (!w.sizes.has(l.digest))
          w.sizes.set(l.digest, { size: l.size, mediaType: MT.layer, repo: img.name });
      }
      for (const own of img.own) {
        const id = `${img.name}:${img.tag}/${own.id.replace('{arch}', arch)}`;
        const l = await getLayer(id, own.mib);
        layers.push(l);
        (users.get(l.digest) ?? users.set(l.digest, new Set()).get(l.digest)!).add(img.name);
        if (!w.sizes.has(l.digest))
          w.sizes.set(l.digest, { size: l.size, mediaType: MT.layer, repo: img.name });
      }
      const platform = { architecture: arch, os: 'linux', ...(arch === 'arm64' ? { variant: 'v8' } : {}) };
      const config = {
        created: CREATED,
        ...platform,
        config: {
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Cmd: [`/usr/bin/${img.name.split('/').pop()}`],
          Labels: { 'org.opencontainers.image.title': img.name, 'org.opencontainers.image.version': img.tag },
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((_, i) => ({
          created: CREATED,
          created_by: `lading-bench ${img.name} layer ${i}`,
        })),
      };
      const c = await w.putBytes(Buffer.from(JSON.stringify(config)), MT.config, img.name);
      const manifest = {
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: MT.config, digest: c.digest, size: c.size },
        layers: layers.map((l) => ({ mediaType: MT.layer, digest: l.digest, size: l.size })),
      };
      const m = await w.putBytes(Buffer.from(JSON.stringify(manifest)), MT.manifest, img.name);
      manifests.push({ mediaType: MT.manifest, digest: m.digest, size: m.size, platform });
    }
    let root: { mediaType: string; digest: string; size: number };
    if (manifests.length === 1) {
      const m = manifests[0]!;
      root = { mediaType: m.mediaType, digest: m.digest, size: m.size };
    } else {
      const idx = { schemaVersion: 2, mediaType: MT.index, manifests };
      const r = await w.putBytes(Buffer.from(JSON.stringify(idx)), MT.index, img.name);
      root = { mediaType: MT.index, digest: r.digest, size: r.size };
    }
    out.push({
      name: img.name,
      tag: img.tag,
      ...root,
      platforms: manifests.map(
        (m) =>
          `${m.platform.os}/${m.platform.architecture}${m.platform.variant ? `/${m.platform.variant}` : ''}`,
      ),
    });
    index.push({ ...root, annotations: { 'org.opencontainers.image.ref.name': `${img.name}:${img.tag}` } });
    log(`corpus: ${img.name}:${img.tag} (${Math.round((Date.now() - t0) / 1000)} s)`);
  }
  await writeFile(
    join(layoutDir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: index }, null, 2),
  );
  const blobs: CorpusBlob[] = [...w.sizes.entries()].map(([digest, v]) => ({ digest, ...v }));
  let shared = 0;
  let layerCount = 0;
  let largest = 0;
  for (const [digest, set] of users) {
    const size = w.sizes.get(digest)!.size;
    layerCount++;
    largest = Math.max(largest, size);
    if (set.size >= 2) shared += size;
  }
  const corpus: Corpus = {
    key,
    scale: opts.scale,
    layoutDir,
    images: out,
    blobs,
    totalBytes: blobs.reduce((a, b) => a + b.size, 0),
    sharedLayerBytes: shared,
    layerCount,
    largestLayer: largest,
  };
  await writeFile(metaFile, JSON.stringify(corpus, null, 2));
  log(`corpus: written ${dir} in ${Math.round((Date.now() - t0) / 1000)} s`);
  return corpus;
}
